package cache

import (
	"bytes"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/translate"
	"github.com/llmproc/llmproc/filter/usage"
)

// Reasons an Assembler refuses an answer; bounded, usable as metric labels
// (llmproc_cache_store_skipped_total{reason}).
const (
	SkipCut         = "cut"         // a stream without [DONE], or a body that is not complete JSON
	SkipError       = "error"       // an error event or a top-level "error" object
	SkipNoFinish    = "no_finish"   // no finish_reason
	SkipNoUsage     = "no_usage"    // no usage
	SkipTooLarge    = "too_large"   // the completion would exceed maxBytes
	SkipInvalid     = "invalid"     // a chunk or body that is not a chat completion
	SkipUnsupported = "unsupported" // something replay could not reproduce: n > 1, logprobs, audio, annotations, unknown output fields
)

// Assembler turns a normalized OpenAI answer (a chat.completion JSON body,
// or an SSE stream of chat.completion.chunk events fed chunk by chunk at any
// boundary) into the completion JSON to store. It keeps only what replay can
// reproduce exactly; an answer carrying anything else is refused rather than
// stored in a lossy form. One Assembler serves one response and is not safe
// for concurrent use.
type Assembler struct {
	stream   bool
	maxBytes int
	sc       sse.Scanner
	onEvent  func(sse.Event)
	body     []byte // JSON mode: the body so far
	size     int    // stream mode: bytes of text assembled so far
	done     bool   // stream mode: [DONE] seen
	flushing bool   // stream mode: Finish is dispatching what the stream left pending
	skip     string // the first reason to refuse, "" while storable
	c        translate.Completion
	reason   strings.Builder
	content  strings.Builder
	refusal  strings.Builder
	calls    []*callParts
	hasUsage bool
	verbatim bool // NewEmbeddingsAssembler: the JSON body is stored as it is
}

type callParts struct {
	id, name, args strings.Builder
}

// NewAssembler returns an Assembler for an SSE stream (stream=true) or a
// JSON body. maxBytes bounds the stored completion; 0 or less means no bound.
func NewAssembler(stream bool, maxBytes int) *Assembler {
	a := &Assembler{stream: stream, maxBytes: maxBytes}
	a.onEvent = a.event
	return a
}

// Write consumes the next chunk of the response.
func (a *Assembler) Write(chunk []byte) {
	if a.skip != "" || len(chunk) == 0 {
		return
	}
	if a.stream {
		a.sc.Feed(chunk, a.onEvent)
		return
	}
	// JSON whitespace may make a body larger than its completion; allow some
	// slack before giving up, and check the completion itself in Finish.
	if a.maxBytes > 0 && len(a.body)+len(chunk) > 2*a.maxBytes+4096 {
		a.refuse(SkipTooLarge)
		a.body = nil
		return
	}
	a.body = append(a.body, chunk...)
}

// Finish returns the chat.completion JSON (the message content, refusal,
// reasoning and tool calls assembled from deltas, finish_reason, usage) and
// ok=false when the answer must not be stored: a stream without [DONE], an
// error event, no finish_reason, no usage, over maxBytes, invalid JSON, or
// output replay could not reproduce. Reason then says why. Call it once,
// after the last chunk.
func (a *Assembler) Finish() (completion []byte, ok bool) {
	if a.verbatim {
		return a.finishVerbatim()
	}
	if a.stream {
		a.flushing = true
		if a.sc.Flush(a.onEvent) || !a.done {
			a.refuse(SkipCut)
		}
	} else if a.skip == "" {
		a.readBody()
	}
	if a.skip == "" && a.c.FinishReason == "" {
		a.refuse(SkipNoFinish)
	}
	if a.skip == "" && !a.hasUsage {
		a.refuse(SkipNoUsage)
	}
	if a.skip != "" {
		return nil, false
	}
	a.c.Content, a.c.Refusal, a.c.Reasoning = a.content.String(), a.refusal.String(), a.reason.String()
	for _, p := range a.calls {
		a.c.ToolCalls = append(a.c.ToolCalls, translate.ToolCall{ID: p.id.String(), Name: p.name.String(), Arguments: p.args.String()})
	}
	out := a.c.JSON()
	if a.maxBytes > 0 && len(out) > a.maxBytes {
		a.refuse(SkipTooLarge)
		return nil, false
	}
	return out, true
}

