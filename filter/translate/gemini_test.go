package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/usage"
)

// geminiClock is the fixed time of every golden answer.
var geminiClock = func() time.Time { return time.Unix(1750000000, 0) }

// TestGeminiRequestGolden runs testdata/gemini/<case>.in.json (an OpenAI
// body) through the gemini translator with the attempt in <case>.json, and
// compares the GenerateContentRequest with <case>.out.json and the path and
// headers with the sidecar's upstream section (-update rewrites both).
func TestGeminiRequestGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "gemini", "*.in.json"))
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
				Body:        body,
				Backend:     &config.RBackend{Name: "g", Schema: sc.Request.Schema, BasePath: sc.Request.BasePath, Credential: sc.Request.Credential},
				ClientModel: gjson.GetBytes(body, "model").String(),
				Model:       sc.Request.Model,
				Stream:      sc.Request.Stream,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, orig) {
				t.Error("the client's body was modified in place")
			}
			if !json.Valid(up.Body) {
				t.Fatalf("body sent upstream is not valid JSON: %s", up.Body)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, up.Body, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			got := &wantUpstream{Path: up.Path, SetHeaders: up.SetHeaders, BodyReplaced: up.Body != nil}
			if *update {
				sc.Upstream = got
				js, err := json.MarshalIndent(sc, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, base+".json", append(js, '\n'))
			} else if sc.Upstream == nil {
				t.Fatalf("%s.json has no upstream section (run with -update to create it)", base)
			} else if diff := cmp.Diff(sc.Upstream, got); diff != "" {
				t.Errorf("upstream request (-want +got):\n%s", diff)
			}
			golden(t, base+".out.json", pretty.Bytes())
		})
	}
}

// TestGeminiRequestInvariants states the request goldens' rules directly,
// so a careless -update cannot bless a wrong answer.
func TestGeminiRequestInvariants(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "gemini", "*.in.json"))
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
			in, out := gjson.ParseBytes(readFile(t, in)), gjson.ParseBytes(readFile(t, base+".out.json"))
			method := ":generateContent"
			if sc.Request.Stream {
				method = ":streamGenerateContent?alt=sse"
			}
			want := sc.Request.BasePath + "/v1beta/models/" + strings.TrimPrefix(sc.Request.Model, "models/") + method
			if sc.Upstream.Path != want {
				t.Errorf("path %q, want %q", sc.Upstream.Path, want)
			}
			var key []string
			for _, kv := range sc.Upstream.SetHeaders {
				if kv[0] == "x-goog-api-key" {
					key = append(key, kv[1])
				}
			}
			if (sc.Request.Credential == "") != (len(key) == 0) || len(key) > 1 || len(key) == 1 && key[0] != sc.Request.Credential {
				t.Errorf("x-goog-api-key %v for credential %q", key, sc.Request.Credential)
			}
			for _, k := range []string{"model", "messages", "stream", "stream_options", "tool_choice", "max_tokens", "temperature"} {
				if out.Get(k).Exists() {
					t.Errorf("OpenAI field %q sent to Gemini", k)
				}
			}
			// Every role is user or model, and no content is empty.
			out.Get("contents").ForEach(func(_, c gjson.Result) bool {
				if r := c.Get("role").Str; r != "user" && r != "model" {
					t.Errorf("role %q", r)
				}
				if len(c.Get("parts").Array()) == 0 {
					t.Errorf("content without parts: %s", c.Raw)
				}
				return true
			})
			if n := len(in.Get("tools").Array()); n > 0 && len(out.Get("tools.0.functionDeclarations").Array()) != n {
				t.Errorf("%d tools, %d declarations", n, len(out.Get("tools.0.functionDeclarations").Array()))
			}
			for _, bad := range []string{"additionalProperties", "$schema", `"strict"`} {
				if strings.Contains(out.Get("tools").Raw+out.Get("generationConfig.responseSchema").Raw, bad) {
					t.Errorf("schema keeps %s", bad)
				}
			}
		})
	}
}

