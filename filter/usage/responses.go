package usage

import (
	"bytes"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/sse"
)

// NewResponsesTracker returns a Tracker for an answer of OpenAI's Responses
// API: a response object (JSON) or its stream of semantic events (SSE),
// which ends with response.completed, response.incomplete or
// response.failed and no [DONE]. Done means the stream reached
// response.completed or response.incomplete; ErrorEvent, an error event or
// response.failed. Usage is the response's input_tokens,
// input_tokens_details.cached_tokens, output_tokens and
// output_tokens_details.reasoning_tokens; OutputChars counts the text and
// function-call argument deltas (JSON: the output items' text and
// arguments).
func NewResponsesTracker(stream bool) *Tracker {
	t := &Tracker{stream: stream, responses: true}
	t.onEventFn = t.onResponsesEvent
	return t
}

// FromResponses reads a Responses API "usage" object. ok is false when r is
// absent, null or not an object.
func FromResponses(r gjson.Result) (Usage, bool) {
	if !r.IsObject() {
		return Usage{}, false
	}
	var u Usage
	r.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "input_tokens":
			u.Input = count(v)
		case "output_tokens":
			u.Output = count(v)
		case "input_tokens_details":
			u.CachedInput = count(v.Get("cached_tokens"))
		case "output_tokens_details":
			u.Reasoning = count(v.Get("reasoning_tokens"))
		}
		return true
	})
	return u, true
}

func (t *Tracker) onResponsesEvent(e sse.Event) {
	data := bytes.TrimSpace(e.Data)
	if string(e.Name) == "error" {
		t.res.ErrorEvent = true
	}
	if len(data) == 0 || data[0] != '{' || (t.flushing && !gjson.ValidBytes(data)) {
		return
	}
	json := unsafe.String(unsafe.SliceData(data), len(data))
	typ := gjson.Get(json, "type").Str
	switch typ {
	case "response.output_text.delta", "response.function_call_arguments.delta",
		"response.reasoning_summary_text.delta", "response.refusal.delta", "response.custom_tool_call_input.delta":
		t.res.OutputChars += rawStringLen(gjson.Get(json, "delta"))
		if !t.started {
			t.started, t.firstNow = true, true
		}
	case "response.completed", "response.incomplete", "response.failed":
		t.readResponse(gjson.Get(json, "response"))
		if typ == "response.failed" {
			t.res.ErrorEvent = true
		} else {
			t.res.Done = true
		}
	case "error":
		t.res.ErrorEvent = true
	}
}

// readResponse reads a response object's model, usage, error and status.
func (t *Tracker) readResponse(r gjson.Result) {
	if m := r.Get("model"); m.Type == gjson.String && m.Str != "" {
		t.res.Model = strings.Clone(m.Str)
	}
	if u, ok := FromResponses(r.Get("usage")); ok {
		t.res.Usage, t.res.Known = u, true
	}
	if r.Get("error").IsObject() {
		t.res.ErrorEvent = true
	}
	if s := r.Get("status"); s.Type == gjson.String && s.Str != "" {
		t.res.FinishReason = strings.Clone(s.Str)
	}
}

// readResponseJSON reads a whole (non-streamed) response object.
func (t *Tracker) readResponseJSON(body []byte) {
	r := gjson.ParseBytes(body)
	t.readResponse(r)
	r.Get("output").ForEach(func(_, item gjson.Result) bool {
		t.res.OutputChars += rawStringLen(item.Get("arguments"))
		item.Get("content").ForEach(func(_, c gjson.Result) bool {
			t.res.OutputChars += rawStringLen(c.Get("text"))
			return true
		})
		return true
	})
}
