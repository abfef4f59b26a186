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

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/sse"
)

// The golden files in testdata/client_anthropic are named by kind:
//   req_<case>.in.json     an Anthropic Messages request → .out.json (OpenAI)
//   json_<case>.in.json    an OpenAI chat.completion → .out.json (Anthropic message)
//   err_<status>_<case>.in.*  an OpenAI error body with that status → .out.json
//   stream_<case>.in.sse   an OpenAI stream → .out.sse (Anthropic events)
// Run with -update to rewrite the outputs; the invariant checks below keep a
// careless -update from blessing a wrong answer.

const caDir = "testdata/client_anthropic"

// caCases returns the bases (path without ".in.<ext>") of one kind.
func caCases(t testing.TB, pattern string) []string {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join(caDir, pattern))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs for %s: %v", pattern, err)
	}
	for i, in := range ins {
		ins[i] = in[:strings.Index(in, ".in.")]
	}
	return ins
}

func TestClientAnthropicRequestGolden(t *testing.T) {
	for _, base := range caCases(t, "req_*.in.json") {
		t.Run(filepath.Base(base), func(t *testing.T) {
			in := readFile(t, base+".in.json")
			orig := bytes.Clone(in)
			out, err := AnthropicRequestToOpenAI(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in, orig) {
				t.Error("the client's body was modified in place")
			}
			if !json.Valid(out) {
				t.Fatalf("not valid JSON: %s", out)
			}
			golden(t, base+".out.json", out)

			req := gjson.ParseBytes(in)
			res := gjson.ParseBytes(out)
			if got, want := res.Get("model").Str, req.Get("model").Str; got != want {
				t.Errorf("model %q, want %q", got, want)
			}
			if got, want := res.Get("max_tokens").Int(), req.Get("max_tokens").Int(); got != want {
				t.Errorf("max_tokens %d, want %d", got, want)
			}
			if req.Get("stream").Bool() != res.Get("stream").Bool() {
				t.Error("stream flag changed")
			}
			if res.Get("stream").Bool() && !res.Get("stream_options.include_usage").Bool() {
				t.Error("stream without stream_options.include_usage")
			}
			// Server tools (a type other than custom) are dropped.
			want := int64(0)
			for _, tool := range req.Get("tools").Array() {
				if typ := tool.Get("type").Str; typ == "" || typ == "custom" {
					want++
				}
			}
			if got := res.Get("tools.#").Int(); got != want {
				t.Errorf("%d tools, want %d", got, want)
			}
			caCheckToolOrder(t, res.Get("messages"))
		})
	}
}

// caCheckToolOrder states OpenAI's rule: every tool message answers a call of
// the nearest assistant message before it, with nothing else in between.
func caCheckToolOrder(t *testing.T, msgs gjson.Result) {
	t.Helper()
	calls := map[string]bool{}
	prev := ""
	for i, m := range msgs.Array() {
		role := m.Get("role").Str
		switch role {
		case "assistant":
			calls = map[string]bool{}
			for _, c := range m.Get("tool_calls").Array() {
				calls[c.Get("id").Str] = true
				if !gjson.Valid(c.Get("function.arguments").Str) {
					t.Errorf("messages[%d]: arguments %q are not JSON", i, c.Get("function.arguments").Str)
				}
			}
		case "tool":
			if prev != "assistant" && prev != "tool" {
				t.Errorf("messages[%d]: tool message after %s", i, prev)
			}
			if !calls[m.Get("tool_call_id").Str] {
				t.Errorf("messages[%d]: tool_call_id %q answers no call", i, m.Get("tool_call_id").Str)
			}
		case "user", "system":
		default:
			t.Errorf("messages[%d]: role %q", i, role)
		}
		prev = role
	}
}

