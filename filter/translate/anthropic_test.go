package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/usage"
)

// The Anthropic goldens live in testdata/anthropic:
//   - req_<case>.in.json (OpenAI request) → req_<case>.out.json (Anthropic
//     body) or, for requests that must be refused, req_<case>.err.json;
//   - resp_<case>.in.json (Anthropic message) → resp_<case>.out.json;
//   - stream_<case>.in.sse (Anthropic events) → stream_<case>.out.sse.
//
// Run with -update to rewrite the outputs; the invariant checks below keep a
// careless update from blessing a wrong answer.

// anthropicCreated is the fixed "created" stamp of the golden answers.
const anthropicCreated = 1700000000

var anthropicTest = anthropic{now: func() time.Time { return time.Unix(anthropicCreated, 0) }}

func anthropicBackend() *config.RBackend {
	return &config.RBackend{Name: "claude", Schema: "anthropic", Credential: "sk-ant-test",
		DropParams: []string{"logit_bias", "input_audio"},
		Anthropic:  config.AnthropicOptions{Version: "2023-06-01", MaxTokens: 4096}}
}

func anthropicRequest(body []byte) *Request {
	return &Request{Body: body, Backend: anthropicBackend(), ClientModel: gjson.GetBytes(body, "model").String(),
		Model: "claude-test-1", Stream: gjson.GetBytes(body, "stream").Bool()}
}

func globCases(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "anthropic", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs %s: %v", pattern, err)
	}
	return files
}

func TestAnthropicRequestGolden(t *testing.T) {
	for _, in := range globCases(t, "req_*.in.json") {
		base := strings.TrimSuffix(in, ".in.json")
		t.Run(filepath.Base(base), func(t *testing.T) {
			body := readFile(t, in)
			orig := bytes.Clone(body)
			up, err := anthropicTest.Request(anthropicRequest(body))
			if !bytes.Equal(body, orig) {
				t.Error("the client's body was modified in place")
			}
			wantErr := strings.HasPrefix(filepath.Base(base), "req_err_")
			if (err != nil) != wantErr {
				t.Fatalf("error %v, want error: %v", err, wantErr)
			}
			if err != nil {
				var e *apierr.Error
				if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Param == "" {
					t.Errorf("want a 400 naming the parameter, got %#v", err)
				}
				golden(t, base+".err.json", append(e.JSON(), '\n'))
				return
			}
			golden(t, base+".out.json", append(bytes.Clone(up.Body), '\n'))
			checkAnthropicBody(t, up.Body, gjson.GetBytes(body, "stream").Bool())
		})
	}
}

// checkAnthropicBody states the rules every translated body must keep.
func checkAnthropicBody(t *testing.T, b []byte, stream bool) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("not valid JSON: %s", b)
	}
	m := gjson.ParseBytes(b)
	if m.Get("model").Str != "claude-test-1" {
		t.Errorf("model %q", m.Get("model").Str)
	}
	if m.Get("max_tokens").Int() < 1 {
		t.Errorf("max_tokens %s", m.Get("max_tokens").Raw)
	}
	if m.Get("stream").Bool() != stream {
		t.Errorf("stream %s, want %v", m.Get("stream").Raw, stream)
	}
	prev := ""
	for i, msg := range m.Get("messages").Array() {
		role := msg.Get("role").Str
		if role != "user" && role != "assistant" {
			t.Errorf("messages[%d] has role %q", i, role)
		}
		if role == prev {
			t.Errorf("messages[%d]: two %s turns in a row", i, role)
		}
		prev = role
		for j, blk := range msg.Get("content").Array() {
			typ := blk.Get("type").Str
			if (typ == "tool_use" || typ == "thinking") && role != "assistant" || (typ == "tool_result" || typ == "image" || typ == "document") && role != "user" {
				t.Errorf("messages[%d].content[%d]: %s block in a %s turn", i, j, typ, role)
			}
			if typ == "tool_use" && !blk.Get("input").IsObject() {
				t.Errorf("messages[%d].content[%d]: tool_use input %s", i, j, blk.Get("input").Raw)
			}
		}
	}
}

