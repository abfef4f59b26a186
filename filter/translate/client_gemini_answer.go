package translate

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/usage"
)

// GeminiFraming is how a Gemini client takes its answer.
type GeminiFraming int

const (
	// GeminiJSON is generateContent's one GenerateContentResponse.
	GeminiJSON GeminiFraming = iota
	// GeminiSSE is streamGenerateContent?alt=sse: one response per event.
	GeminiSSE
	// GeminiArray is streamGenerateContent without alt=sse: the responses
	// as the elements of one JSON array, streamed.
	GeminiArray
)

// GeminiResponse converts OpenAI output (already normalized by the
// backend's translator) into Gemini's for one attempt. status is the
// answer's HTTP status, model the model name to report (modelVersion).
//   - 2xx JSON: chat.completion → {"candidates":[{"content":{"role":"model",
//     "parts":[thought, text, functionCall{id,name,args}…]},"finishReason",
//     "index":0}],"usageMetadata":{…},"modelVersion","responseId"}.
//   - 2xx stream: each chunk's text (and reasoning_content, as a thought
//     part) as its own response; tool calls, whose arguments OpenAI streams
//     in pieces, whole in the last response, with the finish reason and
//     usageMetadata. An OpenAI error event becomes {"error":{…}} and ends it.
//   - non-2xx: OpenAI error JSON → {"error":{"code","message","status"}}.
func GeminiResponse(framing GeminiFraming, status int, model string) Body {
	if status < 200 || status >= 300 {
		return &errorBody{status: status, norm: func(status int, body []byte) []byte {
			b := gcErrorJSON(status, body)
			if framing == GeminiArray {
				b = append(append([]byte{'['}, b...), ']')
			}
			return b
		}}
	}
	if framing == GeminiJSON {
		return &gcJSON{model: model}
	}
	s := &gcStream{model: model, array: framing == GeminiArray}
	s.onEvent = s.event
	return s
}

// GeminiError renders an *apierr.Error as Google's error JSON, for llmproc's
// own answers to Gemini clients.
func GeminiError(e *apierr.Error) []byte {
	return gcAppendError(make([]byte, 0, 64+len(e.Message)), e.Status, e.Message)
}

// googleStatus is the canonical status Google's APIs pair with an HTTP status.
func googleStatus(code int) string {
	switch code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if code >= 400 && code < 500 {
		return "FAILED_PRECONDITION"
	}
	return "INTERNAL"
}

func gcAppendError(b []byte, code int, msg string) []byte {
	b = append(b, `{"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"status":"`...)
	b = append(b, googleStatus(code)...)
	return append(b, `"}}`...)
}

// gcErrorJSON turns a buffered OpenAI error answer into Google's
// (errorBody's norm).
func gcErrorJSON(status int, body []byte) []byte {
	oe := gjson.GetBytes(NormalizeError(status, body), "error")
	return gcAppendError(nil, status, oe.Get("message").String())
}

