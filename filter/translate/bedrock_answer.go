package translate

// The bedrock backend's answer side: Converse answers, ConverseStream event
// streams and AWS errors turned into the chat-completions hub form. The
// request side (Converse bodies, SigV4 signing, credentials) is in bedrock.go.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/usage"
)

func (b bedrock) Response(r *Response) Answer {
	if r.Status < 200 || r.Status >= 300 {
		// x-amzn-errortype names the exception when the body does not, and
		// decides the status clients and Envoy's retry policy see
		// (ModelNotReadyException 429 → 503, ServiceQuotaExceeded 400 → 429).
		var typ string
		if r.Header != nil {
			typ = r.Header("x-amzn-errortype")
		}
		status := bedrockHTTPStatus(r.Status)
		if typ != "" {
			status = bedrockError(r.Status, typ, "").Status
		}
		norm := func(status int, body []byte) []byte { return bedrockErrorJSON(status, typ, body) }
		a := Answer{Body: &errorBody{status: status, norm: norm}, ContentType: "application/json"}
		if status != r.Status {
			a.Status = status
		}
		return a
	}
	out := Stream{ID: b.newID(), Model: r.Model, Created: b.now().Unix(), HideReasoning: !r.Reasoning}
	if r.Stream {
		return Answer{Body: &bedrockStream{out: out}, ContentType: "text/event-stream"}
	}
	return Answer{Body: &bedrockJSON{out: out}, ContentType: "application/json"}
}

// bedrockHTTPStatus maps the statuses Bedrock uses that mean something else
// to OpenAI clients and Envoy's retry policy: ModelTimeoutException's 408
// is a gateway timeout, ModelErrorException's 424 a bad gateway.
func bedrockHTTPStatus(status int) int {
	switch status {
	case http.StatusRequestTimeout:
		return http.StatusGatewayTimeout
	case http.StatusFailedDependency:
		return http.StatusBadGateway
	}
	return status
}

// bedrockError maps a Bedrock error (its type, from the body's __type or an
// exception frame, and message) to an OpenAI error. status is the HTTP
// status to fall back on when the type is unknown.
func bedrockError(status int, typ, message string) *apierr.Error {
	if i := strings.LastIndexByte(typ, '#'); i >= 0 {
		typ = typ[i+1:]
	}
	if i := strings.IndexByte(typ, ':'); i >= 0 {
		typ = typ[:i]
	}
	code := "upstream_error"
	switch strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(typ, "Exception"), "exception")) {
	case "throttling", "servicequotaexceeded":
		status, code = http.StatusTooManyRequests, "rate_limit_exceeded"
	case "serviceunavailable":
		status, code = http.StatusServiceUnavailable, "service_unavailable"
	case "modelnotready":
		status, code = http.StatusServiceUnavailable, "model_not_ready"
	case "validation":
		status, code = http.StatusBadRequest, "invalid_request"
	case "accessdenied":
		status, code = http.StatusForbidden, "access_denied"
	case "unrecognizedclient", "invalidsignature", "expiredtoken", "incompletesignature", "missingauthenticationtoken":
		status, code = http.StatusForbidden, "invalid_credentials"
	case "resourcenotfound":
		status, code = http.StatusNotFound, "model_not_found"
	case "modeltimeout":
		status, code = http.StatusGatewayTimeout, "timeout"
	case "modelstreamerror", "modelerror":
		status, code = http.StatusBadGateway, "upstream_error"
	case "internalserver":
		status = http.StatusInternalServerError
	default:
		status = bedrockHTTPStatus(status)
	}
	if status == http.StatusBadRequest && brContextTooLong(message) {
		code = "context_length_exceeded"
	}
	return ProviderError(status, code, message)
}

// brContextTooLong recognises Bedrock's messages for prompts over the
// model's context window (worded by each model family).
func brContextTooLong(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"too long", "context length", "context window", "too many input tokens", "input token count", "maximum context", "max_tokens_to_sample", "exceeds the maximum number of tokens"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// bedrockErrorJSON turns a buffered non-2xx Bedrock answer into OpenAI error
// JSON (errorBody's norm); headerType is x-amzn-errortype, if the answer had it.
func bedrockErrorJSON(status int, headerType string, buf []byte) []byte {
	var typ, msg string
	if gjson.ValidBytes(buf) {
		body := gjson.ParseBytes(buf)
		typ = body.Get("__type").Str
		for _, k := range []string{"message", "Message", "error.message"} {
			if v := body.Get(k); v.Type == gjson.String && v.Str != "" {
				msg = v.Str
				break
			}
		}
	} else if s := strings.TrimSpace(string(buf)); len(s) <= 2048 {
		msg = s
	}
	if typ == "" {
		typ = headerType
	}
	if typ == "" {
		typ = brStatusErrorType(status)
	}
	err := bedrockError(status, typ, msg)
	err.Status = status // the status line is already on its way
	err.Type = apierr.TypeForStatus(status)
	return err.JSON()
}

// brStatusErrorType names the Bedrock error a status stands for when the body
// nor the x-amzn-errortype header says.
func brStatusErrorType(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "ThrottlingException"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailableException"
	case http.StatusBadRequest:
		return "ValidationException"
	case http.StatusForbidden:
		return "AccessDeniedException"
	case http.StatusNotFound:
		return "ResourceNotFoundException"
	case http.StatusGatewayTimeout:
		return "ModelTimeoutException"
	}
	return ""
}

