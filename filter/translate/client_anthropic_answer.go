package translate

// Anthropic Messages clients, answer side: llmproc's errors and the
// backend's chat answers (JSON and SSE) turned into Anthropic messages and
// events. The request side is in client_anthropic.go.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/usage"
)

// AnthropicError renders an *apierr.Error as Anthropic error JSON (used for llmproc's own rejections of /v1/messages requests).
func AnthropicError(e *apierr.Error) []byte {
	return caAppendError(make([]byte, 0, 64+len(e.Message)), caErrorType(e.Status, e.Type, e.Code, e.Message), e.Message)
}

func caAppendError(b []byte, typ, msg string) []byte {
	b = append(b, `{"type":"error","error":{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","message":`...)
	b = appendJSONString(b, msg)
	return append(b, "}}"...)
}

// caErrorType maps an HTTP status (or, for errors inside a 200 stream, the
// OpenAI error type and code) to Anthropic's error type.
func caErrorType(status int, typ, code, msg string) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == http.StatusServiceUnavailable || status == 529:
		return "overloaded_error"
	case status >= 500:
		return "api_error"
	case status >= 400:
		return "invalid_request_error"
	}
	switch {
	case typ == apierr.TypeRateLimit || strings.Contains(code, "rate_limit"):
		return "rate_limit_error"
	case typ == apierr.TypeAuthentication:
		return "authentication_error"
	case strings.Contains(typ, "overload") || strings.Contains(code, "overload") || strings.Contains(strings.ToLower(msg), "overloaded"):
		return "overloaded_error"
	case typ == apierr.TypeInvalidRequest:
		return "invalid_request_error"
	}
	return "api_error"
}

// AnthropicResponse converts OpenAI output into Anthropic Messages output for one attempt.
// stream: the client asked for a stream; status: the (already mapped) HTTP status of the answer; model: the model name to report.
// 2xx JSON: chat.completion → {"id":"msg_…","type":"message","role":"assistant","model",..."content":[text / tool_use blocks],"stop_reason","stop_sequence":null,"usage":{"input_tokens","output_tokens","cache_read_input_tokens","cache_creation_input_tokens"}}.
// 2xx stream: OpenAI SSE chunks (any chunk boundaries) → Anthropic SSE events with `event:` lines: message_start, content_block_start/delta (text_delta, input_json_delta for tool calls)/stop, message_delta (stop_reason, usage.output_tokens), message_stop; a `data: [DONE]` ends it; an OpenAI error event (data: {"error":...}) → an Anthropic `event: error` and the stream ends without message_stop; a stream that ends without [DONE] gets no message_stop either.
// non-2xx: OpenAI error JSON → Anthropic error JSON {"type":"error","error":{"type":<mapped: invalid_request_error, authentication_error, permission_error, not_found_error, rate_limit_error, api_error, overloaded_error>,"message":...}}.
func AnthropicResponse(stream bool, status int, model string) Body {
	return NewAnthropicAnswer(AnthropicAnswer{Stream: stream, Status: status, Model: model})
}

// AnthropicAnswer says how to convert one attempt's OpenAI output for an
// Anthropic client.
type AnthropicAnswer struct {
	Stream bool   // the client asked for a stream
	Status int    // the (already mapped) HTTP status of the answer
	Model  string // the model name to report
	// InputEstimate is message_start's usage.input_tokens: llmproc's
	// estimate of the prompt, as the hub reports usage only at the end
	// (message_delta then carries the backend's exact counts).
	InputEstimate int64
	// OmitThinking: the client sent thinking.display "omitted", so thinking
	// blocks carry no text.
	OmitThinking bool
}

// NewAnthropicAnswer is AnthropicResponse with every option.
func NewAnthropicAnswer(o AnthropicAnswer) Body {
	switch {
	case o.Status < 200 || o.Status >= 300:
		return &errorBody{status: o.Status, norm: caErrorJSON}
	case o.Stream:
		return &caStream{model: o.Model, estimate: max(o.InputEstimate, 0), omit: o.OmitThinking}
	}
	return &caJSON{model: o.Model, omit: o.OmitThinking}
}

