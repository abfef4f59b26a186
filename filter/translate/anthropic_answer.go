package translate

// The anthropic backend's answer side: Anthropic's messages, events and
// errors turned into the chat-completions hub form. The request side is in
// anthropic.go.

import (
	"net/http"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/usage"
)

// Response picks how the answer is read: Anthropic SSE, a message JSON, or
// an error.
func (a anthropic) Response(r *Response) Answer {
	now := a.now
	if now == nil {
		now = time.Now
	}
	if r.Status < 200 || r.Status >= 300 {
		status := r.Status
		if status == 529 {
			status = http.StatusServiceUnavailable // overloaded: what Envoy retries on
		}
		return Answer{Body: &errorBody{status: status, norm: anthropicErrorJSON}, Status: status, ContentType: "application/json"}
	}
	if strings.HasPrefix(r.ContentType, "text/event-stream") {
		s := &anthropicStream{model: r.Model, created: now().Unix(), hide: !r.Reasoning}
		s.onEvent = s.event
		return Answer{Body: s, ContentType: "text/event-stream"}
	}
	return Answer{Body: &anthropicJSON{model: r.Model, created: now().Unix(), hide: !r.Reasoning}, ContentType: "application/json"}
}

// anthropicError maps an Anthropic error type (and, for
// invalid_request_error, its message) to the OpenAI error clients see.
func anthropicError(status int, typ, msg string) *apierr.Error {
	if status == 0 {
		switch typ {
		case "invalid_request_error":
			status = http.StatusBadRequest
		case "authentication_error":
			status = http.StatusUnauthorized
		case "billing_error":
			status = http.StatusPaymentRequired
		case "permission_error":
			status = http.StatusForbidden
		case "not_found_error":
			status = http.StatusNotFound
		case "request_too_large":
			status = http.StatusRequestEntityTooLarge
		case "rate_limit_error":
			status = http.StatusTooManyRequests
		case "timeout_error":
			status = http.StatusGatewayTimeout
		case "overloaded_error":
			status = http.StatusServiceUnavailable
		default: // api_error and anything new
			status = http.StatusInternalServerError
		}
	}
	code := typ
	switch {
	case typ == "rate_limit_error":
		code = "rate_limit_exceeded"
	case typ == "authentication_error":
		code = "invalid_api_key"
	case typ == "invalid_request_error" && anthropicContextTooLong(msg):
		code = "context_length_exceeded"
	case code == "":
		code = "upstream_error"
	}
	return ProviderError(status, code, msg)
}

// anthropicContextTooLong recognizes Anthropic's messages for a prompt over the
// model's context window ("prompt is too long: 210000 tokens > 200000
// maximum", "input length and `max_tokens` exceed context limit: ...").
func anthropicContextTooLong(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "prompt is too long") || strings.Contains(m, "exceed context limit") ||
		strings.Contains(m, "context window")
}

// anthropicErrorJSON turns a buffered non-2xx Anthropic answer into OpenAI
// error JSON (errorBody's norm).
func anthropicErrorJSON(status int, body []byte) []byte {
	typ := gjson.GetBytes(body, "error.type")
	msg := gjson.GetBytes(body, "error.message")
	if !gjson.ValidBytes(body) || typ.Type != gjson.String {
		return NormalizeError(status, body)
	}
	return anthropicError(status, typ.Str, msg.Str).JSON()
}

// anthropicStopReason maps stop_reason to an OpenAI finish_reason.
func anthropicStopReason(r string) string {
	switch r {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	case "":
		return ""
	default: // end_turn, stop_sequence, pause_turn
		return "stop"
	}
}

// anthropicUsage accumulates Anthropic's usage figures: message_start
// carries the input side, message_delta the cumulative totals.
type anthropicUsage struct {
	input, output, cacheRead, cacheWrite, cacheWrite1h, webSearches int64
}

func (u *anthropicUsage) read(v gjson.Result) {
	v.ForEach(func(k, n gjson.Result) bool {
		switch k.Str {
		case "cache_creation": // the split of cache_creation_input_tokens by ttl
			if h := n.Get("ephemeral_1h_input_tokens"); h.Type == gjson.Number {
				u.cacheWrite1h = max(h.Int(), 0)
			}
		case "server_tool_use":
			if w := n.Get("web_search_requests"); w.Type == gjson.Number {
				u.webSearches = max(w.Int(), 0)
			}
		}
		if n.Type != gjson.Number {
			return true
		}
		switch k.Str {
		case "input_tokens":
			u.input = max(n.Int(), 0)
		case "output_tokens":
			u.output = max(n.Int(), 0)
		case "cache_read_input_tokens":
			u.cacheRead = max(n.Int(), 0)
		case "cache_creation_input_tokens":
			u.cacheWrite = max(n.Int(), 0)
		}
		return true
	})
}

// usage is in OpenAI's terms: input includes cache reads and writes.
func (u *anthropicUsage) usage() usage.Usage {
	return usage.Usage{
		Input:       u.input + u.cacheRead + u.cacheWrite,
		Output:      u.output,
		CachedInput: u.cacheRead,
		CacheWrite:  u.cacheWrite,
		// Reported within cache_creation_input_tokens; never more than it.
		CacheWrite1h: min(u.cacheWrite1h, u.cacheWrite),
		WebSearches:  u.webSearches,
	}
}

