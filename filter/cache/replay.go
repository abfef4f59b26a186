package cache

import (
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/translate"
	"github.com/llmproc/llmproc/filter/usage"
)

// ReplayJSON returns the entry as the client's non-streamed answer: the
// stored chat.completion JSON itself (not a copy).
func ReplayJSON(e Entry) []byte { return e.Completion }

// deltaBytes is the most text one replayed delta carries; pieces end on a
// UTF-8 boundary.
const deltaBytes = 256

// ReplaySSE returns the entry as a well-formed OpenAI SSE stream: a role
// chunk, the reasoning, content and refusal in deltas, tool_call deltas
// (index, id and name, then the arguments), the finish chunk, a usage chunk
// only if includeUsage, then data: [DONE]. Every chunk carries the stored
// answer's id, created and model.
func ReplaySSE(e Entry, includeUsage bool) []byte {
	c := parseCompletion(e.Completion)
	s := translate.Stream{ID: c.ID, Model: c.Model, Created: c.Created}
	n := len(c.Content) + len(c.Reasoning) + len(c.Refusal)
	for _, tc := range c.ToolCalls {
		n += len(tc.Arguments) + len(tc.ID) + len(tc.Name)
	}
	const perChunk = 160 // the envelope of one chunk, roughly
	dst := make([]byte, 0, n+perChunk*(4+len(c.ToolCalls)*2+n/deltaBytes)+400)
	dst = s.Role(dst)
	dst = appendPieces(dst, &s, "reasoning_content", c.Reasoning)
	dst = appendPieces(dst, &s, "content", c.Content)
	dst = appendPieces(dst, &s, "refusal", c.Refusal)
	for i, tc := range c.ToolCalls {
		dst = s.ToolCall(dst, i, tc.ID, tc.Name, "")
		for args := tc.Arguments; args != ""; {
			var piece string
			piece, args = cut(args)
			dst = s.ToolCall(dst, i, "", "", piece)
		}
	}
	dst = s.Finish(dst, c.FinishReason)
	if includeUsage {
		dst = s.Usage(dst, c.Usage)
	}
	return translate.Done(dst)
}

func appendPieces(dst []byte, s *translate.Stream, field, text string) []byte {
	for text != "" {
		var piece string
		piece, text = cut(text)
		dst = s.Content(dst, field, piece)
	}
	return dst
}

// cut splits off up to deltaBytes of s, not inside a UTF-8 sequence.
func cut(s string) (head, rest string) {
	if len(s) <= deltaBytes {
		return s, ""
	}
	i := deltaBytes
	for j := 0; j < utf8.UTFMax && i > 0 && !utf8.RuneStart(s[i]); j++ {
		i--
	}
	if i == 0 || !utf8.RuneStart(s[i]) {
		i = deltaBytes // not UTF-8 here; any cut is as good
	}
	return s[:i], s[i:]
}

// parseCompletion reads a stored chat.completion back into neutral form.
func parseCompletion(b []byte) translate.Completion {
	json := unsafe.String(unsafe.SliceData(b), len(b))
	var c translate.Completion
	gjson.Parse(json).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			c.ID = v.Str
		case "model":
			c.Model = v.Str
		case "created":
			c.Created = v.Int()
		case "usage":
			c.Usage, _ = usage.FromOpenAI(v)
		case "choices":
			ch := v.Get("0")
			c.FinishReason = ch.Get("finish_reason").Str
			ch.Get("message").ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "content":
					c.Content = v.Str
				case "refusal":
					c.Refusal = v.Str
				case "reasoning_content":
					c.Reasoning = v.Str
				case "tool_calls":
					v.ForEach(func(_, tc gjson.Result) bool {
						f := tc.Get("function")
						c.ToolCalls = append(c.ToolCalls, translate.ToolCall{
							ID: tc.Get("id").Str, Name: f.Get("name").Str, Arguments: f.Get("arguments").Str,
						})
						return true
					})
				}
				return true
			})
		}
		return true
	})
	return c
}
