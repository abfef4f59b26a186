package translate

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
)

// compatCase is testdata/compat/<case>.json: an attempt on an OpenAI-shaped
// backend with the per-backend quirk settings.
type compatCase struct {
	Request struct {
		Schema         string   `json:"schema"`
		Model          string   `json:"model"`
		Stream         bool     `json:"stream"`
		Credential     string   `json:"credential"`
		StreamOptions  *bool    `json:"stream_options"`
		MaxTokensField string   `json:"max_tokens_field"`
		DropParams     []string `json:"drop_params"`
	} `json:"request"`
}

// backend is the runtime backend with config.Compile's defaults.
func (c *compatCase) backend() *config.RBackend {
	on := true
	b := &config.RBackend{Name: "compat", Schema: c.Request.Schema, Credential: c.Request.Credential,
		DropParams: c.Request.DropParams, Compat: config.CompatOptions{StreamOptions: &on, MaxTokensField: c.Request.MaxTokensField}}
	if c.Request.StreamOptions != nil {
		b.Compat.StreamOptions = c.Request.StreamOptions
	}
	return b
}

func compatRun(t *testing.T, base string) (c compatCase, in, out []byte, up *Upstream) {
	t.Helper()
	if err := json.Unmarshal(readFile(t, base+".json"), &c); err != nil {
		t.Fatalf("%s.json: %v", base, err)
	}
	in = readFile(t, base+".in.json")
	orig := bytes.Clone(in)
	tr, err := For(c.Request.Schema)
	if err != nil {
		t.Fatal(err)
	}
	up, err = tr.Request(&Request{
		Body: in, Backend: c.backend(),
		ClientModel:    gjson.GetBytes(in, "model").String(),
		Model:          c.Request.Model,
		Stream:         c.Request.Stream,
		UsageRequested: gjson.GetBytes(in, "stream_options.include_usage").Type == gjson.True,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, orig) {
		t.Error("the client's body was modified in place")
	}
	out = up.Body
	if out == nil {
		out = in
	}
	return c, in, out, up
}

func compatCases(t *testing.T) []string {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join("testdata", "compat", "*.in.json"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for i, in := range ins {
		ins[i] = strings.TrimSuffix(in, ".in.json")
	}
	return ins
}

// TestCompatRequestGolden compares the body sent with <case>.out.json and
// path and headers with <case>.upstream.json (-update rewrites both).
func TestCompatRequestGolden(t *testing.T) {
	for _, base := range compatCases(t) {
		t.Run(filepath.Base(base), func(t *testing.T) {
			_, _, out, up := compatRun(t, base)
			if !json.Valid(out) {
				t.Errorf("body sent upstream is not valid JSON: %s", out)
			}
			golden(t, base+".out.json", out)
			got := &wantUpstream{Path: up.Path, SetHeaders: up.SetHeaders, BodyReplaced: up.Body != nil}
			js, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, base+".upstream.json", append(js, '\n'))
		})
	}
}

// TestCompatRequestInvariants states the quirk rules directly.
func TestCompatRequestInvariants(t *testing.T) {
	for _, base := range compatCases(t) {
		t.Run(filepath.Base(base), func(t *testing.T) {
			c, in, out, up := compatRun(t, base)
			be := c.backend()
			if (up.Body != nil) == bytes.Equal(in, out) {
				t.Errorf("Body replaced=%v, but in and out equal=%v", up.Body != nil, bytes.Equal(in, out))
			}
			if got := gjson.GetBytes(out, "model").String(); got != c.Request.Model {
				t.Errorf("model %q, want %q", got, c.Request.Model)
			}
			// stream_options: never sent when the server rejects it, else
			// include_usage on every stream.
			so := gjson.GetBytes(out, "stream_options")
			if !streamOptionsAllowed(be) {
				if so.Exists() {
					t.Errorf("stream_options sent to a server that rejects it: %s", so.Raw)
				}
			} else if c.Request.Stream && !so.Get("include_usage").Bool() {
				t.Errorf("stream without include_usage: %s", out)
			}
			// max_tokens_field: only the configured name is sent, with the
			// configured field's own value if the client gave one.
			if f := c.Request.MaxTokensField; f != "" {
				other := map[string]string{"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}[f]
				if gjson.GetBytes(out, other).Exists() {
					t.Errorf("%s sent, want only %s", other, f)
				}
				want := gjson.GetBytes(in, f)
				if !want.Exists() {
					want = gjson.GetBytes(in, other)
				}
				if got := gjson.GetBytes(out, f); got.Raw != want.Raw {
					t.Errorf("%s = %s, want %s", f, got.Raw, want.Raw)
				}
			}
			// drop_params: listed members are gone, except structural ones.
			for _, p := range c.Request.DropParams {
				if p == "" {
					continue
				}
				present := gjson.GetBytes(out, jsonKey(p)).Exists()
				if keep := slices.Contains(structuralParams, p); present != (keep && gjson.GetBytes(in, p).Exists()) {
					t.Errorf("drop_params %q: present=%v", p, present)
				}
			}
			// Every other member keeps its value.
			gjson.ParseBytes(in).ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "model", "stream_options", "max_tokens", "max_completion_tokens":
					return true
				}
				o := gjson.GetBytes(out, jsonKey(k.Str))
				switch {
				case !o.Exists() && !slices.Contains(c.Request.DropParams, k.Str):
					t.Errorf("%s was dropped without drop_params", k.Str)
				case o.Exists() && o.Raw != v.Raw:
					t.Errorf("%s changed: %s → %s", k.Str, v.Raw, o.Raw)
				}
				return true
			})
		})
	}
}

