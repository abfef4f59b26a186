package translate

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// TestResponsesRequestRefusals: what cannot cross chat completions is a 400
// naming the field (and the backend, for what another backend could take),
// or is dropped when the backend's drop_params says so.
func TestResponsesRequestRefusals(t *testing.T) {
	claude := &config.RBackend{Name: "claude", Schema: "anthropic"}
	dropping := &config.RBackend{Name: "claude", Schema: "anthropic", DropParams: []string{"code_interpreter", "max_tool_calls"}}
	for _, c := range []struct {
		name, body  string
		be          *config.RBackend
		param, code string // "" code: accepted
		in          string // a substring of the message
	}{
		{"not json", `{"model":`, claude, "", "invalid_value", "not valid JSON"},
		{"no model", `{"input":"hi"}`, claude, "model", "invalid_value", "model"},
		{"no input", `{"model":"m"}`, claude, "input", "invalid_value", "input"},
		{"empty input", `{"model":"m","input":[]}`, claude, "input", "invalid_value", "at least one"},
		{"previous_response_id", `{"model":"m","input":"hi","previous_response_id":"resp_1"}`, claude, "previous_response_id", "unsupported_parameter", `backend "claude"`},
		{"background", `{"model":"m","input":"hi","background":true}`, claude, "background", "unsupported_parameter", "background"},
		{"item_reference", `{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}`, claude, "input[0]", "unsupported_parameter", "item references"},
		{"file_id image", `{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_image","file_id":"file-1"}]}]}`, claude, "input[0].content[1].file_id", "unsupported_parameter", `backend "claude"`},
		{"file url", `{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_file","file_url":"https://x/a.pdf"}]}]}`, claude, "input[0].content[1].file_url", "unsupported_parameter", "file_data"},
		{"bad role", `{"model":"m","input":[{"role":"tool","content":"x"}]}`, claude, "input[0].role", "invalid_value", "role"},
		{"call without id", `{"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]}`, claude, "input[0].call_id", "invalid_value", "call_id"},
		{"local shell call", `{"model":"m","input":[{"type":"local_shell_call","call_id":"c"}]}`, claude, "input[0].type", "unsupported_parameter", "local_shell_call"},
		{"image in tool output", `{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"https://x"}]}]}`, claude, "input[0].output[0].type", "unsupported_parameter", "text only"},
		{"code interpreter", `{"model":"m","input":"hi","tools":[{"type":"code_interpreter","container":{"type":"auto"}}]}`, claude, "tools[0]", "unsupported_tool", `'code_interpreter' is not supported by backend "claude"`},
		{"code interpreter dropped", `{"model":"m","input":"hi","tools":[{"type":"code_interpreter"}]}`, dropping, "", "", ""},
		{"mcp", `{"model":"m","input":"hi","tools":[{"type":"mcp","server_label":"x"}]}`, claude, "tools[0]", "unsupported_tool", "mcp"},
		{"max_tool_calls", `{"model":"m","input":"hi","max_tool_calls":3}`, claude, "max_tool_calls", "unsupported_parameter", `backend "claude"`},
		{"max_tool_calls dropped", `{"model":"m","input":"hi","max_tool_calls":3}`, dropping, "", "", ""},
		{"tool_choice needs tools", `{"model":"m","input":"hi","tool_choice":{"type":"function","name":"f"}}`, claude, "tool_choice", "invalid_value", "requires tools"},
		{"tool_choice hosted", `{"model":"m","input":"hi","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"file_search"}}`, claude, "tool_choice", "unsupported_parameter", "built-in tool"},
		{"bad format", `{"model":"m","input":"hi","text":{"format":{"type":"yaml"}}}`, claude, "text.format.type", "invalid_value", "yaml"},
		{"schema without name", `{"model":"m","input":"hi","text":{"format":{"type":"json_schema","schema":{}}}}`, claude, "text.format.name", "invalid_value", "name"},
		{"unknown fields pass", `{"model":"m","input":"hi","client_metadata":{"a":"b"},"prompt_cache_key":"k","some_future_field":1}`, claude, "", "", ""},
		{"openai's reasoning dropped", `{"model":"m","input":[{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAAB"},{"role":"user","content":"hi"}]}`, claude, "", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			chat, _, err := ResponsesRequestToChat([]byte(c.body), c.be)
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !gjson.ValidBytes(chat) {
					t.Fatalf("not JSON: %s", chat)
				}
				if strings.Contains(string(chat), "thinking_blocks") || strings.Contains(string(chat), "tools") {
					t.Errorf("dropped items reached the chat body: %s", chat)
				}
				return
			}
			e, ok := err.(*apierr.Error)
			if !ok {
				t.Fatalf("error %v (%T), want a 400 %s", err, err, c.code)
			}
			if e.Status != 400 || e.Code != c.code || e.Param != c.param || !strings.Contains(e.Message, c.in) {
				t.Errorf("got %d %s %q %q", e.Status, e.Code, e.Param, e.Message)
			}
		})
	}
}