func TestGeminiRequestErrors(t *testing.T) {
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body string
		drop       []string
		status     int
		param      string // the Unsupported parameter; "" for other errors
		dropped    string // with drop: a key that must not appear upstream
	}{
		{"n>1", `{` + msgs + `,"n":2}`, nil, 400, "n", ""},
		{"logprobs", `{` + msgs + `,"logprobs":true}`, nil, 400, "logprobs", ""},
		{"logit_bias", `{` + msgs + `,"logit_bias":{"1":2}}`, nil, 400, "logit_bias", ""},
		{"parallel_tool_calls false", `{` + msgs + `,"parallel_tool_calls":false}`, nil, 400, "parallel_tool_calls", ""},
		{"audio out", `{` + msgs + `,"modalities":["text","audio"]}`, nil, 400, "modalities", ""},
		{"http image without type", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x.test/img"}}]}]}`, nil, 400, "image_url", ""},
		{"http image dropped", `{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x.test/img"}}]}]}`, []string{"image_url"}, 0, "", "fileData"},
		{"n dropped", `{` + msgs + `,"n":3}`, []string{"n"}, 0, "", "candidateCount"},
		{"non-function tool", `{` + msgs + `,"tools":[{"type":"web_search"}]}`, nil, 400, "tools", ""},
		{"response_format unknown", `{` + msgs + `,"response_format":{"type":"grammar"}}`, nil, 400, "response_format", ""},
		{"file by id", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"f-1"}}]}]}`, nil, 400, "file", ""},
		{"unknown tool result", `{"messages":[{"role":"tool","tool_call_id":"nope","content":"x"}]}`, nil, 400, "", ""},
		{"bad arguments", `{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1"}}]}]}`, nil, 400, "", ""},
		{"bad data url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,xyz"}}]}]}`, nil, 400, "", ""},
		{"unknown role", `{"messages":[{"role":"robot","content":"x"}]}`, nil, 400, "", ""},
		{"no messages", `{"model":"x"}`, nil, 400, "", ""},
		{"not an object", `[1]`, nil, 400, "", ""},
		{"unknown tool_choice", `{` + msgs + `,"tool_choice":"maybe"}`, nil, 400, "", ""},
		{"unknown effort", `{` + msgs + `,"reasoning_effort":"extreme"}`, nil, 400, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &config.RBackend{Name: "g", Schema: "gemini", DropParams: tt.drop}
			up, err := gemini{}.Request(&Request{Body: []byte(tt.body), Backend: b, Model: "gemini-2.5-flash"})
			if tt.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(up.Body), tt.dropped) {
					t.Errorf("dropped parameter reached Gemini: %s", up.Body)
				}
				return
			}
			var e *apierr.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want an apierr.Error", err)
			}
			if e.Status != tt.status || (tt.param != "" && e.Param != tt.param) {
				t.Errorf("status %d param %q, want %d %q (%s)", e.Status, e.Param, tt.status, tt.param, e.Message)
			}
		})
	}
}

// geminiResponseCases are the answer goldens: provider input, client
// output, and whether the client asked for a stream.
func geminiResponseCases(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.response.json", "*.stream.sse"} {
		m, _ := filepath.Glob(filepath.Join("testdata", dir, pat))
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no answer fixtures")
	}
	return files
}

func goldenOut(in string) string {
	if s, ok := strings.CutSuffix(in, ".response.json"); ok {
		return s + ".response.out.json"
	}
	return strings.TrimSuffix(in, ".sse") + ".out.sse"
}

// TestGeminiResponseGolden translates every answer fixture whole and split
// at every byte boundary, and compares with the golden output.
func TestGeminiResponseGolden(t *testing.T) {
	for _, in := range geminiResponseCases(t, "gemini") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			stream := strings.HasSuffix(in, ".sse")
			tr := gemini{now: geminiClock}
			newBody := func() Body {
				a := tr.Response(&Response{Status: 200, ContentType: "application/json", Stream: stream, Model: "gemini-2.5-flash", Reasoning: true})
				return a.Body
			}
			out := splitEverywhere(t, readFile(t, in), newBody)
			golden(t, goldenOut(in), out)
			checkOpenAIAnswer(t, out, stream)
		})
	}
}

// checkOpenAIAnswer checks an answer's OpenAI shape: a stream has a role
// chunk first, JSON events, and ends with finish, usage and [DONE] exactly
// when it has a finish reason and no error.
func checkOpenAIAnswer(t *testing.T, out []byte, stream bool) {
	t.Helper()
	if !stream {
		if !json.Valid(out) {
			return // a cut body stays cut
		}
		if !gjson.GetBytes(out, "usage.prompt_tokens").Exists() && !gjson.GetBytes(out, "error").Exists() {
			t.Errorf("answer without usage: %s", out)
		}
		return
	}
	tr := usage.NewTracker(true)
	tr.Write(out)
	res := tr.Finish()
	events := strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n")
	if len(out) == 0 {
		return
	}
	if !strings.Contains(events[0], `"role":"assistant"`) {
		t.Errorf("first event is not the role chunk: %s", events[0])
	}
	finished := strings.Contains(string(out), `"finish_reason":"`)
	if res.ErrorEvent && res.Done {
		t.Error("[DONE] after an error event")
	}
	if finished && !res.ErrorEvent && (!res.Done || !res.Known) {
		t.Errorf("finished stream without usage and [DONE]: %+v", res)
	}
}