// Reason is why Finish refused the answer (one of the Skip* constants), or
// "" when it was storable.
func (a *Assembler) Reason() string { return a.skip }

func (a *Assembler) refuse(reason string) {
	if a.skip == "" {
		a.skip = reason
	}
}

var doneData = []byte("[DONE]")

func (a *Assembler) event(e sse.Event) {
	if a.skip != "" {
		return
	}
	if string(e.Name) == "error" {
		a.refuse(SkipError)
		return
	}
	data := bytes.TrimSpace(e.Data)
	if bytes.Equal(data, doneData) {
		a.done = true
		return
	}
	if a.done {
		return // nothing after [DONE] belongs to the answer
	}
	json := unsafe.String(unsafe.SliceData(data), len(data))
	if !gjson.Valid(json) {
		if a.flushing {
			a.refuse(SkipCut) // the stream was cut inside this event
		} else {
			a.refuse(SkipInvalid)
		}
		return
	}
	v := gjson.Parse(json)
	if !v.IsObject() {
		a.refuse(SkipInvalid)
		return
	}
	a.object(v, true)
}

// object reads a chat.completion or chat.completion.chunk object.
func (a *Assembler) object(v gjson.Result, stream bool) {
	nChoices := 0
	v.ForEach(func(k, f gjson.Result) bool {
		switch k.Str {
		case "error":
			if f.Type != gjson.Null {
				a.refuse(SkipError)
			}
		case "id":
			if a.c.ID == "" {
				a.c.ID = strings.Clone(f.Str)
			}
		case "model":
			if a.c.Model == "" {
				a.c.Model = strings.Clone(f.Str)
			}
		case "created":
			if a.c.Created == 0 && f.Type == gjson.Number {
				a.c.Created = f.Int()
			}
		case "usage":
			if u, ok := usage.FromOpenAI(f); ok {
				a.c.Usage, a.hasUsage = u, true
			} else if f.Type != gjson.Null {
				a.refuse(SkipInvalid)
			}
		case "choices":
			if !f.IsArray() {
				a.refuse(SkipInvalid)
				return false
			}
			f.ForEach(func(_, c gjson.Result) bool {
				nChoices++
				a.choice(c, stream)
				return a.skip == ""
			})
		}
		return a.skip == ""
	})
	if !stream && nChoices != 1 {
		a.refuse(SkipUnsupported)
	}
}

func (a *Assembler) choice(c gjson.Result, stream bool) {
	if !c.IsObject() {
		a.refuse(SkipInvalid)
		return
	}
	c.ForEach(func(k, f gjson.Result) bool {
		switch k.Str {
		case "index":
			if f.Int() != 0 || f.Type != gjson.Number {
				a.refuse(SkipUnsupported)
			}
		case "finish_reason":
			if f.Type == gjson.String && f.Str != "" {
				a.c.FinishReason = strings.Clone(f.Str)
			}
		case "logprobs":
			if !empty(f) {
				a.refuse(SkipUnsupported)
			}
		case "delta":
			if stream {
				a.message(f, true)
			}
		case "message":
			if !stream {
				a.message(f, false)
			}
		}
		return a.skip == ""
	})
}

// empty reports whether a field carries nothing: absent, null, "", [] or {}.
func empty(f gjson.Result) bool {
	switch f.Type {
	case gjson.Null:
		return true
	case gjson.String:
		return f.Str == ""
	case gjson.JSON:
		n := 0
		f.ForEach(func(_, _ gjson.Result) bool { n++; return false })
		return n == 0
	}
	return !f.Exists()
}