func TestAnthropicRequestHeaders(t *testing.T) {
	tests := []struct {
		name     string
		basePath string
		cred     string
		version  string
		want     *Upstream
	}{
		{"defaults", "", "sk-ant", "2023-06-01", &Upstream{Path: "/v1/messages",
			SetHeaders: [][2]string{{"anthropic-version", "2023-06-01"}, {"x-api-key", "sk-ant"}}}},
		{"base path and version", "/anthropic/proxy", "k", "2024-01-01", &Upstream{Path: "/anthropic/proxy/v1/messages",
			SetHeaders: [][2]string{{"anthropic-version", "2024-01-01"}, {"x-api-key", "k"}}}},
		{"no credential", "", "", "", &Upstream{Path: "/v1/messages",
			SetHeaders: [][2]string{{"anthropic-version", "2023-06-01"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &config.RBackend{Name: "c", Schema: "anthropic", BasePath: tt.basePath, Credential: tt.cred,
				Anthropic: config.AnthropicOptions{Version: tt.version}}
			up, err := anthropicTest.Request(&Request{Body: []byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`), Backend: be, Model: "m"})
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(up.Body, "max_tokens").Int(); got != 4096 {
				t.Errorf("max_tokens %d, want the 4096 fallback", got)
			}
			up.Body = nil
			if diff := cmp.Diff(tt.want, up); diff != "" {
				t.Errorf("upstream (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnthropicRequestMaxTokensDefault(t *testing.T) {
	be := anthropicBackend()
	be.Anthropic.MaxTokens = 777
	up, err := anthropicTest.Request(&Request{Body: []byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":null}`), Backend: be, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if got := gjson.GetBytes(up.Body, "max_tokens").Int(); got != 777 {
		t.Errorf("max_tokens %d, want the backend's 777", got)
	}
}

func TestAnthropicRequestDropParams(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"seed":3,"n":2,"response_format":{"type":"json_object"}}`)
	be := anthropicBackend()
	if _, err := anthropicTest.Request(&Request{Body: body, Backend: be, Model: "m"}); err == nil {
		t.Fatal("unsupported parameters accepted")
	}
	be.DropParams = []string{"seed", "n", "response_format"}
	up, err := anthropicTest.Request(&Request{Body: body, Backend: be, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"seed", "n", "response_format", "output_config"} {
		if gjson.GetBytes(up.Body, k).Exists() {
			t.Errorf("%s reached Anthropic: %s", k, up.Body)
		}
	}
}

func TestAnthropicResponseJSONGolden(t *testing.T) {
	for _, in := range globCases(t, "resp_*.in.json") {
		base := strings.TrimSuffix(in, ".in.json")
		t.Run(filepath.Base(base), func(t *testing.T) {
			input := readFile(t, in)
			ans := anthropicTest.Response(&Response{Status: 200, ContentType: "application/json", Model: "claude-test-1", Reasoning: true})
			if ans.Status != 0 || ans.ContentType != "application/json" {
				t.Errorf("answer status %d content-type %q", ans.Status, ans.ContentType)
			}
			out := splitEverywhere(t, input, func() Body {
				return anthropicTest.Response(&Response{Status: 200, ContentType: "application/json", Model: "claude-test-1", Reasoning: true}).Body
			})
			golden(t, base+".out.json", append(bytes.Clone(out), '\n'))
			if !json.Valid(out) || gjson.GetBytes(out, "object").Str != "chat.completion" {
				t.Fatalf("not a chat.completion: %s", out)
			}
			want := anthropicWantUsage(gjson.GetBytes(input, "usage"))
			if got, _ := usage.FromOpenAI(gjson.GetBytes(out, "usage")); got != want {
				t.Errorf("usage %+v, want %+v", got, want)
			}
			if got, want := gjson.GetBytes(out, "choices.0.finish_reason").Str, anthropicStopReason(gjson.GetBytes(input, "stop_reason").Str); got != want {
				t.Errorf("finish_reason %q, want %q", got, want)
			}
		})
	}
}

// anthropicWantUsage is the exact mapping, stated independently of the code.
func anthropicWantUsage(u gjson.Result) usage.Usage {
	in, out := u.Get("input_tokens").Int(), u.Get("output_tokens").Int()
	read, write := u.Get("cache_read_input_tokens").Int(), u.Get("cache_creation_input_tokens").Int()
	return usage.Usage{Input: in + read + write, Output: out, CachedInput: read, CacheWrite: write,
		CacheWrite1h: u.Get("cache_creation.ephemeral_1h_input_tokens").Int(),
		WebSearches:  u.Get("server_tool_use.web_search_requests").Int()}
}

func newAnthropicStream() Body {
	return anthropicTest.Response(&Response{Status: 200, ContentType: "text/event-stream; charset=utf-8", Stream: true, Model: "claude-test-1", Reasoning: true}).Body
}

func TestAnthropicStreamGolden(t *testing.T) {
	for _, in := range globCases(t, "stream_*.in.sse") {
		base := strings.TrimSuffix(in, ".in.sse")
		t.Run(filepath.Base(base), func(t *testing.T) {
			input := readFile(t, in)
			out := splitEverywhere(t, input, newAnthropicStream)
			golden(t, base+".out.sse", out)

			// One byte at a time, too.
			b := newAnthropicStream()
			var bytewise []byte
			for i := range input {
				o, _ := b.Chunk(input[i:i+1], i == len(input)-1)
				bytewise = append(bytewise, o...)
			}
			if !bytes.Equal(bytewise, out) {
				t.Errorf("byte-by-byte output differs:\n got %s\nwant %s", bytewise, out)
			}
			checkOpenAIStream(t, input, out)
		})
	}
}

// checkOpenAIStream checks a translated stream against its input: OpenAI
// chunks only, the role chunk first, [DONE] exactly when the provider ended
// properly (and never after an error), usage exact.
func checkOpenAIStream(t *testing.T, input, out []byte) {
	t.Helper()
	var events []string
	var sc sse.Scanner
	sc.Feed(out, func(e sse.Event) {
		if len(e.Name) != 0 {
			t.Errorf("named event %q", e.Name)
		}
		events = append(events, string(e.Data))
	})
	if sc.Flush(func(sse.Event) {}) {
		t.Error("output ends mid-event")
	}
	if len(events) == 0 {
		t.Fatal("no output")
	}
	if gjson.Get(events[0], "choices.0.delta.role").Str != "assistant" {
		t.Errorf("first event is not the role chunk: %s", events[0])
	}
	proper := bytes.Contains(input, []byte(`"message_stop"`))
	failed := bytes.Contains(input, []byte(`event: error`))
	done := events[len(events)-1] == "[DONE]"
	if done != (proper && !failed) {
		t.Errorf("[DONE] at the end: %v; provider ended properly: %v, error: %v", done, proper, failed)
	}
	if failed && !gjson.Get(events[len(events)-1], "error.message").Exists() {
		t.Errorf("an error stream does not end with an error event: %s", events[len(events)-1])
	}
	tr := usage.NewTracker(true)
	tr.Write(out)
	res := tr.Finish()
	if !done {
		return
	}
	var want anthropicUsage
	var sc2 sse.Scanner
	sc2.Feed(input, func(e sse.Event) {
		d := gjson.ParseBytes(e.Data)
		want.read(d.Get("message.usage"))
		want.read(d.Get("usage"))
	})
	if !res.Known || res.Usage != want.usage() {
		t.Errorf("usage %+v (known %v), want %+v", res.Usage, res.Known, want.usage())
	}
	for _, ev := range events[:len(events)-1] {
		if !gjson.Valid(ev) || gjson.Get(ev, "object").Str != "chat.completion.chunk" {
			t.Errorf("not a chunk: %s", ev)
		}
	}
}

func TestAnthropicStreamToolIndexes(t *testing.T) {
	out := feedBody(newAnthropicStream(), readFile(t, filepath.Join("testdata", "anthropic", "stream_tools.in.sse")))
	args := map[int64]string{}
	ids := map[int64]string{}
	var sc sse.Scanner
	sc.Feed(out, func(e sse.Event) {
		gjson.GetBytes(e.Data, "choices.0.delta.tool_calls").ForEach(func(_, c gjson.Result) bool {
			i := c.Get("index").Int()
			if id := c.Get("id").Str; id != "" {
				ids[i] = id
			}
			args[i] += c.Get("function.arguments").Str
			return true
		})
	})
	want := map[int64]string{0: `{"city": "Paris"}`, 1: `{"city":"Oslo"}`}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("arguments by index (-want +got):\n%s", diff)
	}
	if ids[0] != "toolu_01T1x1fJ34qAmk2tNTrN7Up6" || ids[1] != "toolu_02" {
		t.Errorf("ids %v", ids)
	}
}

func TestAnthropicErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int // the answer's status rewrite (0: none)
		code       string
		typ        string
	}{
		{"overloaded 529", 529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}`, 503, "overloaded_error", "server_error"},
		{"rate limit", 429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`, 429, "rate_limit_exceeded", "rate_limit_error"},
		{"prompt too long", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}`, 400, "context_length_exceeded", "invalid_request_error"},
		{"context limit", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"input length and ` + "`max_tokens`" + ` exceed context limit: 197000 + 8192 > 200000"}}`, 400, "context_length_exceeded", "invalid_request_error"},
		{"bad request", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}`, 400, "invalid_request_error", "invalid_request_error"},
		{"auth", 401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, 401, "invalid_api_key", "authentication_error"},
		{"permission", 403, `{"type":"error","error":{"type":"permission_error","message":"no access"}}`, 403, "permission_error", "authentication_error"},
		{"not found", 404, `{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}`, 404, "not_found_error", "invalid_request_error"},
		{"api error", 500, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, 500, "api_error", "server_error"},
		{"not anthropic", 502, `<html>Bad Gateway</html>`, 502, "upstream_error", "server_error"},
		{"empty", 503, ``, 503, "upstream_error", "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans := anthropicTest.Response(&Response{Status: tt.status, ContentType: "application/json"})
			if ans.Status != tt.wantStatus || ans.ContentType != "application/json" {
				t.Errorf("answer status %d content-type %q, want %d application/json", ans.Status, ans.ContentType, tt.wantStatus)
			}
			body := []byte(tt.body)
			out := splitEverywhere(t, body, func() Body { return anthropicTest.Response(&Response{Status: tt.status}).Body })
			e := decodeError(t, out)
			if e.Error.Code == nil || *e.Error.Code != tt.code || *e.Error.Type != tt.typ {
				t.Errorf("error %s, want code %q type %q", out, tt.code, tt.typ)
			}
			if msg := gjson.GetBytes(body, "error.message").Str; msg != "" && *e.Error.Message != msg {
				t.Errorf("message %q, want %q", *e.Error.Message, msg)
			}
		})
	}
}