// brFinishReason maps a Converse stopReason to OpenAI's finish_reason.
func brFinishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "guardrail_intervened", "content_filtered":
		return "content_filter"
	}
	return "stop"
}

// bedrockUsage reads a Converse TokenUsage. inputTokens excludes the tokens
// read from and written to the prompt cache, which Bedrock reports apart;
// llmproc's Input counts all three.
func bedrockUsage(u gjson.Result) usage.Usage {
	in, out := u.Get("inputTokens").Int(), u.Get("outputTokens").Int()
	cr, cw := u.Get("cacheReadInputTokens").Int(), u.Get("cacheWriteInputTokens").Int()
	return usage.Usage{Input: in + cr + cw, Output: out, CachedInput: cr, CacheWrite: cw}
}

// bedrockJSON buffers a Converse answer and emits one chat.completion.
type bedrockJSON struct {
	out  Stream
	buf  []byte
	over bool
}

func (j *bedrockJSON) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if !j.over {
		if len(j.buf)+len(chunk) > maxBedrockJSON {
			j.over, j.buf = true, nil
		} else {
			j.buf = append(j.buf, chunk...)
		}
	}
	if !eos {
		return nil, false
	}
	if j.over || !gjson.ValidBytes(j.buf) {
		return ProviderError(http.StatusBadGateway, "upstream_error", "Bedrock returned an answer llmproc could not read.").JSON(), false
	}
	body := gjson.ParseBytes(j.buf)
	c := Completion{ID: j.out.ID, Model: j.out.Model, Created: j.out.Created, HideReasoning: j.out.HideReasoning,
		FinishReason: brFinishReason(body.Get("stopReason").Str), Usage: bedrockUsage(body.Get("usage"))}
	var text, reasoning strings.Builder
	body.Get("output.message.content").ForEach(func(_, blk gjson.Result) bool {
		if t := blk.Get("text"); t.Type == gjson.String {
			text.WriteString(t.Str)
		}
		if r := blk.Get("reasoningContent.reasoningText.text"); r.Type == gjson.String {
			reasoning.WriteString(r.Str)
			if sig := blk.Get("reasoningContent.reasoningText.signature").Str; sig != "" {
				c.Thinking = append(c.Thinking, ThinkingBlock{Kind: "thinking", Text: r.Str, Signature: sig})
			}
		}
		if d := blk.Get("reasoningContent.redactedContent"); d.Type == gjson.String {
			c.Thinking = append(c.Thinking, ThinkingBlock{Kind: "redacted_thinking", Data: d.Str})
		}
		if tu := blk.Get("toolUse"); tu.IsObject() {
			args := "{}"
			if in := tu.Get("input"); in.Exists() {
				args = brCompactJSON(in.Raw)
			}
			c.ToolCalls = append(c.ToolCalls, ToolCall{ID: tu.Get("toolUseId").Str, Name: tu.Get("name").Str, Arguments: args})
		}
		return true
	})
	c.Content, c.Reasoning = text.String(), reasoning.String()
	return c.JSON(), false
}

// brCompactJSON drops insignificant whitespace from valid JSON.
func brCompactJSON(raw string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(raw)); err != nil {
		return raw
	}
	return b.String()
}

// bedrockStream turns ConverseStream event-stream frames into OpenAI SSE,
// carrying a partial frame over to the next chunk.
type bedrockStream struct {
	out     Stream
	fr      frames
	buf     []byte // the output, reused from chunk to chunk (Body)
	role    bool   // the role chunk is out
	stopped bool   // messageStop seen
	metered bool   // metadata (usage) seen
	ended   bool   // [DONE] or an error event is out; the rest is ignored
	use     usage.Usage
	tools   map[int64]int // contentBlockIndex → tool_calls index
}