func TestGeminiUsage(t *testing.T) {
	tests := []struct {
		meta string
		want usage.Usage
	}{
		{`{"promptTokenCount":120,"candidatesTokenCount":2,"cachedContentTokenCount":100,"thoughtsTokenCount":30,"totalTokenCount":152}`,
			usage.Usage{Input: 120, Output: 32, CachedInput: 100, Reasoning: 30}},
		{`{"promptTokenCount":50,"candidatesTokenCount":30,"thoughtsTokenCount":5,"toolUsePromptTokenCount":3}`,
			usage.Usage{Input: 53, Output: 35, Reasoning: 5}},
		{`{"promptTokenCount":7}`, usage.Usage{Input: 7}},
		{`{"promptTokenCount":-1,"candidatesTokenCount":"x"}`, usage.Usage{}},
		{`null`, usage.Usage{}},
	}
	for _, tt := range tests {
		if got := geminiUsage(gjson.Parse(tt.meta)); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.meta, got, tt.want)
		}
	}
}

func TestGeminiFinish(t *testing.T) {
	for in, want := range map[string]string{
		"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
		"BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
		"OTHER": "stop", "MALFORMED_FUNCTION_CALL": "stop", "": "", "FINISH_REASON_UNSPECIFIED": "",
	} {
		if got := geminiFinish(in); got != want {
			t.Errorf("geminiFinish(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGeminiErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		code   string
	}{
		{"quota", 429, `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`, "rate_limit_exceeded"},
		{"overloaded", 503, `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`, "unavailable"},
		{"bad request", 400, `{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}`, "invalid_argument"},
		{"context length", 400, `{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`, "context_length_exceeded"},
		{"bad key", 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`, "invalid_api_key"},
		{"permission", 403, `{"error":{"code":403,"message":"Permission denied on resource project x.","status":"PERMISSION_DENIED"}}`, "permission_denied"},
		{"unauthenticated", 401, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`, "invalid_api_key"},
		{"not found", 404, `{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta.","status":"NOT_FOUND"}}`, "not_found"},
		{"array wrapped", 429, `[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]`, "rate_limit_exceeded"},
		{"html", 502, `<html>bad gateway</html>`, "upstream_error"},
		{"empty", 500, ``, "upstream_error"},
	}
	for _, tt := range tests {
		for _, tr := range []Translator{gemini{}, vertex{}} {
			t.Run(tt.name, func(t *testing.T) {
				a := tr.Response(&Response{Status: tt.status, ContentType: "application/json"})
				if a.ContentType != "application/json" || (a.Status != 0 && a.Status != tt.status) {
					t.Errorf("answer status %d content-type %q", a.Status, a.ContentType)
				}
				body := []byte(tt.body)
				out := feedBody(a.Body, body[:len(body)/2], body[len(body)/2:])
				e := decodeError(t, out)
				if e.Error.Code == nil || *e.Error.Code != tt.code {
					t.Errorf("code %v, want %q in %s", e.Error.Code, tt.code, out)
				}
				if want := apierr.TypeForStatus(tt.status); *e.Error.Type != want {
					t.Errorf("type %q, want %q", *e.Error.Type, want)
				}
				if m := gjson.Get(tt.body, "error.message").Str; m != "" && *e.Error.Message != m {
					t.Errorf("message %q, want %q", *e.Error.Message, m)
				}
			})
		}
	}
}

// TestGeminiStreamErrorStatus checks the status an error inside a 200 stream
// carries: the Google status's meaning, since the HTTP one was 200.
func TestGeminiStreamErrorStatus(t *testing.T) {
	for gs, want := range map[string]int{"RESOURCE_EXHAUSTED": 429, "UNAVAILABLE": 503, "INVALID_ARGUMENT": 400, "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401, "NOT_FOUND": 404, "INTERNAL": 500} {
		e := googleError(0, gjson.Parse(`{"message":"m","status":"`+gs+`"}`))
		if e.Status != want {
			t.Errorf("%s: status %d, want %d", gs, e.Status, want)
		}
	}
}

func FuzzGeminiStream(f *testing.F) {
	for _, in := range []string{"text.stream.sse", "tool_calls.stream.sse", "error.stream.sse", "truncated.stream.sse"} {
		b, err := os.ReadFile(filepath.Join("testdata", "gemini", in))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(len(b)/3))
	}
	f.Add([]byte("data: {\"error\":1}\n\ndata: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\n\n"), uint16(5))
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		i := int(cut) % (len(in) + 1)
		newBody := func() Body {
			return gemini{now: geminiClock}.Response(&Response{Status: 200, Stream: true, Model: "m"}).Body
		}
		whole := feedBody(newBody(), in)
		if split := feedBody(newBody(), in[:i:i], in[i:]); !bytes.Equal(whole, split) {
			t.Fatalf("split at %d differs:\n%s\n%s", i, whole, split)
		}
		tr := usage.NewTracker(true)
		tr.Write(whole)
		if res := tr.Finish(); res.Done && res.ErrorEvent {
			t.Fatalf("[DONE] after an error: %s", whole)
		}
		for _, ev := range strings.Split(string(whole), "\n\n") {
			if d, ok := strings.CutPrefix(ev, "data: "); ok && d != "[DONE]" && !json.Valid([]byte(d)) {
				t.Fatalf("invalid event %q", d)
			}
		}
	})
}

