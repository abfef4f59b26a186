package translate

import (
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// This file is the one place where reasoning settings cross schemas. The hub
// (OpenAI chat-completions) says how much to reason with reasoning_effort;
// Anthropic (and Claude on Bedrock) and Gemini 2.5 take a token budget. Every
// translator converts through the table below, both ways.
//
//	reasoning_effort  budget (Anthropic budget_tokens, Gemini thinkingBudget)
//	none              0: thinking off (Anthropic: no thinking field)
//	minimal           512   (Anthropic: raised to its minimum, 1024)
//	low               1024
//	medium            8192
//	high              24576
//	xhigh             32768
//
// The low, medium and high budgets are those Google's own OpenAI-compatible
// endpoint uses. A budget becomes the highest effort whose budget it reaches
// (1 to 1023 → minimal, 1024 to 8191 → low, 8192 to 24575 → medium, 24576
// and more → high; xhigh is never chosen for a budget, few models accept it).
//
// The hub carries thinking in answers and history as extensions of the
// chat-completions message, named as several OpenAI-compatible servers name
// them: message.reasoning_content / delta.reasoning_content (the text) and
// message.thinking_blocks / delta.thinking_blocks, a list of
// {"type":"thinking","thinking","signature"} and
// {"type":"redacted_thinking","data"} blocks that carry what the next turn
// must send back to Anthropic or Bedrock. Gemini's thought signatures ride in
// the same list as {"type":"thought_signature","signature","tool_call_id"}
// blocks: the signature of the functionCall part that became that tool call
// (tool_call_id absent: of a text part), which only the Gemini translator
// (and Vertex's) sends back; Anthropic and Bedrock never see them. The
// translators to backends that do not read thinking_blocks (OpenAI, Azure,
// compatible servers) remove them from history.

// reasoningLevels is the budget ⇄ effort table, in rising order.
var reasoningLevels = []struct {
	effort string
	budget int64
}{
	{"none", 0},
	{"minimal", 512},
	{"low", 1024},
	{"medium", 8192},
	{"high", 24576},
	{"xhigh", 32768},
}

// anthropicMinBudget is the smallest budget_tokens Anthropic accepts.
const anthropicMinBudget = 1024

// ReasoningBudget returns the token budget for a reasoning_effort; false for
// an effort the table does not know.
func ReasoningBudget(effort string) (int64, bool) {
	for _, l := range reasoningLevels {
		if l.effort == effort {
			return l.budget, true
		}
	}
	return 0, false
}

// ReasoningEffort returns the reasoning_effort for a token budget: the
// highest effort up to high whose budget is at most n ("none" for n ≤ 0).
func ReasoningEffort(n int64) string {
	if n <= 0 {
		return "none"
	}
	effort := "minimal"
	for _, l := range reasoningLevels {
		if l.effort != "xhigh" && l.budget >= anthropicMinBudget && n >= l.budget {
			effort = l.effort
		}
	}
	return effort
}

// hubEffort reads the hub request's reasoning_effort: "" when absent or null,
// else a 400 for a value the table does not know.
func hubEffort(v gjson.Result) (string, int64, error) {
	if !v.Exists() || v.Type == gjson.Null {
		return "", 0, nil
	}
	budget, ok := ReasoningBudget(v.Str)
	if v.Type != gjson.String || !ok {
		e := apierr.BadRequest("invalid_value", "Unknown reasoning_effort %s (want none, minimal, low, medium, high or xhigh).", v.Raw)
		e.Param = "reasoning_effort"
		return "", 0, e
	}
	return v.Str, budget, nil
}

// claudeThinking is what a reasoning_effort becomes for a Claude model
// (Anthropic's Messages API, Claude on Bedrock), with Anthropic's
// constraints applied to the rest of the request.
type claudeThinking struct {
	budget    int64 // 0: no thinking
	maxTokens int64 // max_tokens to send
}

// claudeThinkingFor applies Anthropic's rules to a budget from the table:
// at least 1024, and less than max_tokens, which counts thinking and answer
// together; when max_tokens is not above the budget, the budget is added to
// it, so the answer keeps the room the client gave it.
func claudeThinkingFor(budget, maxTokens int64) claudeThinking {
	if budget <= 0 {
		return claudeThinking{maxTokens: maxTokens}
	}
	budget = max(budget, anthropicMinBudget)
	if maxTokens <= budget {
		maxTokens += budget
	}
	return claudeThinking{budget: budget, maxTokens: maxTokens}
}

// appendClaudeThinking writes Anthropic's thinking object.
func appendClaudeThinking(b []byte, budget int64) []byte {
	b = append(b, `{"type":"enabled","budget_tokens":`...)
	b = strconv.AppendInt(b, budget, 10)
	return append(b, '}')
}

// claudeSampling says what happens to temperature and top_p when Claude
// thinks: Anthropic accepts no temperature but 1 and a top_p only between
// 0.95 and 1. So temperature is dropped (unless 1), top_p raised to 0.95.
// keep false drops the parameter; raw is the value to send otherwise.
func claudeSampling(param string, v gjson.Result) (raw string, keep bool) {
	switch param {
	case "temperature":
		return v.Raw, v.Type == gjson.Number && v.Float() == 1
	case "top_p":
		if v.Type == gjson.Number && v.Float() < 0.95 {
			return "0.95", true
		}
		return v.Raw, true
	}
	return v.Raw, true
}

// claudeForcedToolChoice reports whether an OpenAI tool_choice forces a tool
// ("required" or a named function), which Anthropic refuses with thinking:
// the request is then sent without thinking, as the forced call is what the
// client asked for.
func claudeForcedToolChoice(tc gjson.Result) bool {
	return tc.Type == gjson.String && tc.Str == "required" || tc.IsObject() && tc.Get("type").Str == "function"
}

// ThinkingBlock is one block of a hub message's thinking_blocks: Kind
// "thinking" (Text and the Signature the provider signed it with),
// "redacted_thinking" (Data, the provider's encrypted thinking) or
// "thought_signature" (Gemini's Signature of the part that became the tool
// call ToolCallID, or of a text part when ToolCallID is "").
type ThinkingBlock struct {
	Kind, Text, Signature, Data, ToolCallID string
}

// thoughtSignature is the Kind of a Gemini thought signature.
const thoughtSignature = "thought_signature"

// appendThinkingBlock writes one thinking_blocks entry.
func appendThinkingBlock(b []byte, tb ThinkingBlock) []byte {
	switch tb.Kind {
	case thoughtSignature:
		b = append(b, `{"type":"thought_signature","signature":`...)
		b = appendJSONString(b, tb.Signature)
		if tb.ToolCallID != "" {
			b = append(b, `,"tool_call_id":`...)
			b = appendJSONString(b, tb.ToolCallID)
		}
		return append(b, '}')
	case "redacted_thinking":
		b = append(b, `{"type":"redacted_thinking","data":`...)
		b = appendJSONString(b, tb.Data)
		return append(b, '}')
	}
	b = append(b, `{"type":"thinking","thinking":`...)
	b = appendJSONString(b, tb.Text)
	b = append(b, `,"signature":`...)
	b = appendJSONString(b, tb.Signature)
	return append(b, '}')
}

// hubThinkingBlocks reads a hub message's thinking_blocks for Anthropic and
// Bedrock: the signed thinking and redacted thinking, without Gemini's
// thought signatures.
func hubThinkingBlocks(v gjson.Result) []ThinkingBlock {
	all := hubSignedBlocks(v)
	out := all[:0]
	for _, tb := range all {
		if tb.Kind != thoughtSignature {
			out = append(out, tb)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// hubSignedBlocks reads a hub message's thinking_blocks: the signed
// thinking, redacted thinking and thought signatures a provider can verify.
// Blocks without a signature are left out: no provider accepts them back.
func hubSignedBlocks(v gjson.Result) []ThinkingBlock {
	if !v.IsArray() {
		return nil
	}
	var out []ThinkingBlock
	v.ForEach(func(_, b gjson.Result) bool {
		switch b.Get("type").Str {
		case "thinking":
			if sig := b.Get("signature").Str; sig != "" {
				out = append(out, ThinkingBlock{Kind: "thinking", Text: b.Get("thinking").Str, Signature: sig})
			}
		case "redacted_thinking":
			if d := b.Get("data").Str; d != "" {
				out = append(out, ThinkingBlock{Kind: "redacted_thinking", Data: d})
			}
		case thoughtSignature:
			if sig := b.Get("signature").Str; sig != "" {
				out = append(out, ThinkingBlock{Kind: thoughtSignature, Signature: sig, ToolCallID: b.Get("tool_call_id").Str})
			}
		}
		return true
	})
	return out
}
