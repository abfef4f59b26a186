package translate

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/usage"
)

// azureCase is testdata/azure/<case>.json: the attempt as the upstream role
// knows it. Options left empty get the defaults config.Compile applies.
type azureCase struct {
	Request struct {
		Model      string   `json:"model"`
		Stream     bool     `json:"stream"`
		BasePath   string   `json:"base_path"`
		Credential string   `json:"credential"`
		APIVersion string   `json:"api_version"`
		Auth       string   `json:"auth"`
		DropParams []string `json:"drop_params"`
	} `json:"request"`
}

func (c *azureCase) backend() *config.RBackend {
	b := &config.RBackend{Name: "az", Schema: "azure-openai", BasePath: c.Request.BasePath,
		Credential: c.Request.Credential, DropParams: c.Request.DropParams,
		Azure: config.AzureOptions{APIVersion: "2024-10-21", Auth: "api-key"}}
	if c.Request.APIVersion != "" {
		b.Azure.APIVersion = c.Request.APIVersion
	}
	if c.Request.Auth != "" {
		b.Azure.Auth = c.Request.Auth
	}
	return b
}

// azureRun translates one testdata/azure/<case>.in.json.
func azureRun(t *testing.T, base string) (c azureCase, in, out []byte, up *Upstream) {
	t.Helper()
	if err := json.Unmarshal(readFile(t, base+".json"), &c); err != nil {
		t.Fatalf("%s.json: %v", base, err)
	}
	in = readFile(t, base+".in.json")
	orig := bytes.Clone(in)
	tr, err := For("azure-openai")
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

func azureCases(t *testing.T) []string {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join("testdata", "azure", "*.in.json"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for i, in := range ins {
		ins[i] = strings.TrimSuffix(in, ".in.json")
	}
	return ins
}

// TestAzureRequestGolden compares the body sent to Azure with
// <case>.out.json and the path and headers with <case>.upstream.json (-update
// rewrites both).
func TestAzureRequestGolden(t *testing.T) {
	for _, base := range azureCases(t) {
		t.Run(filepath.Base(base), func(t *testing.T) {
			_, _, out, up := azureRun(t, base)
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

// TestAzureRequestInvariants states the goldens' rules directly, so a
// careless -update cannot bless a wrong request.
func TestAzureRequestInvariants(t *testing.T) {
	for _, base := range azureCases(t) {
		t.Run(filepath.Base(base), func(t *testing.T) {
			c, in, out, up := azureRun(t, base)
			be := c.backend()
			wantPath := be.BasePath + "/openai/deployments/" + url.PathEscape(c.Request.Model) +
				"/chat/completions?api-version=" + url.QueryEscape(be.Azure.APIVersion)
			if up.Path != wantPath {
				t.Errorf("path %q, want %q", up.Path, wantPath)
			}
			if u, err := url.Parse(up.Path); err != nil || u.Query().Get("api-version") != be.Azure.APIVersion {
				t.Errorf("path %q does not parse to api-version %q (%v)", up.Path, be.Azure.APIVersion, err)
			}
			// Credentials: exactly one header, of the configured kind.
			var wantSet [][2]string
			switch {
			case c.Request.Credential == "":
			case be.Azure.Auth == "bearer":
				wantSet = [][2]string{{"authorization", "Bearer " + c.Request.Credential}}
			default:
				wantSet = [][2]string{{"api-key", c.Request.Credential}}
			}
			if diff := cmp.Diff(wantSet, up.SetHeaders); diff != "" {
				t.Errorf("set headers (-want +got):\n%s", diff)
			}
			if (up.Body != nil) == bytes.Equal(in, out) {
				t.Errorf("Body replaced=%v, but in and out equal=%v", up.Body != nil, bytes.Equal(in, out))
			}
			// The model is the client's: Azure takes the deployment from the path.
			if g, w := gjson.GetBytes(out, "model").Raw, gjson.GetBytes(in, "model").Raw; g != w {
				t.Errorf("model %s, want the client's %s", g, w)
			}
			usageOK := azureStreamOptions(be.Azure.APIVersion)
			so := gjson.GetBytes(out, "stream_options")
			switch {
			case !usageOK && so.Exists():
				t.Errorf("api-version %s takes no stream_options, sent %s", be.Azure.APIVersion, so.Raw)
			case usageOK && c.Request.Stream && !so.Get("include_usage").Bool():
				t.Errorf("stream without stream_options.include_usage: %s", out)
			case !c.Request.Stream && so.Exists() != gjson.GetBytes(in, "stream_options").Exists():
				t.Errorf("stream_options changed on a non-stream request")
			}
			// Dropped parameters are gone, structural ones stay, and every
			// other member keeps its value.
			for _, p := range c.Request.DropParams {
				keep := p == "model" || p == "messages" || p == "stream"
				if gjson.GetBytes(out, p).Exists() != (keep && gjson.GetBytes(in, p).Exists()) {
					t.Errorf("drop_params %q: present in the body sent = %v", p, !keep)
				}
			}
			gjson.ParseBytes(in).ForEach(func(k, v gjson.Result) bool {
				switch {
				case k.Str == "stream_options":
				case gjson.GetBytes(out, k.Str).Exists() && gjson.GetBytes(out, k.Str).Raw != v.Raw:
					t.Errorf("%s changed: %s → %s", k.Str, v.Raw, gjson.GetBytes(out, k.Str).Raw)
				case !gjson.GetBytes(out, k.Str).Exists() && !slices.Contains(c.Request.DropParams, k.Str):
					t.Errorf("%s was dropped without drop_params", k.Str)
				}
				return true
			})
		})
	}
}

func TestAzureStreamOptionsVersion(t *testing.T) {
	tests := []struct {
		version string
		want    bool
	}{
		{"2024-10-21", true},
		{"2024-08-01-preview", true},
		{"2025-04-01-preview", true},
		{"2024-08-01", true},
		{"2024-07-01-preview", false},
		{"2024-06-01", false},
		{"2024-02-15-preview", false},
		{"2023-05-15", false},
		{"preview", true},
		{"latest", true},
		{"v1", true},
		{"", true},
	}
	for _, tt := range tests {
		if got := azureStreamOptions(tt.version); got != tt.want {
			t.Errorf("azureStreamOptions(%q) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

// azureTrack reads a normalized answer the way the upstream role does.
func azureTrack(out []byte, stream bool) usage.Result {
	tk := usage.NewTracker(stream)
	tk.Write(out)
	return tk.Finish()
}

// TestAzureResponses runs Azure's successful answers (JSON and SSE, with
// Azure's prompt_filter_results and content_filter_results) through the
// translator, split at every byte, and checks they reach the client
// unchanged and that llmproc reads their usage exactly.
func TestAzureResponses(t *testing.T) {
	tests := []struct {
		file   string
		usage  usage.Usage
		finish string
	}{
		{"resp_text.resp.json", usage.Usage{Input: 1200, Output: 7, CachedInput: 1024}, "stop"},
		{"resp_tools.resp.json", usage.Usage{Input: 88, Output: 46}, "tool_calls"},
		{"resp_reasoning.resp.json", usage.Usage{Input: 30, Output: 512, Reasoning: 448}, "length"},
		{"resp_content_filter.resp.json", usage.Usage{Input: 40, Output: 12}, "content_filter"},
		{"stream_text.sse", usage.Usage{Input: 1500, Output: 6, CachedInput: 1280}, "stop"},
		{"stream_tools.sse", usage.Usage{Input: 90, Output: 44}, "tool_calls"},
		{"stream_content_filter.sse", usage.Usage{Input: 25, Output: 3}, "content_filter"},
	}
	tr, _ := For("azure-openai")
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			stream := strings.HasSuffix(tt.file, ".sse")
			ct := "application/json"
			if stream {
				ct = "text/event-stream"
			}
			in := readFile(t, filepath.Join("testdata", "azure", tt.file))
			ans := tr.Response(&Response{Status: 200, ContentType: ct, Stream: stream, Model: "gpt4o-prod"})
			if ans.Status != 0 || ans.ContentType != "" {
				t.Errorf("answer rewrites status %d, content-type %q", ans.Status, ans.ContentType)
			}
			out := splitEverywhere(t, in, func() Body { return tr.Response(&Response{Status: 200, ContentType: ct, Stream: stream}).Body })
			if !bytes.Equal(out, in) {
				t.Errorf("answer changed:\n got %s\nwant %s", out, in)
			}
			res := azureTrack(out, stream)
			if !res.Known || res.Usage != tt.usage {
				t.Errorf("usage %+v (known %v), want %+v", res.Usage, res.Known, tt.usage)
			}
			if !res.Done || res.ErrorEvent || res.Incomplete {
				t.Errorf("done %v, error event %v, incomplete %v", res.Done, res.ErrorEvent, res.Incomplete)
			}
			if res.FinishReason != tt.finish {
				t.Errorf("finish_reason %q, want %q", res.FinishReason, tt.finish)
			}
		})
	}
}

// TestAzureErrors rewrites Azure's error bodies (testdata/azure/*.err) into
// OpenAI error JSON (<case>.err.out.json), whole and split at every byte.
func TestAzureErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		typ    string
		code   string // "" means null
		param  string // "" means null or absent
		same   bool   // the body is already right and passes byte for byte
	}{
		{"error_content_filter", 400, "invalid_request_error", "content_filter", "prompt", false},
		{"error_content_filter_no_param", 400, "invalid_request_error", "content_filter", "prompt", false},
		{"error_rate_limit", 429, "rate_limit_error", "rate_limit_exceeded", "", false},
		{"error_unauthorized", 401, "authentication_error", "401", "", false},
		{"error_bearer_unauthorized", 401, "authentication_error", "upstream_error", "", false},
		{"error_deployment_not_found", 404, "invalid_request_error", "DeploymentNotFound", "", false},
		{"error_context_length", 400, "invalid_request_error", "context_length_exceeded", "messages", true},
		{"error_server", 500, "server_error", "InternalServerError", "", false},
		{"error_numeric_code", 400, "invalid_request_error", "400", "", false},
		{"error_gateway", 502, "server_error", "upstream_error", "", false},
	}
	tr, _ := For("azure-openai")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := filepath.Join("testdata", "azure", tt.name)
			in := readFile(t, base+".err")
			ans := tr.Response(&Response{Status: tt.status, ContentType: "application/json"})
			if ans.ContentType != "application/json" || (ans.Status != 0 && ans.Status != tt.status) {
				t.Errorf("answer status %d content-type %q", ans.Status, ans.ContentType)
			}
			out := splitEverywhere(t, in, func() Body { return tr.Response(&Response{Status: tt.status}).Body })
			if !bytes.Equal(out, AzureError(tt.status, in)) {
				t.Errorf("body output differs from AzureError")
			}
			golden(t, base+".err.out.json", out)
			if tt.same && !bytes.Equal(out, in) {
				t.Errorf("a complete OpenAI error was changed:\n got %s\nwant %s", out, in)
			}
			e := decodeError(t, out)
			if *e.Error.Type != tt.typ {
				t.Errorf("type %q, want %q", *e.Error.Type, tt.typ)
			}
			if got := gjson.GetBytes(out, "error.code"); got.Type != gjson.String || got.Str != tt.code {
				t.Errorf("code %s, want %q", got.Raw, tt.code)
			}
			if got := gjson.GetBytes(out, "error.param").String(); got != tt.param {
				t.Errorf("param %q, want %q", got, tt.param)
			}
			// What Azure said beyond OpenAI's fields is kept.
			if inner := gjson.GetBytes(in, "error.innererror"); inner.Exists() && gjson.GetBytes(out, "error.innererror").Raw != inner.Raw {
				t.Errorf("innererror lost: %s", out)
			}
			if m := gjson.GetBytes(in, "error.message"); m.Exists() && *e.Error.Message != m.Str {
				t.Errorf("message %q, want Azure's %q", *e.Error.Message, m.Str)
			}
		})
	}
}

func FuzzAzureError(f *testing.F) {
	for _, s := range []string{
		`{"error":{"code":"429","message":"slow down"}}`,
		`{"error":{"message":"x","type":null,"param":"prompt","code":"content_filter","innererror":{}}}`,
		`{"error":{"message":"x","type":"invalid_request_error","param":null,"code":400}}`,
		`{"error":{"message":"x","type":7,"code":{"a":1}}}`,
		`{"statusCode":401,"message":"Unauthorized"}`,
		`{"error":{"message":"x"},"error":{"message":"y"}}`,
		`{"error":{"message":"\u0000","code":1e400}}`,
		`[{"error":{"message":"x"}}]`, `"x"`, ``, `<html>`, "\xff",
	} {
		f.Add(429, []byte(s))
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			status = 500
		}
		out := AzureError(status, body)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON for %q: %q", body, out)
		}
		if m := gjson.GetBytes(out, "error.message"); m.Type != gjson.String {
			t.Fatalf("error.message is %s in %q (body %q)", m.Raw, out, body)
		}
		if ty := gjson.GetBytes(out, "error.type"); ty.Type != gjson.String || ty.Str == "" {
			t.Fatalf("error.type is %s in %q (body %q)", ty.Raw, out, body)
		}
		if status == 429 && gjson.GetBytes(out, "error.code").Str != "rate_limit_exceeded" {
			t.Fatalf("429 without rate_limit_exceeded: %q", out)
		}
	})
}

