package translate

import (
	"net/http"
	"strconv"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/usage"
)

// This file writes OpenAI chat-completions output for translators whose
// backends speak another schema: one place, so every provider's answer has
// the same shape, and usage always carries the details llmproc reads back.

// ToolCall is one function call in an answer.
type ToolCall struct {
	ID, Name, Arguments string
}

// Completion is a whole (non-streamed) answer in neutral form.
type Completion struct {
	ID, Model string
	Created   int64
	Content   string
	Refusal   string
	Reasoning string          // provider "thinking" text, sent as reasoning_content
	Thinking  []ThinkingBlock // signed and redacted thinking, sent as thinking_blocks
	// HideReasoning leaves Reasoning and Thinking out (Response.Reasoning
	// false: the client did not ask for them).
	HideReasoning bool
	Annotations   []Annotation // url_citation annotations of Content
	ToolCalls     []ToolCall
	FinishReason  string
	Usage         usage.Usage
}

// JSON renders an OpenAI chat.completion object.
func (c *Completion) JSON() []byte {
	b := make([]byte, 0, 256+len(c.Content))
	b = append(b, `{"id":`...)
	b = appendJSONString(b, c.ID)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, c.Created, 10)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, c.Model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if c.Content == "" && len(c.ToolCalls) > 0 {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, c.Content)
	}
	if c.Refusal != "" {
		b = append(b, `,"refusal":`...)
		b = appendJSONString(b, c.Refusal)
	}
	if c.Reasoning != "" && !c.HideReasoning {
		b = append(b, `,"reasoning_content":`...)
		b = appendJSONString(b, c.Reasoning)
	}
	if len(c.Thinking) > 0 && !c.HideReasoning {
		b = append(b, `,"thinking_blocks":[`...)
		for i, tb := range c.Thinking {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendThinkingBlock(b, tb)
		}
		b = append(b, ']')
	}
	if len(c.Annotations) > 0 {
		b = append(b, `,"annotations":`...)
		b = appendAnnotations(b, c.Annotations)
	}
	if len(c.ToolCalls) > 0 {
		b = append(b, `,"tool_calls":[`...)
		for i, tc := range c.ToolCalls {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendToolCall(b, -1, tc.ID, tc.Name, tc.Arguments)
		}
		b = append(b, ']')
	}
	b = append(b, `},"finish_reason":`...)
	b = appendNullable(b, c.FinishReason)
	b = append(b, `}],"usage":`...)
	b = AppendUsage(b, c.Usage)
	return append(b, '}')
}

