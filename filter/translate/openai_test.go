package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

var update = flag.Bool("update", false, "rewrite testdata/openai/*.out.json and the upstream part of the sidecars")

// sidecar is testdata/openai/<case>.json: what the upstream role knows about
// the attempt, and what the translator must ask Envoy to send.
type sidecar struct {
	Request struct {
		Schema     string `json:"schema"`
		Model      string `json:"model"`
		Stream     bool   `json:"stream,omitempty"`
		BasePath   string `json:"base_path,omitempty"`
		Credential string `json:"credential,omitempty"`
	} `json:"request"`
	Upstream *wantUpstream `json:"upstream,omitempty"`
}

type wantUpstream struct {
	Path       string      `json:"path"`
	SetHeaders [][2]string `json:"set_headers"`
	// BodyReplaced is false when the translator keeps the client's body
	// (Upstream.Body nil); <case>.out.json then equals <case>.in.json.
	BodyReplaced bool `json:"body_replaced"`
}

// TestOpenAIRequestGolden runs every testdata/openai/<case>.in.json through
// the translator named in <case>.json and compares the body sent upstream
// with <case>.out.json byte for byte, and the path and headers with the
// sidecar. Run with -update to rewrite both from the current output.
func TestOpenAIRequestGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "openai", "*.in.json"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range ins {
		base := strings.TrimSuffix(in, ".in.json")
		t.Run(filepath.Base(base), func(t *testing.T) {
			body := readFile(t, in)
			var sc sidecar
			if err := json.Unmarshal(readFile(t, base+".json"), &sc); err != nil {
				t.Fatalf("%s.json: %v", base, err)
			}
			tr, err := For(sc.Request.Schema)
			if err != nil {
				t.Fatal(err)
			}
			orig := bytes.Clone(body)
			up, err := tr.Request(&Request{
				Body:           body,
				Backend:        &config.RBackend{Name: "b", Schema: sc.Request.Schema, BasePath: sc.Request.BasePath, Credential: sc.Request.Credential},
				ClientModel:    gjson.GetBytes(body, "model").String(),
				Model:          sc.Request.Model,
				Stream:         sc.Request.Stream,
				UsageRequested: gjson.GetBytes(body, "stream_options.include_usage").Type == gjson.True,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, orig) {
				t.Error("the client's body was modified in place")
			}
			out := up.Body
			if out == nil {
				out = body
			}
			got := &wantUpstream{Path: up.Path, SetHeaders: up.SetHeaders, BodyReplaced: up.Body != nil}
			if *update {
				sc.Upstream = got
				js, err := json.MarshalIndent(sc, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, base+".json", append(js, '\n'))
				writeFile(t, base+".out.json", out)
				return
			}
			if sc.Upstream == nil {
				t.Fatalf("%s.json has no upstream section (run with -update to create it)", base)
			}
			if diff := cmp.Diff(sc.Upstream, got); diff != "" {
				t.Errorf("upstream request (-want +got):\n%s", diff)
			}
			if want := readFile(t, base+".out.json"); !bytes.Equal(out, want) {
				t.Errorf("body sent upstream\n got %s\nwant %s", out, want)
			}
			if !json.Valid(out) {
				t.Errorf("body sent upstream is not valid JSON: %s", out)
			}
		})
	}
}

