package translate

import (
	"bytes"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/config"
)

// claudeCodeBody is a request as Claude Code sends it (see issue 13): every
// field a native Anthropic backend must receive untouched.
const claudeCodeBody = caDir + "/req_claude_code.in.json"

func TestAnthropicNative(t *testing.T) {
	in := readFile(t, claudeCodeBody)
	tests := []struct {
		name          string
		model         string
		drop          []string
		version, beta string
		wantBody      func([]byte) []byte // nil: the client's body unchanged
		wantHeaders   [][2]string
	}{
		{
			name: "as sent", model: "claude-sonnet-4-5-20250929",
			version: "2023-06-01", beta: "claude-code-20250219,interleaved-thinking-2025-05-14",
			wantHeaders: [][2]string{{"anthropic-version", "2023-06-01"}, {"anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"}, {"x-api-key", "sk-ant"}},
		},
		{
			name: "backend version when the client sends none", model: "claude-sonnet-4-5-20250929",
			wantHeaders: [][2]string{{"anthropic-version", "2024-10-22"}, {"x-api-key", "sk-ant"}},
		},
		{
			name: "model override", model: "claude-sonnet-4-5",
			wantBody:    func(b []byte) []byte { b, _ = sjson.SetBytes(b, "model", "claude-sonnet-4-5"); return b },
			wantHeaders: [][2]string{{"anthropic-version", "2024-10-22"}, {"x-api-key", "sk-ant"}},
		},
		{
			name: "dropped params", model: "claude-sonnet-4-5-20250929", drop: []string{"context_management", "top_k", "not_sent"},
			wantBody: func(b []byte) []byte {
				b, _ = sjson.DeleteBytes(b, "context_management")
				b, _ = sjson.DeleteBytes(b, "top_k")
				return b
			},
			wantHeaders: [][2]string{{"anthropic-version", "2024-10-22"}, {"x-api-key", "sk-ant"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &config.RBackend{Name: "claude", Schema: "anthropic", BasePath: "/proxy", Credential: "sk-ant", DropParams: tt.drop,
				Anthropic: config.AnthropicOptions{Version: "2024-10-22"}}
			orig := bytes.Clone(in)
			up, err := AnthropicNative(&Request{Body: in, Backend: be, ClientModel: "claude-sonnet-4-5-20250929", Model: tt.model, Stream: true}, tt.version, tt.beta)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in, orig) {
				t.Fatal("the client's body was modified in place")
			}
			if up.Path != "/proxy/v1/messages" {
				t.Errorf("path %q", up.Path)
			}
			switch {
			case tt.wantBody == nil && up.Body != nil:
				t.Errorf("body changed:\n%s", up.Body)
			case tt.wantBody != nil && !bytes.Equal(up.Body, tt.wantBody(bytes.Clone(in))):
				t.Errorf("body\n got %s\nwant %s", up.Body, tt.wantBody(bytes.Clone(in)))
			}
			if len(up.SetHeaders) != len(tt.wantHeaders) {
				t.Fatalf("headers %q, want %q", up.SetHeaders, tt.wantHeaders)
			}
			for i := range up.SetHeaders {
				if up.SetHeaders[i] != tt.wantHeaders[i] {
					t.Errorf("headers %q, want %q", up.SetHeaders, tt.wantHeaders)
				}
			}
		})
	}
	if _, err := AnthropicNative(&Request{Body: []byte(`[1]`), Backend: &config.RBackend{}}, "", ""); err == nil {
		t.Error("a body that is no object was accepted")
	}
}

// TestAnthropicNativeUsage: the anthropic translator reads a native answer's
// usage with the one-hour cache writes and web searches, for the stream
// (message_start and message_delta) and the JSON message.
func TestAnthropicNativeUsage(t *testing.T) {
	const u = `{"input_tokens":12,"output_tokens":30,"cache_read_input_tokens":1000,"cache_creation_input_tokens":300,` +
		`"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},"server_tool_use":{"web_search_requests":2}}`
	msg := `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"thinking","thinking":"hm","signature":"s"},{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":` + u + `}`
	out := feedBody(anthropicTest.Response(&Response{Status: 200, ContentType: "application/json", Model: "m"}).Body, []byte(msg))
	checkNativeUsage(t, "json", gjson.GetBytes(out, "usage"))

	stream := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":12,\"output_tokens\":1,\"cache_read_input_tokens\":1000,\"cache_creation_input_tokens\":300,\"cache_creation\":{\"ephemeral_5m_input_tokens\":100,\"ephemeral_1h_input_tokens\":200}}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":30,\"server_tool_use\":{\"web_search_requests\":2}}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	got := splitEverywhere(t, []byte(stream), func() Body {
		return anthropicTest.Response(&Response{Status: 200, ContentType: "text/event-stream", Stream: true, Model: "m"}).Body
	})
	var last gjson.Result
	for _, line := range bytes.Split(got, []byte("\n")) {
		if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			if us := gjson.GetBytes(d, "usage"); us.IsObject() {
				last = us
			}
		}
	}
	checkNativeUsage(t, "stream", last)
}

func checkNativeUsage(t *testing.T, name string, u gjson.Result) {
	t.Helper()
	want := map[string]int64{
		"prompt_tokens": 1312, "completion_tokens": 30,
		"prompt_tokens_details.cached_tokens": 1000, "prompt_tokens_details.cache_write_tokens": 300,
		"prompt_tokens_details.cache_write_1h_tokens": 200, "server_tool_use.web_search_requests": 2,
	}
	for k, v := range want {
		if got := u.Get(k).Int(); got != v {
			t.Errorf("%s: %s = %d, want %d (usage %s)", name, k, got, v, u.Raw)
		}
	}
}