// TestClientAnthropicRequestMapping pins the mapping rules on the golden outputs
// field by field.
func TestClientAnthropicRequestMapping(t *testing.T) {
	tests := []struct {
		file string
		path string
		want string // the raw JSON at path
	}{
		{"req_basic", "messages.0", `{"role":"system","content":"You are a terse assistant."}`},
		{"req_basic", "stop", `["\n\nHuman:","END"]`},
		{"req_basic", "user", `"user-1234"`},
		{"req_basic", "temperature", `0.5`},
		{"req_basic", "stream", ``},
		{"req_multiturn_system_blocks", "messages.0.content.1", `{"type":"text","text":"Always answer in French."}`},
		{"req_multiturn_system_blocks", "messages.1", `{"role":"user","content":"Hi"}`},
		{"req_multiturn_system_blocks", "messages.4", `{"role":"assistant","content":"La capitale"}`},
		{"req_multiturn_system_blocks", "top_p", `0.9`},
		{"req_images", "messages.0.content.0.image_url.url", `"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="`},
		{"req_images", "messages.0.content.1.image_url.url", `"https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"`},
		{"req_images", "messages.0.content.2", `{"type":"text","text":"Compare these two images."}`},
		{"req_tools", "tool_choice", `"required"`},
		{"req_tools", "parallel_tool_calls", `false`},
		{"req_tools", "stream_options", `{"include_usage":true}`},
		{"req_tools", "tools.1.function.strict", `true`},
		{"req_tools", "messages.1.content", `"I'll check both."`},
		{"req_tools", "messages.1.tool_calls.1", `{"id":"toolu_01B","type":"function","function":{"name":"get_time","arguments":"{\"timezone\": \"Asia/Tokyo\"}"}}`},
		{"req_tools", "messages.2", `{"role":"tool","content":"15 degrees, cloudy","tool_call_id":"toolu_01A"}`},
		{"req_tools", "messages.3", `{"role":"tool","content":"Error: time service unavailable\nretry later","tool_call_id":"toolu_01B"}`},
		{"req_tools", "messages.4", `{"role":"user","content":"Thanks. Summarize."}`},
		{"req_tool_choice_named", "tool_choice", `{"type":"function","function":{"name":"record_summary"}}`},
		{"req_tool_choice_named", "messages.1.content", `null`},
		{"req_tool_choice_named", "messages.2", `{"role":"tool","content":"","tool_call_id":"toolu_9"}`},
		{"req_tool_choice_none", "tool_choice", `"none"`},
		{"req_tool_choice_auto_no_tools", "tool_choice", ``},
		{"req_tool_choice_auto_no_tools", "stop", ``},
		{"req_output_format", "response_format.type", `"json_schema"`},
		{"req_output_format", "response_format.json_schema.schema.required", `["name","email","plan"]`},
		{"req_output_format_beta", "response_format.json_schema.strict", `true`},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.path, func(t *testing.T) {
			out, err := AnthropicRequestToOpenAI(readFile(t, filepath.Join(caDir, tt.file+".in.json")))
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(out, tt.path).Raw; got != tt.want {
				t.Errorf("%s = %s, want %s", tt.path, got, tt.want)
			}
		})
	}
}