// AppendUsage writes an OpenAI usage object. prompt_tokens includes cached
// and cache-write tokens, completion_tokens includes reasoning tokens, as in
// OpenAI's own answers; usage.FromOpenAI reads every field back, the
// one-hour cache writes and web searches too (written only when non-zero).
func AppendUsage(b []byte, u usage.Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, u.Input, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, u.Output, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, u.Input+u.Output, 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, u.CachedInput, 10)
	b = append(b, `,"cache_write_tokens":`...)
	b = strconv.AppendInt(b, u.CacheWrite, 10)
	if u.CacheWrite1h > 0 {
		b = append(b, `,"cache_write_1h_tokens":`...)
		b = strconv.AppendInt(b, u.CacheWrite1h, 10)
	}
	b = append(b, `},"completion_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, u.Reasoning, 10)
	b = append(b, '}')
	if u.WebSearches > 0 {
		b = append(b, `,"server_tool_use":{"web_search_requests":`...)
		b = strconv.AppendInt(b, u.WebSearches, 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

// Stream writes OpenAI chat.completion.chunk events for one answer.
type Stream struct {
	ID, Model string
	Created   int64
	// HideReasoning drops reasoning_content deltas and thinking blocks
	// (Response.Reasoning false).
	HideReasoning bool
}

// head starts a chunk event: id, object, created and model.
func (s *Stream) head(dst []byte) []byte {
	dst = append(dst, `data: {"id":`...)
	dst = appendJSONString(dst, s.ID)
	dst = append(dst, `,"object":"chat.completion.chunk","created":`...)
	dst = strconv.AppendInt(dst, s.Created, 10)
	dst = append(dst, `,"model":`...)
	return appendJSONString(dst, s.Model)
}

// open starts a chunk event up to the inside of choices[0].delta.
func (s *Stream) open(dst []byte) []byte {
	return append(s.head(dst), `,"choices":[{"index":0,"delta":{`...)
}

// Role appends the first chunk, announcing the assistant role.
func (s *Stream) Role(dst []byte) []byte {
	dst = s.open(dst)
	return append(dst, `"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n"...)
}

// Content appends a text delta (field is "content", "refusal" or
// "reasoning_content").
func (s *Stream) Content(dst []byte, field, text string) []byte {
	if field == "reasoning_content" && s.HideReasoning {
		return dst
	}
	dst = s.open(dst)
	dst = appendJSONString(dst, field)
	dst = append(dst, ':')
	dst = appendJSONString(dst, text)
	return append(dst, `},"finish_reason":null}]}`+"\n\n"...)
}

// Thinking appends a thinking_blocks delta carrying one block: the
// signature that ends a thinking block (its text came as reasoning_content
// deltas, so Text is empty) or a redacted_thinking block.
func (s *Stream) Thinking(dst []byte, tb ThinkingBlock) []byte {
	if s.HideReasoning {
		return dst
	}
	dst = s.open(dst)
	dst = append(dst, `"thinking_blocks":[`...)
	dst = appendThinkingBlock(dst, tb)
	return append(dst, `]},"finish_reason":null}]}`+"\n\n"...)
}

// Annotations appends an annotations delta (url citations of the content
// sent so far).
func (s *Stream) Annotations(dst []byte, a []Annotation) []byte {
	if len(a) == 0 {
		return dst
	}
	dst = s.open(dst)
	dst = append(dst, `"annotations":`...)
	dst = appendAnnotations(dst, a)
	return append(dst, `},"finish_reason":null}]}`+"\n\n"...)
}

// ToolCall appends a tool-call delta: the call's start (id and name set) or
// a piece of its arguments (id and name empty).
func (s *Stream) ToolCall(dst []byte, index int, id, name, args string) []byte {
	dst = s.open(dst)
	dst = append(dst, `"tool_calls":[`...)
	dst = appendToolCall(dst, index, id, name, args)
	return append(dst, `]},"finish_reason":null}]}`+"\n\n"...)
}

// Finish appends the chunk carrying the finish reason.
func (s *Stream) Finish(dst []byte, reason string) []byte {
	dst = s.open(dst)
	dst = append(dst, `},"finish_reason":`...)
	dst = appendNullable(dst, reason)
	return append(dst, "}]}\n\n"...)
}

// Usage appends the usage-only chunk (empty choices), as OpenAI sends it
// when stream_options.include_usage is set.
func (s *Stream) Usage(dst []byte, u usage.Usage) []byte {
	dst = append(s.head(dst), `,"choices":[],"usage":`...)
	dst = AppendUsage(dst, u)
	return append(dst, "}\n\n"...)
}

// Done appends the stream's clean end.
func Done(dst []byte) []byte { return append(dst, "data: [DONE]\n\n"...) }

// ErrorEvent appends an OpenAI error object as an SSE event: the stream ends
// with it instead of [DONE], so clients never take it for a clean end.
func ErrorEvent(dst []byte, e *apierr.Error) []byte {
	return sse.AppendData(dst, e.JSON())
}

func appendToolCall(b []byte, index int, id, name, args string) []byte {
	b = append(b, '{')
	if index >= 0 {
		b = append(b, `"index":`...)
		b = strconv.AppendInt(b, int64(index), 10)
		b = append(b, ',')
	}
	if id != "" {
		b = append(b, `"id":`...)
		b = appendJSONString(b, id)
		b = append(b, `,"type":"function",`...)
	}
	b = append(b, `"function":{`...)
	if name != "" || id != "" {
		b = append(b, `"name":`...)
		b = appendJSONString(b, name)
		b = append(b, ',')
	}
	b = append(b, `"arguments":`...)
	b = appendJSONString(b, args)
	return append(b, "}}"...)
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

// appendJSONString writes s as a JSON string (valid JSON for any input).
func appendJSONString(b []byte, s string) []byte {
	return apierr.AppendJSONString(b, s)
}

// ProviderError is a provider's error in neutral form, mapped to the status
// OpenAI clients and Envoy's retry policy expect: throttling 429, overload
// 503, bad request 400, auth 401/403, not found 404, others as given.
func ProviderError(status int, code, message string) *apierr.Error {
	if message == "" {
		message = "upstream returned " + http.StatusText(status)
	}
	return apierr.New(status, apierr.TypeForStatus(status), code, "%s", message)
}