// TestOpenAIRequestInvariants states the golden files' rules directly, so a
// careless -update cannot bless a wrong answer.
func TestOpenAIRequestInvariants(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "openai", "*.in.json"))
	for _, in := range ins {
		base := strings.TrimSuffix(in, ".in.json")
		t.Run(filepath.Base(base), func(t *testing.T) {
			var sc sidecar
			if err := json.Unmarshal(readFile(t, base+".json"), &sc); err != nil {
				t.Fatal(err)
			}
			if sc.Upstream == nil {
				t.Skip("no upstream section yet")
			}
			in, out := readFile(t, in), readFile(t, base+".out.json")
			if got := gjson.GetBytes(out, "model").String(); got != sc.Request.Model {
				t.Errorf("model %q, want %q", got, sc.Request.Model)
			}
			if sc.Request.Stream && !gjson.GetBytes(out, "stream_options.include_usage").Bool() {
				t.Error("stream without stream_options.include_usage")
			}
			if sc.Upstream.BodyReplaced == bytes.Equal(in, out) {
				t.Errorf("body_replaced=%v but in and out are %s", sc.Upstream.BodyReplaced, map[bool]string{true: "equal", false: "different"}[bytes.Equal(in, out)])
			}
			if want := sc.Request.BasePath + "/v1/chat/completions"; sc.Upstream.Path != want {
				t.Errorf("path %q, want %q", sc.Upstream.Path, want)
			}
			var auth []string
			for _, kv := range sc.Upstream.SetHeaders {
				if kv[0] == "authorization" {
					auth = append(auth, kv[1])
				}
			}
			switch {
			case sc.Request.Credential == "" && len(auth) != 0:
				t.Errorf("authorization set without a credential: %v", auth)
			case sc.Request.Credential != "" && (len(auth) != 1 || auth[0] != "Bearer "+sc.Request.Credential):
				t.Errorf("authorization %v, want one Bearer %s", auth, sc.Request.Credential)
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFor(t *testing.T) {
	// Every schema the config accepts has a translator; nothing else does.
	for _, schema := range config.Schemas {
		if _, err := For(schema); err != nil {
			t.Errorf("For(%q): %v", schema, err)
		}
	}
	for _, schema := range []string{"", "nope", "OpenAI"} {
		if _, err := For(schema); err == nil {
			t.Errorf("For(%q) gave no error", schema)
		}
	}
}

// errorJSON decodes an OpenAI error body, failing unless it has that shape.
type errorJSON struct {
	Error struct {
		Message *string `json:"message"`
		Type    *string `json:"type"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decodeError(t *testing.T, b []byte) errorJSON {
	t.Helper()
	var e errorJSON
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not JSON: %q: %v", b, err)
	}
	if e.Error.Message == nil || e.Error.Type == nil {
		t.Fatalf("not an OpenAI error: %s", b)
	}
	return e
}

func TestNormalizeError(t *testing.T) {
	const openAIErr = `{"error":{"message":"Rate limit reached","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`
	huge := strings.Repeat("x", 3000)
	tests := []struct {
		name     string
		body     string
		same     bool   // body must come back byte for byte
		wantMsg  string // "" means the status-text fallback
		keepsMsg string // the message must contain this (for pass-through text)
	}{
		{"openai error", openAIErr, true, "", ""},
		{"openai error without type", `{"error":{"message":"nope"}}`, true, "", ""},
		{"message field", `{"message":"model overloaded"}`, false, "model overloaded", ""},
		{"error string", `{"error":"invalid api key"}`, false, "invalid api key", ""},
		{"detail field", `{"detail":"Not Found"}`, false, "Not Found", ""},
		{"nested msg", `{"error":{"msg":"bad input"}}`, false, "bad input", ""},
		{"error message not a string", `{"error":{"message":42}}`, false, "", `"message":42`},
		{"html", "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n", false, "", "502 Bad Gateway"},
		{"plain text", "  upstream connect error  \n", false, "upstream connect error", ""},
		{"empty", "", false, "", ""},
		{"whitespace only", " \r\n\t", false, "", ""},
		{"empty message field", `{"message":""}`, false, "", `{"message":""}`},
		{"huge text", huge, false, "", ""},
		{"huge message field", `{"message":"` + huge + `"}`, false, "", ""},
		{"control bytes", "bad\x00\x01\xff", false, "bad\x00\x01\ufffd", ""},
	}
	statuses := []int{400, 401, 429, 500, 503}
	for _, tt := range tests {
		for _, status := range statuses {
			t.Run(tt.name+"/"+strconv.Itoa(status), func(t *testing.T) {
				got := NormalizeError(status, []byte(tt.body))
				if tt.same {
					if string(got) != tt.body {
						t.Errorf("OpenAI error changed:\n got %s\nwant %s", got, tt.body)
					}
					return
				}
				e := decodeError(t, got)
				if want := apierr.TypeForStatus(status); *e.Error.Type != want {
					t.Errorf("type %q, want %q", *e.Error.Type, want)
				}
				if e.Error.Code == nil || *e.Error.Code != "upstream_error" {
					t.Errorf("code %v, want upstream_error", e.Error.Code)
				}
				msg := *e.Error.Message
				switch {
				case tt.keepsMsg != "":
					if !strings.Contains(msg, tt.keepsMsg) {
						t.Errorf("message %q does not contain %q", msg, tt.keepsMsg)
					}
				case tt.wantMsg != "":
					if msg != tt.wantMsg {
						t.Errorf("message %q, want %q", msg, tt.wantMsg)
					}
				default:
					if !strings.HasPrefix(msg, "upstream returned ") || len(msg) <= len("upstream returned ") {
						t.Errorf("message %q, want the status-text fallback", msg)
					}
				}
			})
		}
	}
}

func TestNormalizeErrorTypes(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{
		{400, "invalid_request_error"},
		{401, "authentication_error"},
		{429, "rate_limit_error"},
		{500, "server_error"},
		{503, "server_error"},
	}
	for _, tt := range tests {
		e := decodeError(t, NormalizeError(tt.status, []byte(`{"message":"x"}`)))
		if *e.Error.Type != tt.want {
			t.Errorf("status %d: type %q, want %q", tt.status, *e.Error.Type, tt.want)
		}
	}
}

func TestResponseBody(t *testing.T) {
	tr, _ := For("openai")
	t.Run("2xx passes every chunk", func(t *testing.T) {
		b := tr.Response(&Response{Status: 200, ContentType: "text/event-stream", Stream: true}).Body
		for _, eos := range []bool{false, false, true} {
			if out, pass := b.Chunk([]byte("data: {}\n\n"), eos); !pass || out != nil {
				t.Errorf("Chunk(eos=%v) = %q, %v; want nil, true", eos, out, pass)
			}
		}
	})
	tests := []struct {
		name    string
		status  int
		chunks  []string
		wantMsg string
		same    bool
	}{
		{"openai error split across chunks", 429,
			[]string{`{"error":{"message":"slow`, ` down","type":"rate_limit_error","param":null,"code":null}}`, ""}, "slow down", true},
		{"foreign error", 503, []string{`{"detail":`, `"overloaded"}`}, "overloaded", false},
		{"html in one chunk with eos", 502, []string{"<html>Bad Gateway</html>"}, "<html>Bad Gateway</html>", false},
		{"empty with eos only", 500, []string{""}, "upstream returned Internal Server Error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tr.Response(&Response{Status: tt.status, ContentType: "application/json"}).Body
			var out []byte
			for i, c := range tt.chunks {
				eos := i == len(tt.chunks)-1
				got, pass := b.Chunk([]byte(c), eos)
				if pass {
					t.Fatalf("chunk %d passed through; an error body must be rewritten", i)
				}
				if !eos && len(got) != 0 {
					t.Fatalf("chunk %d emitted %q before end of stream", i, got)
				}
				out = got
			}
			if tt.same && string(out) != strings.Join(tt.chunks, "") {
				t.Errorf("OpenAI error changed: %s", out)
			}
			e := decodeError(t, out)
			if *e.Error.Message != tt.wantMsg {
				t.Errorf("message %q, want %q", *e.Error.Message, tt.wantMsg)
			}
		})
	}
	t.Run("over the buffer limit", func(t *testing.T) {
		b := tr.Response(&Response{Status: 500}).Body
		chunk := bytes.Repeat([]byte("y"), 64<<10)
		for i := 0; i < 2*maxErrorBody/len(chunk); i++ {
			if out, pass := b.Chunk(chunk, false); pass || len(out) != 0 {
				t.Fatalf("chunk %d: %q, %v", i, out, pass)
			}
		}
		out, _ := b.Chunk(nil, true)
		e := decodeError(t, out)
		if *e.Error.Message != "upstream returned Internal Server Error" {
			t.Errorf("message %q", *e.Error.Message)
		}
	})
}

func FuzzNormalizeError(f *testing.F) {
	for _, s := range []string{
		`{"error":{"message":"x","type":"server_error","param":null,"code":null}}`,
		`{"message":"x"}`, `{"error":"x"}`, `{"detail":"x"}`, `{"error":{"msg":"x"}}`,
		`{"error":{"message":1}}`, `[1,2]`, `"str"`, `null`, "<html></html>", "", "\xff\x00", `{"message":"\u0000"}`,
	} {
		f.Add(503, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			status = 500
		}
		out := NormalizeError(status, body)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON for body %q: %q", body, out)
		}
		var v struct {
			Error struct {
				Message any `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		if _, ok := v.Error.Message.(string); !ok {
			t.Fatalf("error.message is %T in %q (body %q)", v.Error.Message, out, body)
		}
	})
}

// BenchmarkOpenAIRequest translates a 2 KB streaming request that needs both
// a model override and include_usage, the upstream role's common case.
// Compare runs with benchstat:
//
//	go test -run='^$' -bench=OpenAIRequest -count=10 ./filter/translate > new.txt
func BenchmarkOpenAIRequest(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"model":"auto","stream":true,"temperature":0.3,"messages":[{"role":"system","content":"You are terse."}`)
	for sb.Len() < 2000 {
		sb.WriteString(`,{"role":"user","content":"Summarize the following paragraph about Envoy external processing in one line."}`)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	tr, _ := For("openai")
	be := &config.RBackend{Name: "primary", Schema: "openai", Credential: "sk-bench"}
	req := &Request{Body: body, Backend: be, ClientModel: "gpt-4o-mini", Model: "gpt-4o-mini-2024-07-18", Stream: true}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		up, err := tr.Request(req)
		if err != nil || up.Body == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenAIRequestUnchanged is the no-rewrite path: the body already
// names the served model and asks for usage.
func BenchmarkOpenAIRequestUnchanged(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"` + strings.Repeat("a", 1900) + `"}]}`)
	tr, _ := For("openai")
	req := &Request{Body: body, Backend: &config.RBackend{Name: "primary", Schema: "openai", Credential: "sk-bench"}, ClientModel: "gpt-4o-mini", Model: "gpt-4o-mini", Stream: true, UsageRequested: true}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if up, err := tr.Request(req); err != nil || up.Body != nil {
			b.Fatal(err)
		}
	}
}