func TestJSONKey(t *testing.T) {
	body := []byte(`{"a.b":1,"a":{"b":2},"x*":3,"xy":4,"q?":5,"#":6,"plain":7}`)
	for key, want := range map[string]string{"a.b": "1", "x*": "3", "q?": "5", "#": "6", "plain": "7"} {
		if got := gjson.GetBytes(body, jsonKey(key)).Raw; got != want {
			t.Errorf("jsonKey(%q) reads %q, want %q", key, got, want)
		}
	}
}

// TestCompatErrors runs the error bodies of OpenAI-compatible servers
// (testdata/compat/error_<server>_<case>.err, from their documentation)
// through the translator, whole and split at every byte, into OpenAI error
// JSON (<case>.err.out.json).
func TestCompatErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
		msg    string // "" means the server's own body passes unchanged
	}{
		{"error_vllm_bad_request", 400, "upstream_error", "temperature must be non-negative, got -1.0."},
		{"error_vllm_context_length", 400, "context_length_exceeded", "This model's maximum context length is 4096 tokens. However, you requested 5120 tokens (4096 in the messages, 1024 in the completion). Please reduce the length of the messages or completion."},
		{"error_vllm_not_found", 404, "upstream_error", "The model `llama-3` does not exist."},
		{"error_vllm_nested", 400, "", ""},
		{"error_ollama_not_found", 404, "upstream_error", `model "llama9" not found, try pulling it first`},
		{"error_ollama_bad_request", 400, "upstream_error", "json: cannot unmarshal string into Go struct field ChatRequest.messages of type []api.Message"},
		{"error_mistral_unknown_model", 400, "unknown_model", "Invalid model: mistral-ultra"},
		{"error_mistral_validation", 422, "upstream_error", "body.messages: Field required"},
		{"error_mistral_context_length", 400, "context_length_exceeded", "Prompt contains 40960 tokens and 0 draft tokens, too large for model with 32768 maximum context length"},
		{"error_mistral_rate_limit", 429, "upstream_error", "Requests rate limit exceeded"},
		{"error_groq_rate_limit", 429, "", ""},
		{"error_groq_context_length", 400, "", ""},
		{"error_deepseek_auth", 401, "", ""},
		{"error_deepseek_balance", 402, "", ""},
		{"error_fastapi_validation", 422, "upstream_error", "body.temperature: ensure this value is less than or equal to 2; body.n: value is not a valid integer"},
	}
	tr, _ := For("openai-compatible")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := filepath.Join("testdata", "compat", tt.name)
			in := bytes.TrimSuffix(readFile(t, base+".err"), []byte("\n"))
			ans := tr.Response(&Response{Status: tt.status, ContentType: "application/json"})
			if ans.ContentType != "application/json" || ans.Status != 0 {
				t.Errorf("answer status %d content-type %q", ans.Status, ans.ContentType)
			}
			out := splitEverywhere(t, in, func() Body { return tr.Response(&Response{Status: tt.status}).Body })
			golden(t, base+".err.out.json", out)
			if tt.msg == "" {
				if !bytes.Equal(out, in) {
					t.Errorf("an OpenAI-shaped error was changed:\n got %s\nwant %s", out, in)
				}
				return
			}
			e := decodeError(t, out)
			if *e.Error.Message != tt.msg {
				t.Errorf("message %q, want %q", *e.Error.Message, tt.msg)
			}
			if e.Error.Code == nil || *e.Error.Code != tt.code {
				t.Errorf("code %v, want %q", e.Error.Code, tt.code)
			}
			if p := gjson.GetBytes(in, "param"); p.Type == gjson.String && gjson.GetBytes(out, "error.param").Str != p.Str {
				t.Errorf("param %s lost: %s", p.Raw, out)
			}
		})
	}
}

// TestCompatStreamWithoutUsage: a server asked for no stream_options
// answers a stream with no usage chunk; the answer passes unchanged and
// llmproc must read its usage as unknown, never as zero.
func TestCompatStreamWithoutUsage(t *testing.T) {
	in := readFile(t, filepath.Join("testdata", "compat", "stream_no_usage.sse"))
	tr, _ := For("openai-compatible")
	out := splitEverywhere(t, in, func() Body {
		return tr.Response(&Response{Status: 200, ContentType: "text/event-stream", Stream: true}).Body
	})
	if !bytes.Equal(out, in) {
		t.Fatalf("stream changed:\n got %s\nwant %s", out, in)
	}
	res := azureTrack(out, true)
	if res.Known {
		t.Errorf("usage known (%+v) for a stream that reported none", res.Usage)
	}
	if !res.Done || res.FinishReason != "stop" {
		t.Errorf("done %v finish %q", res.Done, res.FinishReason)
	}
}

// BenchmarkCompatRequest translates a streaming request with tools for a
// server with every quirk set: no stream_options, max_tokens renamed, two
// parameters dropped.
func BenchmarkCompatRequest(b *testing.B) {
	off := false
	be := &config.RBackend{Name: "vllm", Schema: "openai-compatible", DropParams: []string{"seed", "logit_bias"},
		Compat: config.CompatOptions{StreamOptions: &off, MaxTokensField: "max_tokens"}}
	tr, _ := For("openai-compatible")
	for _, size := range []struct {
		name string
		n    int
	}{{"2KB", 2 << 10}, {"64KB", 64 << 10}} {
		body := azureBenchBody(size.n)
		body = append([]byte(`{"seed":1,"max_completion_tokens":256,"stream_options":{"include_usage":true},`), body[1:]...)
		req := &Request{Body: body, Backend: be, ClientModel: "gpt-4o", Model: "llama-3.1-8b", Stream: true, UsageRequested: true}
		b.Run(size.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if up, err := tr.Request(req); err != nil || up.Body == nil {
					b.Fatal(err)
				}
			}
		})
	}
}
