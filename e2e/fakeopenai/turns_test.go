package fakeopenai

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
)

func postPath(t *testing.T, s *Server, path, body string) (string, []byte) {
	t.Helper()
	resp, err := http.Post(s.URL()+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get("Content-Type"), b
}

// sseData is the data of every SSE event in b.
func sseData(b []byte) []gjson.Result {
	var out []gjson.Result
	for _, line := range strings.Split(string(b), "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && d != "[DONE]" {
			out = append(out, gjson.Parse(d))
		}
	}
	return out
}

type call struct{ ID, Name, Args string }

// The tool calls of each answer shape, put back together.
func TestToolCalls(t *testing.T) {
	b := Behaviour{ToolCalls: []ToolCall{{ID: "call_1", Name: "exec", Arguments: `{"cmd":"ls -l"}`}, {ID: "call_2", Name: "noargs"}}}
	want := []call{{"call_1", "exec", `{"cmd":"ls -l"}`}, {"call_2", "noargs", "{}"}}
	tests := []struct {
		name, path, body string
		read             func(t *testing.T, body []byte) (calls []call, text, finish string)
	}{
		{"chat json", "/v1/chat/completions", `{"model":"m"}`, func(t *testing.T, body []byte) ([]call, string, string) {
			var calls []call
			ch := gjson.GetBytes(body, "choices.0")
			for _, c := range ch.Get("message.tool_calls").Array() {
				calls = append(calls, call{c.Get("id").Str, c.Get("function.name").Str, c.Get("function.arguments").Str})
			}
			if m := ch.Get("message.content"); m.Type != gjson.Null {
				t.Errorf("content %s, want null", m.Raw)
			}
			return calls, "", ch.Get("finish_reason").Str
		}},
		{"chat sse", "/v1/chat/completions", `{"model":"m","stream":true}`, func(t *testing.T, body []byte) ([]call, string, string) {
			var calls []call
			var text, finish string
			for _, ev := range sseData(body) {
				d := ev.Get("choices.0.delta")
				text += d.Get("content").Str
				for _, tc := range d.Get("tool_calls").Array() {
					i := int(tc.Get("index").Int())
					if i == len(calls) {
						calls = append(calls, call{tc.Get("id").Str, tc.Get("function.name").Str, ""})
					}
					calls[i].Args += tc.Get("function.arguments").Str
				}
				finish += ev.Get("choices.0.finish_reason").Str
			}
			return calls, text, finish
		}},
		{"responses json", "/v1/responses", `{"model":"m"}`, func(t *testing.T, body []byte) ([]call, string, string) {
			var calls []call
			for _, it := range gjson.GetBytes(body, "output").Array() {
				if it.Get("type").Str != "function_call" {
					t.Errorf("output item %s", it.Raw)
				}
				calls = append(calls, call{it.Get("call_id").Str, it.Get("name").Str, it.Get("arguments").Str})
			}
			return calls, "", gjson.GetBytes(body, "status").Str
		}},
		{"responses sse", "/v1/responses", `{"model":"m","stream":true}`, func(t *testing.T, body []byte) ([]call, string, string) {
			var calls []call
			var types []string
			args := ""
			for i, ev := range sseData(body) {
				if ev.Get("sequence_number").Int() != int64(i) {
					t.Errorf("event %d has sequence_number %d", i, ev.Get("sequence_number").Int())
				}
				types = append(types, ev.Get("type").Str)
				switch ev.Get("type").Str {
				case "response.function_call_arguments.delta":
					args += ev.Get("delta").Str
				case "response.function_call_arguments.done":
					if ev.Get("arguments").Str != args {
						t.Errorf("arguments.done %q, deltas %q", ev.Get("arguments").Str, args)
					}
					args = ""
				case "response.output_item.done":
					it := ev.Get("item")
					calls = append(calls, call{it.Get("call_id").Str, it.Get("name").Str, it.Get("arguments").Str})
				}
			}
			one := []string{"response.output_item.added", "response.function_call_arguments.delta",
				"response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done"}
			wantTypes := append(append(append([]string{"response.created", "response.in_progress"}, one...), one...), "response.completed")
			if diff := cmp.Diff(wantTypes, types); diff != "" {
				t.Errorf("event types (-want +got):\n%s", diff)
			}
			return calls, "", ""
		}},
	}
	wantFinish := map[string]string{"chat json": "tool_calls", "chat sse": "tool_calls", "responses json": "completed"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Default: b})
			defer s.Close()
			_, body := postPath(t, s, tt.path, tt.body)
			calls, text, finish := tt.read(t, body)
			if diff := cmp.Diff(want, calls); diff != "" {
				t.Errorf("tool calls (-want +got):\n%s\n%s", diff, body)
			}
			if text != "" || finish != wantFinish[tt.name] {
				t.Errorf("text %q, finish %q", text, finish)
			}
		})
	}
}

// A tool call, then an answer quoting the tool's result: in chat and in
// the Responses API.
func TestTurns(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	s.Turns(
		func([]fake.ToolResult) Behaviour {
			return Behaviour{ToolCalls: []ToolCall{{ID: "call_7", Name: "date"}}}
		},
		func(rs []fake.ToolResult) Behaviour {
			return Behaviour{Content: "the date is " + rs[0].Output + " (" + rs[0].CallID + ")"}
		},
	)
	tests := []struct{ path, first, second, answer string }{
		{"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"date?"}]}`,
			`{"model":"m","messages":[{"role":"user","content":"date?"},{"role":"assistant","tool_calls":[{"id":"call_7","type":"function","function":{"name":"date","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_7","content":[{"type":"text","text":"Monday"}]}]}`,
			"choices.0.message.content"},
		{"/v1/responses", `{"model":"m","input":"date?"}`,
			`{"model":"m","input":[{"role":"user","content":"date?"},{"type":"function_call","call_id":"call_7","name":"date","arguments":"{}"},{"type":"function_call_output","call_id":"call_7","output":"Monday"}]}`,
			"output.0.content.0.text"},
	}
	for _, tt := range tests {
		_, first := postPath(t, s, tt.path, tt.first)
		if !strings.Contains(string(first), `"call_7"`) {
			t.Errorf("%s: the first turn did not call the tool: %s", tt.path, first)
		}
		_, second := postPath(t, s, tt.path, tt.second)
		if got := gjson.GetBytes(second, tt.answer).Str; got != "the date is Monday (call_7)" {
			t.Errorf("%s: the second turn answered %q: %s", tt.path, got, second)
		}
	}
	if n := len(s.Requests()); n != 4 {
		t.Errorf("recorded %d requests, want 4", n)
	}
}