// anthropicJSON buffers a message and emits one chat.completion.
type anthropicJSON struct {
	model   string
	created int64
	hide    bool // leave thinking out (Response.Reasoning false)
	buf     []byte
	over    bool
}

func (j *anthropicJSON) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if !j.over {
		if len(j.buf)+len(chunk) > usage.MaxJSONBody {
			j.over, j.buf = true, nil
		} else {
			j.buf = append(j.buf, chunk...)
		}
	}
	if !eos {
		return nil, false
	}
	if j.over {
		return apierr.New(http.StatusBadGateway, apierr.TypeUpstream, "upstream_response_too_large",
			"The backend's answer is larger than %d bytes.", usage.MaxJSONBody).JSON(), false
	}
	if !gjson.ValidBytes(j.buf) {
		return j.buf, false // cut short: passed on as is, so it counts as cut
	}
	return anthropicMessage(gjson.ParseBytes(j.buf), j.model, j.created, j.hide), false
}

// anthropicMessage renders an Anthropic message object as a chat.completion.
func anthropicMessage(m gjson.Result, model string, created int64, hide bool) []byte {
	if m.Get("type").Str == "error" {
		e := m.Get("error")
		return anthropicError(0, e.Get("type").Str, e.Get("message").Str).JSON()
	}
	c := Completion{ID: m.Get("id").Str, Model: model, Created: created, HideReasoning: hide}
	if c.Model == "" {
		c.Model = m.Get("model").Str
	}
	var text, thinking strings.Builder
	m.Get("content").ForEach(func(_, b gjson.Result) bool {
		switch b.Get("type").Str {
		case "text":
			start := runeCount(text.String())
			t := b.Get("text").Str
			text.WriteString(t)
			c.Annotations = anthropicCitations(c.Annotations, b.Get("citations"), start, start+runeCount(t))
		case "thinking":
			thinking.WriteString(b.Get("thinking").Str)
			if sig := b.Get("signature").Str; sig != "" {
				c.Thinking = append(c.Thinking, ThinkingBlock{Kind: "thinking", Text: b.Get("thinking").Str, Signature: sig})
			}
		case "redacted_thinking":
			c.Thinking = append(c.Thinking, ThinkingBlock{Kind: "redacted_thinking", Data: b.Get("data").Str})
		case "tool_use":
			args := b.Get("input").Raw
			if args == "" {
				args = "{}"
			}
			c.ToolCalls = append(c.ToolCalls, ToolCall{ID: b.Get("id").Str, Name: b.Get("name").Str, Arguments: args})
		}
		return true
	})
	c.Content, c.Reasoning = text.String(), thinking.String()
	c.FinishReason = anthropicStopReason(m.Get("stop_reason").Str)
	var u anthropicUsage
	u.read(m.Get("usage"))
	c.Usage = u.usage()
	return c.JSON()
}

// anthropicCitations appends the url citations of a text block spanning
// the characters [start, end) of the content: web search results
// (web_search_result_location); document citations have no URL to point at.
func anthropicCitations(dst []Annotation, cites gjson.Result, start, end int) []Annotation {
	cites.ForEach(func(_, c gjson.Result) bool {
		if c.Get("type").Str == "web_search_result_location" {
			dst = append(dst, Annotation{URL: c.Get("url").Str, Title: c.Get("title").Str, Start: start, End: end,
				CitedText: c.Get("cited_text").Str})
		}
		return true
	})
	return dst
}

// anthropicStream turns Anthropic's SSE events into OpenAI chunks, carrying
// partial events over between chunks.
type anthropicStream struct {
	sc      sse.Scanner
	st      Stream
	model   string
	created int64
	onEvent func(sse.Event)

	out      []byte // output of the current Chunk call
	flushing bool   // the stream ended; a pending event may be cut short
	started  bool   // the role chunk was sent
	ended    bool   // message_stop or an error event: nothing more is sent
	tools    []int  // content block index → OpenAI tool call index (-1: not a tool)
	numTools int
	stop     string
	u        anthropicUsage
	hide     bool // leave thinking out (Response.Reasoning false)

	runes    int          // characters of content sent so far
	textFrom int          // where the open text block started (characters)
	cites    []Annotation // the open text block's web citations
}

func (s *anthropicStream) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	s.out = reuse(s.out)
	s.sc.Feed(chunk, s.onEvent)
	if eos {
		s.flushing = true
		s.sc.Flush(s.onEvent)
	}
	return s.out, false
}

func (s *anthropicStream) start(id, model string) {
	if s.started {
		return
	}
	s.started = true
	s.st = Stream{ID: strings.Clone(id), Model: s.model, Created: s.created, HideReasoning: s.hide}
	if s.st.Model == "" {
		s.st.Model = strings.Clone(model)
	}
	s.out = s.st.Role(s.out)
}