// caErrorJSON turns a buffered OpenAI error answer into Anthropic's
// (errorBody's norm).
func caErrorJSON(status int, body []byte) []byte {
	oe := gjson.GetBytes(NormalizeError(status, body), "error")
	msg := oe.Get("message").String()
	return caAppendError(nil, caErrorType(status, oe.Get("type").String(), oe.Get("code").String(), msg), msg)
}

// caJSON buffers a chat.completion and emits an Anthropic message.
type caJSON struct {
	model  string
	omit   bool // thinking.display "omitted"
	answer hubAnswer
}

func (a *caJSON) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	body, done, ok := a.answer.add(chunk, eos)
	if !done {
		return nil, false
	}
	if !ok {
		return caAppendError(nil, "api_error", "the upstream answer could not be read"), false
	}
	r := gjson.ParseBytes(body)
	if e := r.Get("error"); e.Exists() {
		msg := e.Get("message").String()
		if msg == "" {
			msg = "upstream error"
		}
		return caAppendError(nil, caErrorType(0, e.Get("type").String(), e.Get("code").String(), msg), msg), false
	}
	return caMessage(r, a.model, a.omit), false
}

// caMessage renders a chat.completion as an Anthropic message.
func caMessage(r gjson.Result, model string, omit bool) []byte {
	if model == "" {
		model = r.Get("model").String()
	}
	msg := r.Get("choices.0.message")
	text := caContentText(msg.Get("content"))
	refusal := msg.Get("refusal").String()
	calls := msg.Get("tool_calls")
	u, _ := usage.FromOpenAI(r.Get("usage"))

	b := make([]byte, 0, 256+len(text)+len(calls.Raw))
	b = append(b, `{"id":`...)
	b = appendJSONString(b, caMessageID(r.Get("id").String()))
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendJSONString(b, model)
	b = append(b, `,"content":[`...)
	n := 0
	for _, tb := range caThinking(msg, omit) {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendThinkingBlock(b, tb)
	}
	for i, t := range []string{text, refusal} {
		if t == "" {
			continue
		}
		var anns []Annotation
		if i == 0 {
			anns = hubAnnotations(msg.Get("annotations"))
		}
		for _, seg := range caCitedSegments(t, anns) {
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = append(b, `{"type":"text","text":`...)
			b = appendJSONString(b, seg.text)
			if len(seg.cites) > 0 {
				b = append(b, `,"citations":[`...)
				for k, a := range seg.cites {
					if k > 0 {
						b = append(b, ',')
					}
					b = caAppendCitation(b, a, seg.text)
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
	}
	calls.ForEach(func(_, c gjson.Result) bool {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"type":"tool_use","id":`...)
		b = appendJSONString(b, c.Get("id").String())
		b = append(b, `,"name":`...)
		b = appendJSONString(b, c.Get("function.name").String())
		b = append(b, `,"input":`...)
		b = caToolInput(b, c.Get("function.arguments").String())
		b = append(b, '}')
		return true
	})
	b = append(b, `],"stop_reason":"`...)
	b = append(b, caStopReason(r.Get("choices.0.finish_reason").String(), refusal != "")...)
	b = append(b, `","stop_sequence":null,"usage":`...)
	b = caAppendUsage(b, u)
	return append(b, '}')
}

// caSegment is a piece of an answer's text and the url citations that
// cover all of it.
type caSegment struct {
	text  string
	cites []Annotation
}

// caCitedSegments splits text at the annotations' bounds (characters), so
// each cited span becomes a text block with its citations, as Anthropic
// returns web search answers. Without annotations the text is one block.
func caCitedSegments(text string, anns []Annotation) []caSegment {
	if len(anns) == 0 {
		return []caSegment{{text: text}}
	}
	runes := []rune(text)
	cuts := []int{0, len(runes)}
	for _, a := range anns {
		cuts = append(cuts, min(max(a.Start, 0), len(runes)), min(max(a.End, 0), len(runes)))
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	var out []caSegment
	for i := 0; i+1 < len(cuts); i++ {
		from, to := cuts[i], cuts[i+1]
		seg := caSegment{text: string(runes[from:to])}
		for _, a := range anns {
			if a.Start <= from && a.End >= to && a.End > a.Start {
				seg.cites = append(seg.cites, a)
			}
		}
		out = append(out, seg)
	}
	return out
}

// caAppendCitation writes a url citation as Anthropic's
// web_search_result_location (no encrypted_index: the backend gave none).
func caAppendCitation(b []byte, a Annotation, cited string) []byte {
	b = append(b, `{"type":"web_search_result_location","url":`...)
	b = appendJSONString(b, a.URL)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, a.Title)
	b = append(b, `,"encrypted_index":"","cited_text":`...)
	b = appendJSONString(b, cited)
	return append(b, '}')
}

// caThinking returns an answer's thinking as Anthropic blocks: the hub's
// thinking_blocks (signed and redacted), else its reasoning_content as one
// unsigned block; with omit, the text is left out and unsigned thinking
// is not sent at all.
func caThinking(msg gjson.Result, omit bool) []ThinkingBlock {
	var out []ThinkingBlock
	msg.Get("thinking_blocks").ForEach(func(_, b gjson.Result) bool {
		switch b.Get("type").Str {
		case "thinking":
			out = append(out, ThinkingBlock{Kind: "thinking", Text: b.Get("thinking").Str, Signature: b.Get("signature").Str})
		case "redacted_thinking":
			out = append(out, ThinkingBlock{Kind: "redacted_thinking", Data: b.Get("data").Str})
		}
		return true
	})
	if len(out) == 0 {
		if r := msg.Get("reasoning_content").Str; r != "" {
			out = append(out, ThinkingBlock{Kind: "thinking", Text: r})
		}
	}
	kept := out[:0]
	for _, tb := range out {
		if omit && tb.Kind == "thinking" {
			if tb.Signature == "" {
				continue
			}
			tb.Text = ""
		}
		kept = append(kept, tb)
	}
	return kept
}

// caContentText reads a message's content: a string, or text parts joined.
func caContentText(c gjson.Result) string {
	if !c.IsArray() {
		return c.String()
	}
	var sb strings.Builder
	c.ForEach(func(_, p gjson.Result) bool {
		if p.Get("type").String() == "text" {
			sb.WriteString(p.Get("text").String())
		}
		return true
	})
	return sb.String()
}

// caToolInput writes tool-call arguments as Anthropic's input object.
// Arguments that are not a JSON object (a model's malformed call) are kept
// as a string under "arguments" rather than lost.
func caToolInput(b []byte, args string) []byte {
	a := strings.TrimSpace(args)
	switch {
	case a == "":
		return append(b, "{}"...)
	case gjson.Valid(a) && gjson.Parse(a).IsObject():
		buf := bytes.NewBuffer(b)
		if json.Compact(buf, []byte(a)) == nil {
			return buf.Bytes()
		}
	}
	b = append(b, `{"arguments":`...)
	b = appendJSONString(b, args)
	return append(b, '}')
}

// caMessageID turns an OpenAI completion id into a message id ("msg_…").
func caMessageID(id string) string {
	if strings.HasPrefix(id, "msg_") {
		return id
	}
	return "msg_" + strings.TrimPrefix(id, "chatcmpl-")
}

// caStopReason maps an OpenAI finish_reason to Anthropic's stop_reason.
// OpenAI cannot say which stop sequence matched, so "stop" is end_turn.
func caStopReason(finish string, refused bool) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	if refused {
		return "refusal"
	}
	return "end_turn"
}

// caAppendUsage writes Anthropic usage: input_tokens excludes cached and
// cache-write tokens, which Anthropic reports separately.
func caAppendUsage(b []byte, u usage.Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, max(u.Input-u.CachedInput-u.CacheWrite, 0), 10)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = strconv.AppendInt(b, u.CacheWrite, 10)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = strconv.AppendInt(b, u.CachedInput, 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, u.Output, 10)
	return append(b, '}')
}

// caStream turns OpenAI chat.completion.chunk events into Anthropic's
// stream events, keeping just enough state to open and close blocks.
type caStream struct {
	model    string
	estimate int64 // message_start's input_tokens
	omit     bool  // thinking.display "omitted"
	thinking bool  // the open block is a thinking block
	sc       sse.Scanner
	out      []byte
	started  bool // message_start sent
	ended    bool // [DONE] or an error seen: nothing more is sent
	open     bool // a content block is open
	openIdx  int  // its index
	next     int  // the next block index
	tool     int  // the OpenAI tool-call index of the open block, -1 for text
	tools    []caToolBlock
	finish   string
	refused  bool
	usage    usage.Usage
}

// caToolBlock ties an OpenAI tool-call index to its Anthropic block.
type caToolBlock struct{ call, block int }

func (s *caStream) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	s.out = reuse(s.out)
	s.sc.Feed(chunk, s.event)
	if eos {
		s.sc.Flush(s.event)
	}
	return s.out, false
}

func (s *caStream) event(ev sse.Event) {
	if s.ended {
		return
	}
	if string(ev.Data) == "[DONE]" {
		s.done()
		return
	}
	if !gjson.ValidBytes(ev.Data) {
		return
	}
	r := gjson.ParseBytes(ev.Data)
	if e := r.Get("error"); e.Exists() {
		msg := e.Get("message").String()
		if msg == "" {
			msg = "upstream error"
		}
		s.ended = true
		s.out = append(s.out, "event: error\ndata: "...)
		s.out = caAppendError(s.out, caErrorType(0, e.Get("type").String(), e.Get("code").String(), msg), msg)
		s.out = append(s.out, "\n\n"...)
		return
	}
	s.start(r.Get("id").String(), r.Get("model").String())
	if u := r.Get("usage"); u.IsObject() {
		s.usage, _ = usage.FromOpenAI(u)
	}
	c := r.Get("choices.0")
	if !c.Exists() {
		return
	}
	d := c.Get("delta")
	d.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "content":
			if v.Str != "" {
				s.text(v.Str)
			}
		case "refusal":
			if v.Str != "" {
				s.refused = true
				s.text(v.Str)
			}
		case "reasoning_content":
			if v.Str != "" {
				s.think(v.Str)
			}
		case "annotations":
			// Streamed, citations come once their text is complete: they
			// go to the open text block (the whole block, not its span).
			if s.open && s.tool < 0 && !s.thinking {
				for _, a := range hubAnnotations(v) {
					b := append(s.out, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
					b = strconv.AppendInt(b, int64(s.openIdx), 10)
					b = append(b, `,"delta":{"type":"citations_delta","citation":`...)
					b = caAppendCitation(b, a, "")
					s.out = append(b, "}}\n\n"...)
				}
			}
		case "thinking_blocks":
			v.ForEach(func(_, tb gjson.Result) bool {
				s.thinkingBlock(tb)
				return true
			})
		case "tool_calls":
			eachToolCallDelta(v, s.toolCall)
		}
		return true
	})
	if f := c.Get("finish_reason"); f.Type == gjson.String && f.Str != "" {
		s.finish = f.Str
		s.close()
	}
}