func TestClientAnthropicRequestErrors(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body, param string
		code              string // "" for plain validation errors
	}{
		{"not json", `{"model":`, "", ""},
		{"array", `[1]`, "", ""},
		{"no model", `{"max_tokens":5,` + msgs + `}`, "model", ""},
		{"model not a string", `{"model":5,"max_tokens":5,` + msgs + `}`, "model", ""},
		{"no max_tokens", `{"model":"m",` + msgs + `}`, "max_tokens", ""},
		{"max_tokens zero", `{"model":"m","max_tokens":0,` + msgs + `}`, "max_tokens", ""},
		{"max_tokens fraction", `{"model":"m","max_tokens":1.5,` + msgs + `}`, "max_tokens", ""},
		{"max_tokens string", `{"model":"m","max_tokens":"5",` + msgs + `}`, "max_tokens", ""},
		{"no messages", `{"model":"m","max_tokens":5}`, "messages", ""},
		{"empty messages", `{"model":"m","max_tokens":5,"messages":[]}`, "messages", ""},
		{"message not object", `{"model":"m","max_tokens":5,"messages":["x"]}`, "messages.0", ""},
		{"content number", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":5}]}`, "messages.0.content", ""},
		{"empty content", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[]}]}`, "messages.0.content", ""},
		{"block without type", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"text":"x"}]}]}`, "messages.0.content.0", ""},
		{"text without text", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text"}]}]}`, "messages.0.content.0.text", ""},
		{"unknown block", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"video"}]}]}`, "messages.0.content.0.type", ""},
		{"tool_use in user", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"b","input":{}}]}]}`, "messages.0.content.0.type", ""},
		{"tool_result in assistant", `{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"a"}]}]}`, "messages.0.content.0.type", ""},
		{"image bad source", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"ftp"}}]}]}`, "messages.0.content.0.source.type", ""},
		{"image no data", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png"}}]}]}`, "messages.0.content.0.source", ""},
		{"image file source", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, "messages.0.content.0.source.type", "unsupported_parameter"},
		{"document", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]}`, "messages.0.content.0.type", "unsupported_parameter"},
		{"tool_result image", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}]}`, "messages.0.content.0.content.0.type", "unsupported_parameter"},
		{"tool_result no id", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}`, "messages.0.content.0.tool_use_id", ""},
		{"tool_use no id", `{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"b","input":{}}]}]}`, "messages.0.content.0.id", ""},
		{"tool_use input array", `{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"b","input":[]}]}]}`, "messages.0.content.0.input", ""},
		{"system number", `{"model":"m","max_tokens":5,"system":5,` + msgs + `}`, "system", ""},
		{"system image block", `{"model":"m","max_tokens":5,"system":[{"type":"image"}],` + msgs + `}`, "system.0", ""},
		{"bad role", `{"model":"m","max_tokens":5,"messages":[{"role":"tool","content":"x"}]}`, "messages.0.role", ""},
		{"system message image", `{"model":"m","max_tokens":5,"messages":[{"role":"system","content":[{"type":"image"}]}]}`, "messages.0.content.0", ""},
		{"tool without schema after a server tool", `{"model":"m","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"},{"name":"t"}],` + msgs + `}`, "tools.1.input_schema", ""},
		{"unknown field", `{"model":"m","max_tokens":5,"container":"c",` + msgs + `}`, "container", "unsupported_parameter"},
		{"tool without schema", `{"model":"m","max_tokens":5,"tools":[{"name":"t"}],` + msgs + `}`, "tools.0.input_schema", ""},
		{"tool without name", `{"model":"m","max_tokens":5,"tools":[{"input_schema":{}}],` + msgs + `}`, "tools.0.name", ""},
		{"tools not a list", `{"model":"m","max_tokens":5,"tools":{},` + msgs + `}`, "tools", ""},
		{"tool_choice any without tools", `{"model":"m","max_tokens":5,"tool_choice":{"type":"any"},` + msgs + `}`, "tool_choice", ""},
		{"tool_choice bad type", `{"model":"m","max_tokens":5,"tools":[{"name":"t","input_schema":{}}],"tool_choice":{"type":"some"},` + msgs + `}`, "tool_choice.type", ""},
		{"tool_choice tool without name", `{"model":"m","max_tokens":5,"tools":[{"name":"t","input_schema":{}}],"tool_choice":{"type":"tool"},` + msgs + `}`, "tool_choice.name", ""},
		{"format not json_schema", `{"model":"m","max_tokens":5,"output_config":{"format":{"type":"xml"}},` + msgs + `}`, "output_config.format.type", ""},
		{"format without schema", `{"model":"m","max_tokens":5,"output_format":{"type":"json_schema"},` + msgs + `}`, "output_format.schema", ""},
		{"stream string", `{"model":"m","max_tokens":5,"stream":"yes",` + msgs + `}`, "stream", ""},
		{"stop not strings", `{"model":"m","max_tokens":5,"stop_sequences":["a",1],` + msgs + `}`, "stop_sequences.1", ""},
		{"temperature string", `{"model":"m","max_tokens":5,"temperature":"hot",` + msgs + `}`, "temperature", ""},
		{"user_id number", `{"model":"m","max_tokens":5,"metadata":{"user_id":5},` + msgs + `}`, "metadata.user_id", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := AnthropicRequestToOpenAI([]byte(tt.body))
			var e *apierr.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %s, %v; want an *apierr.Error", out, err)
			}
			if e.Status != 400 || e.Param != tt.param || e.Code != tt.code || e.Message == "" {
				t.Errorf("got status %d param %q code %q message %q; want 400, %q, %q", e.Status, e.Param, e.Code, e.Message, tt.param, tt.code)
			}
			if tt.param != "" && !strings.Contains(e.Message, tt.param) {
				t.Errorf("message %q does not name %q", e.Message, tt.param)
			}
			if ae := AnthropicError(e); gjson.GetBytes(ae, "error.type").Str != "invalid_request_error" {
				t.Errorf("AnthropicError = %s", ae)
			}
		})
	}
}

const caModel = "claude-client-model"

func TestClientAnthropicResponseJSONGolden(t *testing.T) {
	for _, base := range caCases(t, "json_*.in.json") {
		t.Run(filepath.Base(base), func(t *testing.T) {
			in := readFile(t, base+".in.json")
			omit := strings.Contains(base, "omitted")
			out := splitEverywhere(t, in, func() Body {
				return NewAnthropicAnswer(AnthropicAnswer{Status: 200, Model: caModel, OmitThinking: omit})
			})
			if !json.Valid(out) {
				t.Fatalf("not valid JSON: %s", out)
			}
			golden(t, base+".out.json", out)

			r, res := gjson.ParseBytes(in), gjson.ParseBytes(out)
			if r.Get("error").Exists() {
				if res.Get("type").Str != "error" || res.Get("error.message").Str != r.Get("error.message").Str {
					t.Errorf("error not carried over: %s", out)
				}
				return
			}
			if res.Get("type").Str != "message" || res.Get("role").Str != "assistant" || res.Get("model").Str != caModel {
				t.Errorf("not an Anthropic message for %s: %s", caModel, out)
			}
			if !strings.HasPrefix(res.Get("id").Str, "msg_") {
				t.Errorf("id %q", res.Get("id").Str)
			}
			caCheckUsage(t, r.Get("usage"), res.Get("usage"))
			var calls []string
			for _, c := range res.Get("content").Array() {
				if c.Get("type").Str == "tool_use" {
					calls = append(calls, c.Get("id").Str)
					if !c.Get("input").IsObject() {
						t.Errorf("tool_use input is not an object: %s", c.Raw)
					}
				}
			}
			var want []string
			for _, c := range r.Get("choices.0.message.tool_calls").Array() {
				want = append(want, c.Get("id").Str)
			}
			if diff := cmp.Diff(want, calls); diff != "" {
				t.Errorf("tool_use ids (-want +got):\n%s", diff)
			}
		})
	}
}

// caCheckUsage states the usage mapping: Anthropic's three input counts
// add up to OpenAI's prompt_tokens, output equals completion_tokens.
func caCheckUsage(t *testing.T, oai, anth gjson.Result) {
	t.Helper()
	in := anth.Get("input_tokens").Int() + anth.Get("cache_read_input_tokens").Int() + anth.Get("cache_creation_input_tokens").Int()
	if in != oai.Get("prompt_tokens").Int() || anth.Get("output_tokens").Int() != oai.Get("completion_tokens").Int() ||
		anth.Get("cache_read_input_tokens").Int() != oai.Get("prompt_tokens_details.cached_tokens").Int() ||
		anth.Get("cache_creation_input_tokens").Int() != oai.Get("prompt_tokens_details.cache_write_tokens").Int() {
		t.Errorf("usage %s does not match %s", anth.Raw, oai.Raw)
	}
}

func TestClientAnthropicResponseStopReason(t *testing.T) {
	tests := []struct{ file, want string }{
		{"json_text", "end_turn"},
		{"json_tool_calls", "tool_use"},
		{"json_tool_only_bad_args", "tool_use"},
		{"json_length", "max_tokens"},
		{"json_content_filter", "refusal"},
		{"json_refusal", "refusal"},
	}
	for _, tt := range tests {
		out := feedBody(AnthropicResponse(false, 200, ""), readFile(t, filepath.Join(caDir, tt.file+".in.json")))
		if got := gjson.GetBytes(out, "stop_reason").Str; got != tt.want {
			t.Errorf("%s: stop_reason %q, want %q", tt.file, got, tt.want)
		}
	}
}

func TestClientAnthropicErrorGolden(t *testing.T) {
	for _, base := range caCases(t, "err_*.in.*") {
		t.Run(filepath.Base(base), func(t *testing.T) {
			var status int
			if _, err := fmt.Sscanf(filepath.Base(base), "err_%d_", &status); err != nil {
				t.Fatal(err)
			}
			in, _ := filepath.Glob(base + ".in.*")
			body := readFile(t, in[0])
			out := splitEverywhere(t, body, func() Body { return AnthropicResponse(false, status, caModel) })
			// The client's stream flag does not matter for an error answer.
			if s := feedBody(AnthropicResponse(true, status, caModel), body); !bytes.Equal(s, out) {
				t.Errorf("stream=true gives %s, want %s", s, out)
			}
			golden(t, base+".out.json", out)
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(out, &e); err != nil || e.Type != "error" || e.Error.Message == "" {
				t.Fatalf("not an Anthropic error: %s (%v)", out, err)
			}
			if want := caErrorType(status, "", "", ""); e.Error.Type != want {
				t.Errorf("error.type %q, want %q", e.Error.Type, want)
			}
		})
	}
}

func TestClientAnthropicError(t *testing.T) {
	tests := []struct {
		e    *apierr.Error
		want string
	}{
		{apierr.BadRequest("bad", "no"), "invalid_request_error"},
		{apierr.New(401, apierr.TypeAuthentication, "", "who"), "authentication_error"},
		{apierr.New(403, apierr.TypeAuthentication, "", "no"), "permission_error"},
		{apierr.New(404, apierr.TypeInvalidRequest, "", "gone"), "not_found_error"},
		{apierr.New(413, apierr.TypeInvalidRequest, "", "big"), "request_too_large"},
		{apierr.New(422, apierr.TypeInvalidRequest, "", "eh"), "invalid_request_error"},
		{apierr.New(429, apierr.TypeRateLimit, "budget_exceeded", "slow"), "rate_limit_error"},
		{apierr.Internal(errors.New("boom")), "api_error"},
		{apierr.New(502, apierr.TypeUpstream, "", "bad gateway"), "api_error"},
		{apierr.New(503, apierr.TypeServer, "", "busy"), "overloaded_error"},
		{apierr.New(529, apierr.TypeServer, "", "busy"), "overloaded_error"},
		{apierr.New(400, apierr.TypeInvalidRequest, "", "quote \" and \n newline"), "invalid_request_error"},
	}
	for _, tt := range tests {
		out := AnthropicError(tt.e)
		want := `{"type":"error","error":{"type":"` + tt.want + `","message":` + string(apierr.AppendJSONString(nil, tt.e.Message)) + `}}`
		if string(out) != want {
			t.Errorf("AnthropicError(%v)\n got %s\nwant %s", tt.e, out, want)
		}
	}
	// Errors inside a 200 stream carry no status: the OpenAI type decides.
	inStream := []struct{ typ, code, msg, want string }{
		{"rate_limit_error", "", "", "rate_limit_error"},
		{"server_error", "rate_limit_exceeded", "", "rate_limit_error"},
		{"authentication_error", "", "", "authentication_error"},
		{"server_error", "overloaded_error", "", "overloaded_error"},
		{"server_error", "", "Model is overloaded", "overloaded_error"},
		{"invalid_request_error", "context_length_exceeded", "", "invalid_request_error"},
		{"server_error", "stream_incomplete", "", "api_error"},
		{"", "", "", "api_error"},
	}
	for _, tt := range inStream {
		if got := caErrorType(200, tt.typ, tt.code, tt.msg); got != tt.want {
			t.Errorf("caErrorType(200, %q, %q, %q) = %q, want %q", tt.typ, tt.code, tt.msg, got, tt.want)
		}
	}
}

func TestClientAnthropicStreamGolden(t *testing.T) {
	for _, base := range caCases(t, "stream_*.in.sse") {
		t.Run(filepath.Base(base), func(t *testing.T) {
			in := readFile(t, base+".in.sse")
			omit := strings.Contains(base, "omitted") // as the client's thinking.display "omitted" asks
			newBody := func() Body {
				return NewAnthropicAnswer(AnthropicAnswer{Stream: true, Status: 200, Model: caModel, OmitThinking: omit})
			}
			out := splitEverywhere(t, in, newBody)
			// Byte by byte, too.
			chunks := make([][]byte, len(in)+1)
			for i := range in {
				chunks[i] = in[i : i+1]
			}
			if got := feedBody(newBody(), chunks...); !bytes.Equal(got, out) {
				t.Errorf("byte by byte:\n got %s\nwant %s", got, out)
			}
			golden(t, base+".out.sse", out)

			got := caCheckStream(t, out)
			want := caReadOpenAIStream(t, in)
			if got.text != want.text {
				t.Errorf("text %q, want %q", got.text, want.text)
			}
			if diff := cmp.Diff(want.tools, got.tools); diff != "" {
				t.Errorf("tool calls (-want +got):\n%s", diff)
			}
			if got.stopped != (want.done && !want.errored) {
				t.Errorf("message_stop sent: %v; the OpenAI stream ended cleanly: %v", got.stopped, want.done && !want.errored)
			}
			if got.errored != want.errored {
				t.Errorf("error event sent: %v, want %v", got.errored, want.errored)
			}
			if got.stopped {
				caCheckUsage(t, want.usage, got.usage)
				if got.model != caModel {
					t.Errorf("model %q", got.model)
				}
			}
		})
	}
}

// caStreamSummary is what an Anthropic client would assemble.
type caStreamSummary struct {
	model, text, stopReason, thinking string
	tools                             []string // "id name input" per tool_use block
	usage                             gjson.Result
	stopped, errored                  bool
}

// caCheckStream parses Anthropic SSE and fails unless the events follow
// the Messages streaming protocol: named after their type, message_start
// first, one block open at a time with increasing indexes, deltas of the
// block's kind, message_delta then message_stop last, or error last.
func caCheckStream(t testing.TB, out []byte) caStreamSummary {
	t.Helper()
	var (
		s      caStreamSummary
		seen   int
		kinds  []string
		inputs []string
		open   = -1
		last   string
		fail   = func(format string, args ...any) { t.Helper(); t.Fatalf(format+"\nstream:\n%s", append(args, out)...) }
	)
	var sc sse.Scanner
	handle := func(ev sse.Event) {
		seen++
		name := string(ev.Name)
		if !gjson.ValidBytes(ev.Data) {
			fail("event %s: data not JSON: %s", name, ev.Data)
		}
		d := gjson.ParseBytes(ev.Data)
		if d.Get("type").Str != name {
			fail("event %q carries type %q", name, d.Get("type").Str)
		}
		if last == "message_stop" || last == "error" {
			fail("event %s after %s", name, last)
		}
		if seen == 1 && name != "message_start" && name != "error" {
			fail("first event is %s", name)
		}
		if last == "message_delta" && name != "message_stop" {
			fail("%s after message_delta", name)
		}
		switch name {
		case "message_start":
			if seen != 1 {
				fail("message_start is event %d", seen)
			}
			s.model = d.Get("message.model").Str
		case "content_block_start":
			idx := int(d.Get("index").Int())
			if open >= 0 || idx != len(kinds) {
				fail("content_block_start %d with block %d open and %d started", idx, open, len(kinds))
			}
			open = idx
			cb := d.Get("content_block")
			kinds = append(kinds, cb.Get("type").Str)
			inputs = append(inputs, "")
			if cb.Get("type").Str == "tool_use" {
				s.tools = append(s.tools, cb.Get("id").Str+" "+cb.Get("name").Str)
			}
		case "content_block_delta":
			// Deltas go to the open block; a parallel tool call's late
			// arguments may go back to its own earlier block (SDKs
			// accumulate by index).
			idx := int(d.Get("index").Int())
			if idx != open && (idx < 0 || idx >= len(kinds) || kinds[idx] != "tool_use") {
				fail("delta for block %d, open %d", idx, open)
			}
			switch kind := d.Get("delta.type").Str; {
			case kind == "text_delta" && kinds[idx] == "text":
				s.text += d.Get("delta.text").Str
			case kind == "input_json_delta" && kinds[idx] == "tool_use":
				inputs[idx] += d.Get("delta.partial_json").Str
			case kind == "citations_delta" && kinds[idx] == "text":
				if d.Get("delta.citation.type").Str != "web_search_result_location" || d.Get("delta.citation.url").Str == "" {
					fail("citation %s", d.Get("delta.citation").Raw)
				}
			case (kind == "thinking_delta" || kind == "signature_delta") && kinds[idx] == "thinking":
				s.thinking += d.Get("delta.thinking").Str + d.Get("delta.signature").Str
			default:
				fail("%s in a %s block", kind, kinds[idx])
			}
		case "content_block_stop":
			if int(d.Get("index").Int()) != open {
				fail("content_block_stop %d, open %d", d.Get("index").Int(), open)
			}
			open = -1
		case "message_delta":
			if open >= 0 {
				fail("message_delta with block %d open", open)
			}
			s.stopReason = d.Get("delta.stop_reason").Str
			s.usage = d.Get("usage")
		case "message_stop":
			if last != "message_delta" {
				fail("message_stop after %s", last)
			}
			s.stopped = true
		case "error":
			if d.Get("error.type").Str == "" || !d.Get("error.message").Exists() {
				fail("error event without type or message: %s", ev.Data)
			}
			s.errored = true
		default:
			fail("unknown event %q", name)
		}
		last = name
	}
	sc.Feed(out, handle)
	if sc.Flush(handle) {
		fail("output ends in the middle of an event")
	}
	k := 0
	for i, kind := range kinds {
		if kind == "tool_use" {
			s.tools[k] += " " + inputs[i]
			k++
		}
	}
	return s
}

// caOpenAIStream is what an OpenAI client would assemble.
type caOpenAIStream struct {
	text           string
	tools          []string
	usage          gjson.Result
	done, errored  bool
	ended          bool
	toolsByIndex   map[int64]int
	toolArgs, tcID []string
}

func caReadOpenAIStream(t *testing.T, in []byte) caOpenAIStream {
	t.Helper()
	s := caOpenAIStream{toolsByIndex: map[int64]int{}}
	var names []string
	var sc sse.Scanner
	handle := func(ev sse.Event) {
		if s.ended {
			return
		}
		if string(ev.Data) == "[DONE]" {
			s.done, s.ended = true, true
			return
		}
		if !gjson.ValidBytes(ev.Data) {
			return // a cut-off event carries nothing a client could use
		}
		d := gjson.ParseBytes(ev.Data)
		if d.Get("error").Exists() {
			s.errored, s.ended = true, true
			return
		}
		if u := d.Get("usage"); u.IsObject() {
			s.usage = u
		}
		delta := d.Get("choices.0.delta")
		s.text += delta.Get("content").Str
		for _, tc := range delta.Get("tool_calls").Array() {
			i, ok := s.toolsByIndex[tc.Get("index").Int()]
			if !ok {
				i = len(s.tcID)
				s.toolsByIndex[tc.Get("index").Int()] = i
				s.tcID = append(s.tcID, tc.Get("id").Str)
				names = append(names, tc.Get("function.name").Str)
				s.toolArgs = append(s.toolArgs, "")
			}
			s.toolArgs[i] += tc.Get("function.arguments").Str
		}
	}
	sc.Feed(in, handle)
	sc.Flush(handle)
	for i := range s.tcID {
		s.tools = append(s.tools, s.tcID[i]+" "+names[i]+" "+s.toolArgs[i])
	}
	return s
}

func TestClientAnthropicStreamEvents(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // a substring of the output, or "" for empty output
	}{
		{"done only", "data: [DONE]\n\n", `event: message_stop`},
		{"nothing", "", ""},
		{"not json is skipped", "data: {oops\n\ndata: [DONE]\n\n", `"stop_reason":"end_turn"`},
		{"usage on the finish chunk", `data: {"id":"x","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1}}` + "\n\ndata: [DONE]\n\n",
			`"usage":{"input_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}`},
		{"refusal", `data: {"id":"x","choices":[{"index":0,"delta":{"refusal":"no"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n", `"stop_reason":"refusal"`},
		{"tool call without id", `data: {"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}` + "\n\ndata: [DONE]\n\n",
			`"content_block":{"type":"tool_use","id":"call_3","name":"f","input":{}}}`},
		{"events after done are dropped", "data: [DONE]\n\n" + `data: {"id":"x","choices":[{"index":0,"delta":{"content":"late"}}]}` + "\n\n", `message_stop`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := feedBody(AnthropicResponse(true, 200, "m"), []byte(tt.in))
			if tt.want == "" {
				if len(out) != 0 {
					t.Errorf("got %s, want nothing", out)
				}
				return
			}
			if !bytes.Contains(out, []byte(tt.want)) {
				t.Errorf("output lacks %s:\n%s", tt.want, out)
			}
			if bytes.Contains(out, []byte("late")) {
				t.Errorf("output after message_stop:\n%s", out)
			}
			caCheckStream(t, out)
		})
	}
}