func (s *anthropicStream) event(e sse.Event) {
	if s.ended || len(e.Data) == 0 || (s.flushing && !gjson.ValidBytes(e.Data)) {
		return
	}
	// The event's bytes live until the callback returns; everything read
	// from d is written out (copied) before then.
	d := gjson.Parse(unsafe.String(unsafe.SliceData(e.Data), len(e.Data)))
	typ := d.Get("type").Str
	if typ == "" {
		typ = string(e.Name)
	}
	switch typ {
	case "message_start":
		m := d.Get("message")
		s.start(m.Get("id").Str, m.Get("model").Str)
		s.u.read(m.Get("usage"))
	case "content_block_start":
		s.start("", "")
		s.blockStart(int(d.Get("index").Int()), d.Get("content_block"))
	case "content_block_delta":
		s.start("", "")
		s.blockDelta(int(d.Get("index").Int()), d.Get("delta"))
	case "content_block_stop":
		s.start("", "")
		s.blockStop()
	case "message_delta":
		s.start("", "")
		if r := d.Get("delta.stop_reason"); r.Type == gjson.String {
			s.stop = strings.Clone(r.Str)
		}
		s.u.read(d.Get("usage"))
	case "message_stop":
		s.start("", "")
		s.ended = true
		s.out = s.st.Finish(s.out, anthropicStopReason(s.stop))
		s.out = s.st.Usage(s.out, s.u.usage())
		s.out = Done(s.out)
	case "error":
		s.ended = true
		err := d.Get("error")
		s.out = ErrorEvent(s.out, anthropicError(0, err.Get("type").Str, err.Get("message").Str))
	}
	// ping and unknown events carry nothing to send.
}

func (s *anthropicStream) toolIndex(block int) int {
	if block >= 0 && block < len(s.tools) {
		return s.tools[block]
	}
	return -1
}

func (s *anthropicStream) blockStart(index int, cb gjson.Result) {
	switch cb.Get("type").Str {
	case "text":
		s.textFrom, s.cites = s.runes, s.cites[:0]
		s.cite(cb.Get("citations"))
		if t := cb.Get("text").Str; t != "" {
			s.text(t)
		}
	case "thinking":
		if t := cb.Get("thinking").Str; t != "" {
			s.out = s.st.Content(s.out, "reasoning_content", t)
		}
		if sig := cb.Get("signature").Str; sig != "" {
			s.out = s.st.Thinking(s.out, ThinkingBlock{Kind: "thinking", Signature: sig})
		}
	case "redacted_thinking":
		s.out = s.st.Thinking(s.out, ThinkingBlock{Kind: "redacted_thinking", Data: cb.Get("data").Str})
	case "tool_use":
		if index < 0 || index > 1<<16 {
			return
		}
		for len(s.tools) <= index {
			s.tools = append(s.tools, -1)
		}
		if s.tools[index] >= 0 {
			return // a second start for one block
		}
		n := s.numTools
		s.tools[index] = n
		s.numTools++
		s.out = s.st.ToolCall(s.out, n, cb.Get("id").Str, cb.Get("name").Str, "")
		if in := cb.Get("input"); in.IsObject() && in.Raw != "{}" && len(in.Map()) > 0 {
			s.out = s.st.ToolCall(s.out, n, "", "", in.Raw)
		}
	}
}

func (s *anthropicStream) blockDelta(index int, d gjson.Result) {
	switch d.Get("type").Str {
	case "text_delta":
		if t := d.Get("text").Str; t != "" {
			s.text(t)
		}
	case "thinking_delta":
		if t := d.Get("thinking").Str; t != "" {
			s.out = s.st.Content(s.out, "reasoning_content", t)
		}
	case "signature_delta":
		if sig := d.Get("signature").Str; sig != "" {
			s.out = s.st.Thinking(s.out, ThinkingBlock{Kind: "thinking", Signature: sig})
		}
	case "citations_delta":
		s.cite(gjson.Parse("[" + d.Get("citation").Raw + "]"))
	case "input_json_delta":
		n := s.toolIndex(index)
		if t := d.Get("partial_json").Str; t != "" && n >= 0 {
			s.out = s.st.ToolCall(s.out, n, "", "", t)
		}
	}
}

// text sends a piece of the answer, counting its characters for citations.
func (s *anthropicStream) text(t string) {
	s.runes += runeCount(t)
	s.out = s.st.Content(s.out, "content", t)
}

// cite keeps the open text block's web citations (copied: the event's
// bytes do not outlive the callback).
func (s *anthropicStream) cite(cites gjson.Result) {
	n := len(s.cites)
	s.cites = anthropicCitations(s.cites, cites, 0, 0)
	for i := n; i < len(s.cites); i++ {
		s.cites[i] = Annotation{URL: strings.Clone(s.cites[i].URL), Title: strings.Clone(s.cites[i].Title)}
	}
}

// blockStop sends the web citations of the text block that ends, now that
// its span of the content is known.
func (s *anthropicStream) blockStop() {
	if len(s.cites) == 0 {
		return
	}
	for i := range s.cites {
		s.cites[i].Start, s.cites[i].End = s.textFrom, s.runes
	}
	s.out = s.st.Annotations(s.out, s.cites)
	s.cites = s.cites[:0]
}
