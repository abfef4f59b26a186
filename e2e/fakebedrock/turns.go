package fakebedrock

import (
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
)

// ToolResults reads the toolResult blocks of a Converse request, or the
// tool_result blocks of an InvokeModel request (Anthropic's Messages), in
// order.
func ToolResults(r Request) []fake.ToolResult {
	var rs []fake.ToolResult
	for _, m := range gjson.GetBytes(r.Body, "messages").Array() {
		for _, c := range m.Get("content").Array() {
			if tr := c.Get("toolResult"); tr.IsObject() {
				rs = append(rs, fake.ToolResult{CallID: tr.Get("toolUseId").Str, Output: fake.ResultText(tr.Get("content"))})
			}
			if c.Get("type").Str == "tool_result" {
				rs = append(rs, fake.ToolResult{CallID: c.Get("tool_use_id").Str, Output: fake.ResultText(c.Get("content"))})
			}
		}
	}
	return rs
}

// Turns scripts the answers turn by turn (fake.Turns over ToolResults).
func (s *Server) Turns(turns ...func([]fake.ToolResult) Behaviour) {
	s.Script(fake.Turns(ToolResults, turns...))
}