// azureBenchBody is a streaming request with tools, about size bytes.
func azureBenchBody(size int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"model":"gpt-4o","stream":true,"temperature":0.3,"tool_choice":"auto","tools":[`)
	for i := range 4 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"type":"function","function":{"name":"tool_` + string(rune('a'+i)) +
			`","description":"Look something up.","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}}`)
	}
	sb.WriteString(`],"messages":[{"role":"system","content":"You are terse."}`)
	for sb.Len() < size-2 {
		sb.WriteString(`,{"role":"user","content":"Summarize the following paragraph about Envoy external processing in one line."}`)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// BenchmarkAzureRequest translates a streaming request with tools that
// needs stream_options.include_usage added (the common rewrite).
func BenchmarkAzureRequest(b *testing.B) {
	tr, _ := For("azure-openai")
	be := &config.RBackend{Name: "az", Schema: "azure-openai", Credential: "az-bench",
		Azure: config.AzureOptions{APIVersion: "2024-10-21", Auth: "api-key"}}
	for _, size := range []struct {
		name string
		n    int
	}{{"2KB", 2 << 10}, {"64KB", 64 << 10}} {
		body := azureBenchBody(size.n)
		req := &Request{Body: body, Backend: be, ClientModel: "gpt-4o", Model: "gpt4o-prod", Stream: true}
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

// BenchmarkAzureStreamChunk is the per-chunk cost of an Azure stream: the
// answer is OpenAI's and passes unchanged.
func BenchmarkAzureStreamChunk(b *testing.B) {
	in, err := os.ReadFile("testdata/azure/stream_text.sse")
	if err != nil {
		b.Fatal(err)
	}
	events := bytes.SplitAfter(in, []byte("\n\n"))
	tr, _ := For("azure-openai")
	body := tr.Response(&Response{Status: 200, ContentType: "text/event-stream", Stream: true}).Body
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, pass := body.Chunk(events[i%len(events)], false); !pass {
			b.Fatal("chunk rewritten")
		}
		i++
	}
}

// BenchmarkAzureError rewrites a 429 body (type and code filled in).
func BenchmarkAzureError(b *testing.B) {
	in, err := os.ReadFile("testdata/azure/error_rate_limit.err")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		AzureError(429, in)
	}
}