// message reads a message (JSON) or a delta (SSE).
func (a *Assembler) message(m gjson.Result, delta bool) {
	if !m.IsObject() {
		a.refuse(SkipInvalid)
		return
	}
	m.ForEach(func(k, f gjson.Result) bool {
		switch k.Str {
		case "role":
			if f.Type != gjson.Null && f.Str != "assistant" {
				a.refuse(SkipUnsupported)
			}
		case "content":
			a.text(&a.content, f)
		case "refusal":
			a.text(&a.refusal, f)
		case "reasoning_content":
			a.text(&a.reason, f)
		case "tool_calls":
			if !empty(f) {
				a.toolCalls(f, delta)
			}
		default: // audio, annotations, function_call, unknown extensions
			if !empty(f) {
				a.refuse(SkipUnsupported)
			}
		}
		return a.skip == ""
	})
}

func (a *Assembler) text(dst *strings.Builder, f gjson.Result) {
	switch f.Type {
	case gjson.Null:
	case gjson.String:
		a.grow(len(f.Str))
		dst.WriteString(f.Str)
	default:
		a.refuse(SkipUnsupported) // content parts in an answer
	}
}

// grow accounts n more bytes of assembled text against maxBytes.
func (a *Assembler) grow(n int) {
	a.size += n
	if a.maxBytes > 0 && a.size > a.maxBytes {
		a.refuse(SkipTooLarge)
	}
}

// toolCalls reads tool calls: whole ones in a message, pieces in a delta
// (by index; id, name and arguments concatenated across deltas, as the
// OpenAI SDKs accumulate them). Indices must run 0, 1, 2, ... in a delta;
// a message's calls are taken in order.
func (a *Assembler) toolCalls(arr gjson.Result, delta bool) {
	if !arr.IsArray() {
		a.refuse(SkipInvalid)
		return
	}
	pos := 0
	arr.ForEach(func(_, tc gjson.Result) bool {
		if !tc.IsObject() {
			a.refuse(SkipInvalid)
			return false
		}
		i := pos
		pos++
		if delta {
			idx := tc.Get("index")
			if idx.Type != gjson.Number || idx.Int() < 0 || idx.Int() > int64(len(a.calls)) {
				a.refuse(SkipUnsupported)
				return false
			}
			i = int(idx.Int())
		}
		if i == len(a.calls) {
			a.calls = append(a.calls, &callParts{})
		}
		p := a.calls[i]
		tc.ForEach(func(k, f gjson.Result) bool {
			switch k.Str {
			case "index":
			case "id":
				if !stringOrNull(f) {
					a.refuse(SkipInvalid)
					return false
				}
				a.grow(len(f.Str))
				p.id.WriteString(f.Str)
			case "type":
				if f.Type != gjson.Null && f.Str != "function" {
					a.refuse(SkipUnsupported)
				}
			case "function":
				fn := gjson.GetMany(f.Raw, "name", "arguments")
				if !f.IsObject() || !stringOrNull(fn[0]) || !stringOrNull(fn[1]) {
					a.refuse(SkipUnsupported)
					return false
				}
				a.grow(len(fn[0].Str) + len(fn[1].Str))
				p.name.WriteString(fn[0].Str)
				p.args.WriteString(fn[1].Str)
			default:
				if !empty(f) {
					a.refuse(SkipUnsupported)
				}
			}
			return a.skip == ""
		})
		return a.skip == ""
	})
}

// stringOrNull reports whether f is absent, null or a string.
func stringOrNull(f gjson.Result) bool {
	return f.Type == gjson.Null || f.Type == gjson.String
}

// readBody parses a whole JSON body.
func (a *Assembler) readBody() {
	body := bytes.TrimSpace(a.body)
	json := unsafe.String(unsafe.SliceData(body), len(body))
	if len(body) == 0 || !gjson.Valid(json) {
		a.refuse(SkipCut)
		return
	}
	v := gjson.Parse(json)
	if !v.IsObject() {
		a.refuse(SkipInvalid)
		return
	}
	a.object(v, false)
}