func (s *bedrockStream) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if s.ended {
		return nil, false
	}
	out := reuse(s.buf)
	err := s.fr.feed(chunk, func(m esMessage) bool {
		out = s.frame(out, m)
		return !s.ended
	})
	if err != nil {
		out = s.fail(out, err)
	}
	s.buf = out
	return out, false
}

// fail ends the stream on a frame that cannot be decoded.
func (s *bedrockStream) fail(out []byte, err error) []byte {
	s.ended = true
	return ErrorEvent(out, ProviderError(http.StatusBadGateway, "upstream_error",
		"The Bedrock event stream could not be decoded: "+err.Error()))
}

// frameKind sorts one event-stream message of a Bedrock stream: event
// for an event; otherwise the provider's error for an exception or error
// message, or neither for a message to ignore.
func frameKind(m esMessage) (event bool, err *apierr.Error) {
	switch string(m.header(":message-type")) {
	case "event":
		return true, nil
	case "exception":
		msg := gjson.GetBytes(m.Payload, "message").Str
		if msg == "" {
			msg = gjson.GetBytes(m.Payload, "Message").Str
		}
		return false, bedrockError(http.StatusBadGateway, brHeader(m, ":exception-type"), msg)
	case "error":
		return false, bedrockError(http.StatusBadGateway, brHeader(m, ":error-code"), brHeader(m, ":error-message"))
	}
	return false, nil
}

// brHeader is a header's value, copied.
func brHeader(m esMessage, name string) string { return string(m.header(name)) }

func (s *bedrockStream) frame(out []byte, m esMessage) []byte {
	event, perr := frameKind(m)
	if perr != nil {
		s.ended = true
		return ErrorEvent(out, perr)
	}
	if !event {
		return out
	}
	// The payload points into the chunk; nothing read from it outlives
	// this call.
	p := gjson.Parse(unsafe.String(unsafe.SliceData(m.Payload), len(m.Payload)))
	switch string(m.header(":event-type")) {
	case "messageStart":
		out = s.start(out)
	case "contentBlockStart":
		out = s.start(out)
		if tu := p.Get("start.toolUse"); tu.IsObject() {
			idx := s.toolIndex(p.Get("contentBlockIndex").Int())
			out = s.out.ToolCall(out, idx, tu.Get("toolUseId").Str, tu.Get("name").Str, "")
		}
	case "contentBlockDelta":
		out = s.start(out)
		d := p.Get("delta")
		if t := d.Get("text"); t.Type == gjson.String && t.Str != "" {
			out = s.out.Content(out, "content", t.Str)
		}
		if r := d.Get("reasoningContent.text"); r.Type == gjson.String && r.Str != "" {
			out = s.out.Content(out, "reasoning_content", r.Str)
		}
		if sig := d.Get("reasoningContent.signature"); sig.Type == gjson.String && sig.Str != "" {
			out = s.out.Thinking(out, ThinkingBlock{Kind: "thinking", Signature: sig.Str})
		}
		if rd := d.Get("reasoningContent.redactedContent"); rd.Type == gjson.String && rd.Str != "" {
			out = s.out.Thinking(out, ThinkingBlock{Kind: "redacted_thinking", Data: rd.Str})
		}
		if in := d.Get("toolUse.input"); in.Type == gjson.String {
			idx := s.toolIndex(p.Get("contentBlockIndex").Int())
			out = s.out.ToolCall(out, idx, "", "", in.Str)
		}
	case "messageStop":
		out = s.start(out)
		s.stopped = true
		out = s.out.Finish(out, brFinishReason(p.Get("stopReason").Str))
		out = s.end(out)
	case "metadata":
		s.metered = true
		s.use = bedrockUsage(p.Get("usage"))
		out = s.end(out)
	}
	return out
}

// start sends the role chunk once, before anything else.
func (s *bedrockStream) start(out []byte) []byte {
	if s.role {
		return out
	}
	s.role = true
	return s.out.Role(out)
}

// end closes the stream cleanly once both messageStop and metadata are in.
func (s *bedrockStream) end(out []byte) []byte {
	if !s.stopped || !s.metered {
		return out
	}
	s.ended = true
	out = s.out.Usage(out, s.use)
	return Done(out)
}

// toolIndex returns the tool_calls index of a content block, numbering tool
// blocks 0, 1, … in the order they start.
func (s *bedrockStream) toolIndex(block int64) int {
	if i, ok := s.tools[block]; ok {
		return i
	}
	if s.tools == nil {
		s.tools = map[int64]int{}
	}
	i := len(s.tools)
	s.tools[block] = i
	return i
}
