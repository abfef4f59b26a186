package fake

import (
	"strings"

	"github.com/tidwall/gjson"
)

// ToolResult is a tool's result that a request carries back to the model.
type ToolResult struct {
	// CallID names the call it answers: OpenAI's tool_call_id or call_id,
	// Anthropic's tool_use_id, Bedrock's toolUseId, Gemini's
	// functionResponse id (its name when the part has no id).
	CallID string
	// Name is the tool's name, when the schema sends it (Gemini).
	Name string
	// Output is the result as text: a string as it is, text parts joined,
	// a JSON value (Gemini's response, Bedrock's json) as its JSON text.
	Output string
}

// Turns returns a script for Queue.Script that answers a conversation turn
// by turn, telling turns apart by the tool results a request carries (as
// results reads them from the provider's schema): turns[n] answers a
// request with n tool results, the last turn any request with more. Each
// turn is given those results, so a final answer can depend on what the
// tool returned, e.g. a tool call and then an answer quoting its output:
//
//	p.Script(fake.Turns(fakeopenai.ToolResults,
//		func([]fake.ToolResult) fakeopenai.Behaviour { return fakeopenai.Behaviour{ToolCalls: calls} },
//		func(rs []fake.ToolResult) fakeopenai.Behaviour { return fakeopenai.Behaviour{Content: "got " + rs[0].Output} }))
//
// A turn that returns the zero behaviour answers as the fake's default.
func Turns[R, B any](results func(R) []ToolResult, turns ...func([]ToolResult) B) func(R) B {
	return func(req R) B {
		rs := results(req)
		if len(turns) == 0 {
			var zero B
			return zero
		}
		return turns[min(len(rs), len(turns)-1)](rs)
	}
}

// ResultText is a tool result's content as text: a string as it is, an
// array of parts as the text of its text parts (OpenAI's and Anthropic's
// {"type":"text","text":…}, Bedrock's {"text":…}) and its JSON parts'
// JSON, anything else as its JSON text. For the fakes' ToolResults.
func ResultText(v gjson.Result) string {
	switch {
	case v.Type == gjson.String:
		return v.Str
	case v.IsArray():
		var sb strings.Builder
		for _, p := range v.Array() {
			switch {
			case p.Get("text").Type == gjson.String:
				sb.WriteString(p.Get("text").Str)
			case p.Get("json").Exists():
				sb.WriteString(p.Get("json").Raw)
			}
		}
		return sb.String()
	}
	return v.Raw
}