func TestAnthropicStreamErrorTypes(t *testing.T) {
	for typ, code := range map[string]string{"overloaded_error": "overloaded_error", "rate_limit_error": "rate_limit_exceeded", "api_error": "api_error"} {
		in := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\n" +
			"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"" + typ + "\",\"message\":\"boom\"}}\n\n"
		out := feedBody(newAnthropicStream(), []byte(in))
		if bytes.Contains(out, []byte("[DONE]")) {
			t.Errorf("%s: [DONE] after an error", typ)
		}
		last := out[bytes.LastIndex(out, []byte("data: "))+len("data: "):]
		if got := gjson.GetBytes(bytes.TrimSpace(last), "error.code").Str; got != code {
			t.Errorf("%s: error code %q, want %q in %s", typ, got, code, out)
		}
	}
}

func FuzzAnthropicStream(f *testing.F) {
	for _, p := range []string{"stream_text.in.sse", "stream_tools.in.sse", "stream_error.in.sse", "stream_crlf_refusal.in.sse"} {
		b, err := os.ReadFile(filepath.Join("testdata", "anthropic", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(len(b)/2))
	}
	f.Add([]byte("data: {\"type\":\"content_block_start\",\"index\":99999999999,\"content_block\":{\"type\":\"tool_use\"}}\n\n"), uint16(3))
	f.Fuzz(func(t *testing.T, input []byte, at uint16) {
		whole := feedBody(newAnthropicStream(), input)
		i := int(at) % (len(input) + 1)
		if split := feedBody(newAnthropicStream(), input[:i:i], input[i:]); !bytes.Equal(split, whole) {
			t.Fatalf("split at %d changes the output:\n got %q\nwant %q", i, split, whole)
		}
		var sc sse.Scanner
		sc.Feed(whole, func(e sse.Event) {
			if string(e.Data) != "[DONE]" && !json.Valid(e.Data) {
				t.Fatalf("invalid JSON event %q", e.Data)
			}
		})
		if sc.Flush(func(sse.Event) {}) {
			t.Fatalf("output ends mid-event: %q", whole)
		}
	})
}

// BenchmarkAnthropicRequest translates chat requests with tools and a
// multi-turn history of about 2 KB and 64 KB. Compare runs with benchstat:
//
//	go test -run='^$' -bench=Anthropic -count=10 ./filter/translate > new.txt
func BenchmarkAnthropicRequest(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"2KB", 2 << 10}, {"64KB", 64 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			body := anthropicBenchBody(size.n)
			req := &Request{Body: body, Backend: anthropicBackend(), ClientModel: "auto", Model: "claude-haiku-4-5", Stream: true}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := anthropicTest.Request(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func anthropicBenchBody(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"model":"auto","stream":true,"temperature":0.3,"max_tokens":512,"tools":[`)
	sb.WriteString(`{"type":"function","function":{"name":"get_weather","description":"Current weather for a city.","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}}},`)
	sb.WriteString(`{"type":"function","function":{"name":"search","description":"Search the web.","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}}],`)
	sb.WriteString(`"tool_choice":"auto","messages":[{"role":"system","content":"You are a helpful assistant that answers briefly."}`)
	for i := 0; sb.Len() < n; i++ {
		sb.WriteString(`,{"role":"user","content":"What is the weather in Paris today, and should I take an umbrella for the walk?"}`)
		sb.WriteString(`,{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}`)
		sb.WriteString(`,{"role":"tool","tool_call_id":"call_a","content":"14C, light rain expected in the afternoon."}`)
		sb.WriteString(`,{"role":"assistant","content":"Light rain this afternoon: take an umbrella."}`)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// BenchmarkAnthropicStreamChunk translates one content_block_delta event per
// chunk, the bulk of every stream.
func BenchmarkAnthropicStreamChunk(b *testing.B) {
	start := []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	chunk := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello there, friend\"}}\n\n")
	body := newAnthropicStream()
	body.Chunk(start, false)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if out, _ := body.Chunk(chunk, false); len(out) == 0 {
			b.Fatal("no output")
		}
	}
}