func (s *caStream) start(id, model string) {
	if s.started {
		return
	}
	s.started = true
	if s.model != "" {
		model = s.model
	}
	b := append(s.out, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"...)
	b = appendJSONString(b, caMessageID(id))
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendJSONString(b, model)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	b = caAppendUsage(b, usage.Usage{Input: s.estimate})
	s.out = append(b, "}}\n\n"...)
}

func (s *caStream) text(t string) {
	if !s.open || s.tool >= 0 || s.thinking {
		s.close()
		s.startBlock(-1)
		s.out = append(s.out, `{"type":"text","text":""}}`+"\n\n"...)
	}
	s.out = s.delta(s.openIdx, "text_delta", "text", t)
}

func (s *caStream) toolCall(call int, tc gjson.Result) {
	block := -1
	for _, t := range s.tools {
		if t.call == call {
			block = t.block
		}
	}
	if block < 0 {
		id := tc.Get("id").String()
		if id == "" {
			id = "call_" + strconv.Itoa(call)
		}
		s.close()
		block = s.startBlock(call)
		s.tools = append(s.tools, caToolBlock{call: call, block: block})
		b := append(s.out, `{"type":"tool_use","id":`...)
		b = appendJSONString(b, id)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, tc.Get("function.name").String())
		s.out = append(b, `,"input":{}}}`+"\n\n"...)
	}
	if args := tc.Get("function.arguments").String(); args != "" {
		s.out = s.delta(block, "input_json_delta", "partial_json", args)
	}
}

