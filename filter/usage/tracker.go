package usage

import (
	"bytes"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/sse"
)

// MaxJSONBody is the largest non-streamed response body a Tracker keeps; past
// it the usage of the response is unknown.
const MaxJSONBody = 64 << 20

// Result is what a Tracker saw in a whole response.
type Result struct {
	// Usage is the usage the provider reported; Known says whether it did.
	// For SSE it is the last event carrying a non-null usage.
	Usage Usage
	Known bool
	// Model is the response's "model" (the last non-empty one for SSE).
	Model string
	// Done is, for SSE, whether "data: [DONE]" was seen; for JSON, whether the
	// body is one complete, valid JSON object.
	Done bool
	// ErrorEvent is, for SSE, whether an event was named "error" or carried a
	// top-level "error" object; for JSON, whether the body has a top-level
	// "error" object.
	ErrorEvent bool
	// FinishReason is the last non-empty finish_reason seen.
	FinishReason string
	// Incomplete is, for SSE, whether the stream ended mid-event or without
	// [DONE]; for JSON, whether the body is not a complete JSON value (a body
	// over MaxJSONBody is not inspected and is not reported Incomplete).
	Incomplete bool
	// OutputChars is the length in bytes of the generated text seen, as
	// written in the JSON (escapes counted as sent): content, refusal and
	// reasoning_content strings plus tool-call names and arguments, from
	// SSE deltas or, for JSON, complete messages. It feeds the estimate made
	// when Known is false; a JSON body that is not complete reports 0.
	OutputChars int
}

// Tracker reads a normalized OpenAI chat-completions response chunk by chunk
// and reports usage at the end. One Tracker serves one response and is not
// safe for concurrent use.
type Tracker struct {
	stream    bool
	sc        sse.Scanner
	body      []byte // JSON mode: the body so far
	over      bool   // JSON mode: the body passed MaxJSONBody
	started   bool   // first output seen
	firstNow  bool   // first output seen during the current Write
	flushing  bool   // Finish is dispatching what the stream left pending
	responses bool   // a Responses API answer (NewResponsesTracker)
	onEventFn func(sse.Event)
	res       Result
}

// NewTracker returns a Tracker for an SSE stream (stream=true) or a JSON body.
func NewTracker(stream bool) *Tracker {
	t := &Tracker{stream: stream}
	t.onEventFn = t.onEvent
	return t
}

// Write consumes the next chunk of the response. It returns true exactly once:
// for the chunk in which the first output appeared (SSE: the first event whose
// choices[*].delta has non-empty content, refusal, reasoning_content or
// tool_calls; JSON: the first non-empty chunk).
func (t *Tracker) Write(chunk []byte) (firstToken bool) {
	if !t.stream {
		if len(chunk) == 0 {
			return false
		}
		if !t.over {
			if len(t.body)+len(chunk) > MaxJSONBody {
				t.over = true
				t.body = nil
			} else {
				t.body = append(t.body, chunk...)
			}
		}
		if !t.started {
			t.started = true
			return true
		}
		return false
	}
	t.firstNow = false
	t.sc.Feed(chunk, t.onEventFn)
	return t.firstNow
}

// Drop stops keeping a JSON body: the answer is too large to hold, so its
// usage is unknown (as past MaxJSONBody). SSE trackers keep no body.
func (t *Tracker) Drop() {
	t.over, t.body = true, nil
}

// Finish ends the response and returns what was seen. Call it once, after the
// last chunk.
func (t *Tracker) Finish() Result {
	if t.stream {
		t.flushing = true
		if t.sc.Flush(t.onEventFn) || !t.res.Done {
			t.res.Incomplete = true
		}
		return t.res
	}
	if t.over {
		return t.res
	}
	body := bytes.TrimSpace(t.body)
	if len(body) == 0 || !gjson.ValidBytes(body) {
		t.res.Incomplete = true
		return t.res
	}
	if body[0] == '{' {
		t.res.Done = true
		if t.responses {
			t.readResponseJSON(body)
		} else {
			t.readObject(body, false)
		}
	}
	return t.res
}

var doneData = []byte("[DONE]")

func (t *Tracker) onEvent(e sse.Event) {
	if string(e.Name) == "error" {
		t.res.ErrorEvent = true
	}
	data := bytes.TrimSpace(e.Data)
	if bytes.Equal(data, doneData) {
		t.res.Done = true
		return
	}
	if len(data) == 0 || data[0] != '{' {
		return
	}
	if t.flushing && !gjson.ValidBytes(data) {
		return // the stream was cut inside this event
	}
	if t.readObject(data, true) && !t.started {
		t.started = true
		t.firstNow = true
	}
}