// gcStreamErrorCode is the HTTP code an error inside a 200 stream stands
// for, from its OpenAI type and code.
func gcStreamErrorCode(e gjson.Result) int {
	typ, code := e.Get("type").Str, e.Get("code").String()
	switch {
	case typ == apierr.TypeRateLimit || strings.Contains(code, "rate_limit"):
		return http.StatusTooManyRequests
	case typ == apierr.TypeAuthentication:
		return http.StatusUnauthorized
	case typ == apierr.TypeInvalidRequest:
		return http.StatusBadRequest
	case typ == apierr.TypeUpstream || strings.Contains(code, "overload"):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// gcFinish maps an OpenAI finish_reason to Gemini's finishReason.
func gcFinish(f string) string {
	switch f {
	case "length":
		return "MAX_TOKENS"
	case "content_filter":
		return "SAFETY"
	case "":
		return "STOP"
	}
	return "STOP" // stop, tool_calls: Gemini says STOP for function calls too
}

// gcAppendUsage writes usageMetadata: the prompt (cached part included),
// the candidates without the thoughts, the thoughts, and the total.
func gcAppendUsage(b []byte, u usage.Usage) []byte {
	b = append(b, `"usageMetadata":{"promptTokenCount":`...)
	b = strconv.AppendInt(b, u.Input, 10)
	b = append(b, `,"candidatesTokenCount":`...)
	b = strconv.AppendInt(b, max(u.Output-u.Reasoning, 0), 10)
	b = append(b, `,"totalTokenCount":`...)
	b = strconv.AppendInt(b, usage.AddSat(u.Input, u.Output), 10)
	if u.CachedInput > 0 {
		b = append(b, `,"cachedContentTokenCount":`...)
		b = strconv.AppendInt(b, u.CachedInput, 10)
	}
	if u.Reasoning > 0 {
		b = append(b, `,"thoughtsTokenCount":`...)
		b = strconv.AppendInt(b, u.Reasoning, 10)
	}
	return append(b, '}')
}

// gcResponseID is the responseId for an OpenAI completion id.
func gcResponseID(id string) string { return strings.TrimPrefix(id, "chatcmpl-") }

// gcCall is a tool call whose arguments are complete.
type gcCall struct{ id, name, args string }

// gcParts writes parts: a thought, the text, then the calls.
func gcParts(b []byte, thought, text string, calls []gcCall) []byte {
	b = append(b, `"content":{"role":"model","parts":[`...)
	n := 0
	sep := func() {
		if n > 0 {
			b = append(b, ',')
		}
		n++
	}
	if thought != "" {
		sep()
		b = append(b, `{"text":`...)
		b = appendJSONString(b, thought)
		b = append(b, `,"thought":true}`...)
	}
	if text != "" || (thought == "" && len(calls) == 0) {
		sep()
		b = append(b, `{"text":`...)
		b = appendJSONString(b, text)
		b = append(b, '}')
	}
	for _, c := range calls {
		sep()
		b = append(b, `{"functionCall":{"id":`...)
		b = appendJSONString(b, c.id)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, c.name)
		b = append(b, `,"args":`...)
		b = caToolInput(b, c.args)
		b = append(b, "}}"...)
	}
	return append(b, "]}"...)
}

// gcResponse writes one GenerateContentResponse. finish "" leaves the
// candidate unfinished; u nil leaves usageMetadata out; content false
// leaves the content out (a last stream response with nothing more).
func gcResponse(b []byte, id, model string, content bool, thought, text string, calls []gcCall, finish string, u *usage.Usage) []byte {
	b = append(b, `{"candidates":[{`...)
	if content {
		b = gcParts(b, thought, text, calls)
		if finish != "" {
			b = append(b, ',')
		}
	}
	if finish != "" {
		b = append(b, `"finishReason":"`...)
		b = append(b, finish...)
		b = append(b, '"')
	}
	if content || finish != "" {
		b = append(b, ',')
	}
	b = append(b, `"index":0}]`...)
	if u != nil {
		b = append(b, ',')
		b = gcAppendUsage(b, *u)
	}
	b = append(b, `,"modelVersion":`...)
	b = appendJSONString(b, model)
	b = append(b, `,"responseId":`...)
	b = appendJSONString(b, gcResponseID(id))
	return append(b, '}')
}

// gcJSON buffers a chat.completion and emits a GenerateContentResponse.
type gcJSON struct {
	model  string
	answer hubAnswer
}

func (a *gcJSON) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	body, done, ok := a.answer.add(chunk, eos)
	if !done {
		return nil, false
	}
	if !ok {
		return gcAppendError(nil, http.StatusBadGateway, "the upstream answer could not be read"), false
	}
	r := gjson.ParseBytes(body)
	if e := r.Get("error"); e.Exists() {
		return gcAppendError(nil, gcStreamErrorCode(e), e.Get("message").String()), false
	}
	model := a.model
	if model == "" {
		model = r.Get("model").String()
	}
	msg := r.Get("choices.0.message")
	text := caContentText(msg.Get("content")) + msg.Get("refusal").String()
	var calls []gcCall
	msg.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
		calls = append(calls, gcCall{c.Get("id").String(), c.Get("function.name").String(), c.Get("function.arguments").String()})
		return true
	})
	u, _ := usage.FromOpenAI(r.Get("usage"))
	finish := gcFinish(r.Get("choices.0.finish_reason").String())
	return gcResponse(nil, r.Get("id").String(), model, true, msg.Get("reasoning_content").String(), text, calls, finish, &u), false
}