// think sends a piece of thinking in the open thinking block, opening one
// first. With omit, the text is kept back: the block opens only if the
// backend signs it (thinkingBlock).
func (s *caStream) think(t string) {
	if s.omit {
		return
	}
	s.openThinking()
	s.out = s.delta(s.openIdx, "thinking_delta", "thinking", t)
}

func (s *caStream) openThinking() {
	if s.open && s.thinking {
		return
	}
	s.close()
	s.startBlock(-1)
	s.thinking = true
	s.out = append(s.out, `{"type":"thinking","thinking":"","signature":""}}`+"\n\n"...)
}

// thinkingBlock handles one thinking_blocks entry of a delta: a signature
// ends the open thinking block, a redacted block is sent whole.
func (s *caStream) thinkingBlock(tb gjson.Result) {
	switch tb.Get("type").Str {
	case "thinking":
		sig := tb.Get("signature").Str
		if sig == "" {
			return
		}
		s.openThinking()
		s.out = s.delta(s.openIdx, "signature_delta", "signature", sig)
		s.close()
	case "redacted_thinking":
		s.close()
		s.startBlock(-1)
		b := append(s.out, `{"type":"redacted_thinking","data":`...)
		b = appendJSONString(b, tb.Get("data").Str)
		s.out = append(b, "}}\n\n"...)
		s.close()
	}
}

