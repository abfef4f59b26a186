package fakeopenai

import (
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
)

// ToolResults reads the tool results of a chat completion request (role
// "tool" messages) or of a Responses request (function_call_output and
// custom_tool_call_output input items), in order.
func ToolResults(r Request) []fake.ToolResult {
	var rs []fake.ToolResult
	for _, m := range gjson.GetBytes(r.Body, "messages").Array() {
		if m.Get("role").Str == "tool" {
			rs = append(rs, fake.ToolResult{CallID: m.Get("tool_call_id").Str, Output: fake.ResultText(m.Get("content"))})
		}
	}
	for _, it := range gjson.GetBytes(r.Body, "input").Array() {
		if t := it.Get("type").Str; t == "function_call_output" || t == "custom_tool_call_output" {
			rs = append(rs, fake.ToolResult{CallID: it.Get("call_id").Str, Output: fake.ResultText(it.Get("output"))})
		}
	}
	return rs
}

// Turns scripts the answers turn by turn (fake.Turns over ToolResults).
func (s *Server) Turns(turns ...func([]fake.ToolResult) Behaviour) {
	s.Script(fake.Turns(ToolResults, turns...))
}