// FuzzClientAnthropicStream feeds arbitrary bytes split at an arbitrary point: no
// panic, the same output as unsplit, and a well-formed Anthropic stream.
func FuzzClientAnthropicStream(f *testing.F) {
	ins, _ := filepath.Glob(filepath.Join(caDir, "stream_*.in.sse"))
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint(len(b)/2))
	}
	f.Add([]byte("data: [DONE]\n\n"), uint(3))
	f.Add([]byte(`data: {"choices":[{"delta":{"tool_calls":[{"index":-1,"function":{"arguments":"\u0000"}}]}}]}`+"\r\r"), uint(7))
	f.Fuzz(func(t *testing.T, in []byte, split uint) {
		i := int(split % uint(len(in)+1))
		newBody := func() Body { return AnthropicResponse(true, 200, "m") }
		whole := feedBody(newBody(), in)
		if got := feedBody(newBody(), in[:i:i], in[i:]); !bytes.Equal(got, whole) {
			t.Fatalf("split at %d:\n got %q\nwant %q", i, got, whole)
		}
		caCheckStream(t, whole)
	})
}

// FuzzClientAnthropicRequest: any body gives valid OpenAI JSON or a 400.
func FuzzClientAnthropicRequest(f *testing.F) {
	ins, _ := filepath.Glob(filepath.Join(caDir, "req_*.in.json"))
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"\u0000","content":[{"type":"text","text":"\ud800"}]}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := AnthropicRequestToOpenAI(body)
		if err != nil {
			var e *apierr.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Message == "" {
				t.Fatalf("error %v is not a 400 *apierr.Error", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON for %q: %s", body, out)
		}
	})
}