// TestResponsesEncryptedContent: the signed thinking of an answer travels in
// encrypted_content (only when included) and goes back, as thinking_blocks,
// to the backend that produced it and to no other.
func TestResponsesEncryptedContent(t *testing.T) {
	claude := &config.RBackend{Name: "claude", Schema: "anthropic"}
	other := &config.RBackend{Name: "claude-eu", Schema: "anthropic"}
	const chat = `{"id":"chatcmpl-1","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"think","thinking_blocks":[{"type":"thinking","thinking":"think","signature":"sig-1"},{"type":"redacted_thinking","data":"opaque"}],"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`
	for _, include := range []bool{false, true} {
		req := `{"model":"m","input":"hi","tools":[{"type":"function","name":"f"}]`
		if include {
			req += `,"include":["reasoning.encrypted_content"]`
		}
		_, meta, err := ResponsesRequestToChat([]byte(req+"}"), claude)
		if err != nil {
			t.Fatal(err)
		}
		out := ResponseFromChat(gjson.Parse(chat), meta, "")
		item := gjson.GetBytes(out, `output.#(type=="reasoning")`)
		enc := item.Get("encrypted_content")
		if enc.Exists() != include || item.Get("summary.0.text").Str != "think" {
			t.Fatalf("include=%v: reasoning item %s", include, item.Raw)
		}
		if !include {
			continue
		}
		if !strings.HasPrefix(enc.Str, "llmproc:v1:anthropic:claude:") || strings.Contains(enc.Str, "sig-1") {
			t.Errorf("encrypted_content %q", enc.Str)
		}
		next := `{"model":"m","input":[{"role":"user","content":"hi"},` + item.Raw + `,` +
			gjson.GetBytes(out, `output.#(type=="function_call")`).Raw + `,{"type":"function_call_output","call_id":"call_1","output":"ok"}]}`
		for _, c := range []struct {
			be   *config.RBackend
			want string
		}{
			{claude, `[{"type":"thinking","thinking":"think","signature":"sig-1"},{"type":"redacted_thinking","data":"opaque"}]`},
			{other, ``},
		} {
			body, _, err := ResponsesRequestToChat([]byte(next), c.be)
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(body, "messages.1.thinking_blocks").Raw; got != c.want {
				t.Errorf("to %s: thinking_blocks %s, want %s (body %s)", c.be.Name, got, c.want, body)
			}
		}
	}
}

// TestResponsesStreamEncryptedContent: in a stream, the signature arrives
// after the thinking text; the block sent back carries that text.
func TestResponsesStreamEncryptedContent(t *testing.T) {
	_, meta, err := ResponsesRequestToChat([]byte(`{"model":"m","input":"hi","include":["reasoning.encrypted_content"]}`),
		&config.RBackend{Name: "claude", Schema: "anthropic"})
	if err != nil {
		t.Fatal(err)
	}
	in := []byte(`data: {"id":"chatcmpl-2","choices":[{"index":0,"delta":{"reasoning_content":"a "}}]}

data: {"id":"chatcmpl-2","choices":[{"index":0,"delta":{"reasoning_content":"b"}}]}

data: {"id":"chatcmpl-2","choices":[{"index":0,"delta":{"thinking_blocks":[{"type":"thinking","thinking":"","signature":"s1"}]}}]}

data: {"id":"chatcmpl-2","choices":[{"index":0,"delta":{"thinking_blocks":[{"type":"redacted_thinking","data":"r1"}]}}]}

data: {"id":"chatcmpl-2","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}

data: [DONE]

`)
	out := splitEverywhere(t, in, func() Body { return ResponsesResponse(meta, true, 200, "m") })
	final := respCheckStream(t, out)
	enc := final.Get(`output.#(type=="reasoning").encrypted_content`).Str
	blocks := decodeThinking("llmproc:v1:anthropic:claude:", enc)
	if len(blocks) != 2 || blocks[0].Text != "a b" || blocks[0].Signature != "s1" || blocks[1].Data != "r1" {
		t.Errorf("blocks %+v from %q", blocks, enc)
	}
}

// FuzzResponsesRequest: any body is converted or refused with a 400, never
// a panic; what is converted is valid JSON, and is the same on every run.
func FuzzResponsesRequest(f *testing.F) {
	for _, in := range respCases(f, "req_*.in.json") {
		if b, err := os.ReadFile(in); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"model":"m","input":[{"type":"reasoning","encrypted_content":"llmproc:v1:anthropic:claude:W10"},{"role":"assistant","content":"x"}]}`))
	be := &config.RBackend{Name: "claude", Schema: "anthropic"}
	f.Fuzz(func(t *testing.T, body []byte) {
		chat, meta, err := ResponsesRequestToChat(body, be)
		if err != nil {
			if e, ok := err.(*apierr.Error); !ok || e.Status != 400 {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		if !gjson.ValidBytes(chat) || meta == nil {
			t.Fatalf("invalid chat body %q from %q", chat, body)
		}
		again, _, _ := ResponsesRequestToChat(body, be)
		if !bytes.Equal(chat, again) {
			t.Fatalf("not deterministic: %q vs %q", chat, again)
		}
	})
}

// FuzzResponsesStream feeds arbitrary hub bytes, split at an arbitrary
// point: no panic, the same output as unsplit, and a stream that always
// ends in exactly one terminal event.
func FuzzResponsesStream(f *testing.F) {
	for _, fx := range []string{"client_responses/compat/stream_tools.in.sse", "client_responses/compat/stream_error.in.sse"} {
		if b, err := os.ReadFile("testdata/" + fx); err == nil {
			f.Add(b, uint(len(b)/2))
		}
	}
	meta := respAnswerMeta(f)
	f.Fuzz(func(t *testing.T, in []byte, split uint) {
		i := int(split % uint(len(in)+1))
		whole := feedBody(ResponsesResponse(meta, true, 200, "m"), in)
		if got := feedBody(ResponsesResponse(meta, true, 200, "m"), in[:i:i], in[i:]); !bytes.Equal(got, whole) {
			t.Fatalf("split at %d:\n got %q\nwant %q", i, got, whole)
		}
		respCheckStream(t, whole)
	})
}