func FuzzGeminiRequest(f *testing.F) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "gemini", "*.in.json"))
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		up, err := gemini{}.Request(&Request{Body: body, Backend: &config.RBackend{Name: "g", Schema: "gemini"}, Model: "m"})
		if err != nil {
			var e *apierr.Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if gjson.ValidBytes(body) && !json.Valid(up.Body) {
			t.Fatalf("invalid request body for %q:\n%s", body, up.Body)
		}
	})
}

// geminiBenchBody is an OpenAI request of about size bytes with tools, a
// tool round trip and a long conversation.
func geminiBenchBody(size int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"model":"gemini","stream":true,"temperature":0.3,"max_tokens":512,"tools":[`)
	for i := range 4 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"type":"function","function":{"name":"tool` + string(rune('a'+i)) + `","description":"Looks things up.","parameters":{"type":"object","additionalProperties":false,"properties":{"q":{"type":"string"},"n":{"type":["integer","null"]}},"required":["q"]}}}`)
	}
	sb.WriteString(`],"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Find it."},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_0","type":"function","function":{"name":"toola","arguments":"{\"q\":\"x\"}"}}]},` +
		`{"role":"tool","tool_call_id":"call_0","content":"{\"hits\":3}"}`)
	for sb.Len() < size-200 {
		sb.WriteString(`,{"role":"user","content":"Summarize the following paragraph about Envoy external processing in one line."},{"role":"assistant","content":"Envoy asks an external server to process each request."}`)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

func BenchmarkGeminiRequest(b *testing.B) {
	for _, size := range []int{2 << 10, 64 << 10} {
		body := geminiBenchBody(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			req := &Request{Body: body, Backend: &config.RBackend{Name: "g", Schema: "gemini", Credential: "k"}, Model: "gemini-2.5-flash", Stream: true}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := (gemini{}).Request(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGeminiStreamChunk translates one typical streamed event (a text
// delta with usage so far) per iteration.
func BenchmarkGeminiStreamChunk(b *testing.B) {
	ev := []byte(`data: {"candidates": [{"content": {"parts": [{"text": " upon a time"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 12,"totalTokenCount": 12},"modelVersion": "gemini-2.5-flash","responseId": "st-1"}` + "\r\n\r\n")
	body := gemini{now: geminiClock}.Response(&Response{Status: 200, Stream: true, Model: "m"}).Body
	body.Chunk(ev, false)
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	for b.Loop() {
		body.Chunk(ev, false)
	}
}