// readObject reads one chat.completion(.chunk) object and reports whether it
// carries output. The gjson results point into data and are used (or copied)
// before data goes away.
func (t *Tracker) readObject(data []byte, stream bool) (output bool) {
	json := unsafe.String(unsafe.SliceData(data), len(data))
	// Targeted lookups, each guarded by a byte search: most stream events
	// carry a small delta and nothing else of interest, so this skips parsing
	// most of them.
	if t.res.Model == "" {
		if v := gjson.Get(json, "model"); v.Type == gjson.String && v.Str != "" {
			t.res.Model = strings.Clone(v.Str)
		}
	}
	var k eventKeys
	if stream {
		k = scanKeys(data) // one pass for every key below
	} else {
		k.usage, k.error = hasKey(data, usageKey, '{'), hasKey(data, errorKey, '{')
	}
	if k.usage {
		if u, ok := FromOpenAI(gjson.Get(json, "usage")); ok {
			t.res.Usage, t.res.Known = u, true
		}
	}
	if k.error && gjson.Get(json, "error").IsObject() {
		t.res.ErrorEvent = true
	}
	if stream && t.started && !k.finish {
		// The common case: a delta after the first output. Only its text is
		// counted, for the estimate used when the stream ends without usage.
		t.res.OutputChars += k.text
	} else {
		gjson.Get(json, "choices").ForEach(func(_, c gjson.Result) bool {
			if t.readChoice(c, stream) {
				output = true
			}
			return true
		})
	}
	return output
}

var (
	usageKey = []byte(`"usage"`)
	errorKey = []byte(`"error"`)
)

// hasKey reports whether data has a member named key whose value starts with
// first ('{' for an object, '"' for a string). It may match inside a string
// value; callers confirm with gjson, so a false positive only costs a parse.
func hasKey(data, key []byte, first byte) bool {
	for {
		i := bytes.Index(data, key)
		if i < 0 {
			return false
		}
		data = data[i+len(key):]
		j := 0
		for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r' || data[j] == ':') {
			j++
		}
		if j < len(data) && data[j] == first {
			return true
		}
	}
}

func (t *Tracker) readChoice(c gjson.Result, stream bool) (output bool) {
	if !c.IsObject() {
		return false
	}
	c.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "finish_reason":
			if v.Type == gjson.String && v.Str != "" && v.Str != t.res.FinishReason {
				t.res.FinishReason = strings.Clone(v.Str)
			}
		case "delta":
			if stream {
				t.res.OutputChars += textLen(v)
				if !t.started && hasOutput(v) {
					output = true
				}
			}
		case "message":
			if !stream {
				t.res.OutputChars += textLen(v)
			}
		}
		return true
	})
	return output
}

// hasOutput reports whether a delta carries generated output.
func hasOutput(delta gjson.Result) bool {
	out := false
	delta.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "content", "refusal", "reasoning_content":
			out = v.Type == gjson.String && v.Str != ""
		case "tool_calls":
			out = v.IsArray() && firstElem(v)
		}
		return !out
	})
	return out
}

// eventKeys is what scanKeys finds in a stream event: whether it has a
// member "usage" or "error" whose value is an object and a
// "finish_reason" whose value is a string (at any depth, confirmed with
// gjson where it matters), and textLen summed over its "delta" objects.
type eventKeys struct {
	usage, error, finish bool
	text                 int
}

// scanKeys finds eventKeys in one pass over data's strings: each string
// followed by a colon is a member name; the value after it is looked at
// only for the names above. This replaces a search of the whole event for
// each name. Text inside strings is skipped, escapes included, so a name
// inside a string value never counts.
func scanKeys(data []byte) (k eventKeys) {
	i := 0
	for {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			return k
		}
		start := i + q + 1
		end := stringEnd(data, start)
		if end < 0 {
			return k
		}
		j := skipSpace(data, end+1)
		if j >= len(data) || data[j] != ':' {
			i = end + 1 // a string value
			continue
		}
		j = skipSpace(data, j+1)
		if j >= len(data) {
			return k
		}
		switch v := data[j]; string(data[start:end]) {
		case "usage":
			k.usage = k.usage || v == '{'
		case "error":
			k.error = k.error || v == '{'
		case "finish_reason":
			k.finish = k.finish || v == '"'
		case "delta":
			if v == '{' {
				k.text += textLen(gjson.Parse(unsafe.String(&data[j], len(data)-j)))
			}
		}
		i = j // the value is scanned on: members inside it count too
	}
}

// stringEnd returns the index of the quote that ends the JSON string whose
// text starts at data[start], or -1 when it does not end in data.
func stringEnd(data []byte, start int) int {
	for i := start; ; {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			return -1
		}
		i += q
		n := 0 // backslashes before the quote: an odd count escapes it
		for b := i - 1; b >= start && data[b] == '\\'; b-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
		i++
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// textLen is the length of the generated text in a delta or message, as
// written: content, refusal and reasoning_content strings plus each tool
// call's function name and arguments.
func textLen(m gjson.Result) int {
	n := 0
	m.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "content", "refusal", "reasoning_content":
			n += rawStringLen(v)
		case "tool_calls":
			v.ForEach(func(_, c gjson.Result) bool {
				f := c.Get("function")
				n += rawStringLen(f.Get("name")) + rawStringLen(f.Get("arguments"))
				return true
			})
		}
		return true
	})
	return n
}

// rawStringLen is the length of a JSON string as written, without its
// quotes; 0 for anything else. Reading Raw avoids unescaping.
func rawStringLen(v gjson.Result) int {
	if v.Type != gjson.String || len(v.Raw) < 2 {
		return 0
	}
	return len(v.Raw) - 2
}

func firstElem(arr gjson.Result) bool {
	found := false
	arr.ForEach(func(_, _ gjson.Result) bool {
		found = true
		return false
	})
	return found
}