// caBenchRequest is an Anthropic request of about size bytes with tools
// and a tool round trip.
func caBenchRequest(size int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"system":"You are terse.",` +
		`"tools":[{"name":"get_weather","description":"Get the weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}],` +
		`"messages":[{"role":"user","content":"Weather in Paris?"},` +
		`{"role":"assistant","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"location":"Paris"}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"15C"}]}`)
	for sb.Len() < size-100 {
		sb.WriteString(`,{"role":"assistant","content":"Noted."},{"role":"user","content":[{"type":"text","text":"Summarize Envoy external processing in one line, please."}]}`)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// BenchmarkClientAnthropicRequestToOpenAI converts a 2 KB streaming request with
// tools. Compare runs with benchstat:
//
//	go test -run='^$' -bench=ClientAnthropic -count=10 ./filter/translate > new.txt
func BenchmarkClientAnthropicRequestToOpenAI(b *testing.B) {
	for _, size := range []int{2 << 10, 64 << 10} {
		body := caBenchRequest(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := AnthropicRequestToOpenAI(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClientAnthropicStreamChunk converts one OpenAI content chunk (one
// event per Envoy chunk, the common case) into an Anthropic text delta.
func BenchmarkClientAnthropicStreamChunk(b *testing.B) {
	chunk := []byte(`data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":" the quick brown fox"},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	body := AnthropicResponse(true, 200, "claude-sonnet-4-5")
	body.Chunk(chunk, false)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if out, _ := body.Chunk(chunk, false); len(out) == 0 {
			b.Fatal("no output")
		}
	}
}