// startBlock opens block s.next and writes content_block_start up to its
// content_block value.
func (s *caStream) startBlock(call int) int {
	s.open, s.openIdx, s.tool, s.thinking = true, s.next, call, false
	s.next++
	b := append(s.out, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
	b = strconv.AppendInt(b, int64(s.openIdx), 10)
	s.out = append(b, `,"content_block":`...)
	return s.openIdx
}

func (s *caStream) delta(index int, typ, field, text string) []byte {
	b := append(s.out, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"delta":{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","`...)
	b = append(b, field...)
	b = append(b, `":`...)
	b = appendJSONString(b, text)
	return append(b, "}}\n\n"...)
}

func (s *caStream) close() {
	if !s.open {
		return
	}
	s.open = false
	b := append(s.out, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	b = strconv.AppendInt(b, int64(s.openIdx), 10)
	s.out = append(b, "}\n\n"...)
}

// done ends the message: the stop reason and usage, then message_stop.
func (s *caStream) done() {
	s.start("", "")
	s.close()
	s.ended = true
	b := append(s.out, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\""...)
	b = append(b, caStopReason(s.finish, s.refused)...)
	b = append(b, `","stop_sequence":null},"usage":`...)
	b = caAppendUsage(b, s.usage)
	s.out = append(b, "}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}