// gcStream turns OpenAI chat.completion.chunk events into Gemini stream
// responses, as SSE events or the elements of a JSON array.
type gcStream struct {
	model   string
	array   bool
	sc      sse.Scanner
	onEvent func(sse.Event)
	out     []byte
	n       int    // responses written
	ended   bool   // [DONE] or an error seen
	id      string // the completion id
	calls   []gcCall
	finish  string
	usage   *usage.Usage
}

func (s *gcStream) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	s.out = reuse(s.out)
	s.sc.Feed(chunk, s.onEvent)
	if eos {
		s.sc.Flush(s.onEvent)
		if s.array {
			if s.n == 0 {
				s.out = append(s.out, '[')
			}
			s.out = append(s.out, ']')
		}
	}
	return s.out, false
}

// emit frames one response.
func (s *gcStream) emit(resp []byte) {
	switch {
	case !s.array:
		s.out = append(s.out, "data: "...)
		s.out = append(s.out, resp...)
		s.out = append(s.out, "\r\n\r\n"...)
	case s.n == 0:
		s.out = append(append(s.out, '['), resp...)
	default:
		s.out = append(append(s.out, ",\r\n"...), resp...)
	}
	s.n++
}

func (s *gcStream) event(ev sse.Event) {
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
		s.ended = true
		s.emit(gcAppendError(nil, gcStreamErrorCode(e), e.Get("message").String()))
		return
	}
	if s.id == "" {
		s.id = r.Get("id").String()
	}
	if s.model == "" {
		s.model = r.Get("model").String()
	}
	if u := r.Get("usage"); u.IsObject() {
		if v, ok := usage.FromOpenAI(u); ok {
			s.usage = &v
		}
	}
	c := r.Get("choices.0")
	if !c.Exists() {
		return
	}
	d := c.Get("delta")
	var text, thought string
	d.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "content", "refusal":
			text += v.Str
		case "reasoning_content":
			thought += v.Str
		case "tool_calls":
			eachToolCallDelta(v, func(idx int, tc gjson.Result) {
				for len(s.calls) <= idx && idx < 1024 {
					s.calls = append(s.calls, gcCall{})
				}
				if idx < len(s.calls) {
					call := &s.calls[idx]
					if id := tc.Get("id").Str; id != "" {
						call.id = id
					}
					if name := tc.Get("function.name").Str; name != "" {
						call.name = name
					}
					call.args += tc.Get("function.arguments").Str
				}
			})
		}
		return true
	})
	if text != "" || thought != "" {
		s.emit(gcResponse(nil, s.id, s.model, true, thought, text, nil, "", nil))
	}
	if f := c.Get("finish_reason"); f.Type == gjson.String && f.Str != "" {
		s.finish = f.Str
	}
}

// done writes the last response: the tool calls, the finish reason and the
// usage.
func (s *gcStream) done() {
	s.ended = true
	for i := range s.calls {
		if s.calls[i].id == "" {
			s.calls[i].id = "call_" + strconv.Itoa(i)
		}
	}
	u := s.usage
	if u == nil {
		u = &usage.Usage{}
	}
	s.emit(gcResponse(nil, s.id, s.model, len(s.calls) > 0, "", "", s.calls, gcFinish(s.finish), u))
}

// GeminiArrayStream reframes a Gemini SSE stream (a native backend's
// answer to streamGenerateContent?alt=sse) as the JSON array a client that
// asked without alt=sse reads.
func GeminiArrayStream() Body { return &gcArray{} }

type gcArray struct {
	sc  sse.Scanner
	out []byte
	n   int
}

func (a *gcArray) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	a.out = reuse(a.out)
	a.sc.Feed(chunk, a.event)
	if eos {
		a.sc.Flush(a.event)
		if a.n == 0 {
			a.out = append(a.out, '[')
		}
		a.out = append(a.out, ']')
	}
	return a.out, false
}

func (a *gcArray) event(ev sse.Event) {
	data := strings.TrimSpace(string(ev.Data))
	if data == "" || !gjson.Valid(data) {
		return
	}
	if a.n == 0 {
		a.out = append(a.out, '[')
	} else {
		a.out = append(a.out, ",\r\n"...)
	}
	a.n++
	a.out = append(a.out, data...)
}

// GeminiErrorEvent is e as the error event of a Gemini SSE stream.
func GeminiErrorEvent(e *apierr.Error) []byte {
	return append(append([]byte("data: "), GeminiError(e)...), "\r\n\r\n"...)
}
