package cache

import (
	"strconv"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Responses API answers (POST /v1/responses) are stored as their final
// response object (the JSON answer, or a stream's response.completed
// response), under keys of their own endpoint: ReplayJSON serves the object
// as it was stored, ReplayResponsesSSE a well-formed stream of the semantic
// events OpenAI sends, rebuilt from it, each text and each function call's
// arguments in one delta.

// ResponsesStorable reports whether a final response object may be stored:
// completed, with an id, an output array and usage.
func ResponsesStorable(resp []byte) (ok bool, reason string) {
	v := gjson.ParseBytes(resp)
	switch {
	case !v.IsObject() || v.Get("id").Type != gjson.String || v.Get("status").Str != "completed" || !v.Get("output").IsArray():
		return false, SkipInvalid
	case !v.Get("usage").IsObject():
		return false, SkipNoUsage
	}
	return true, ""
}

// ReplayResponsesSSE rebuilds the event stream of a stored response object.
func ReplayResponsesSSE(e Entry) []byte {
	r := respReplay{out: make([]byte, 0, 2*len(e.Completion)+1024)}
	resp := gjson.ParseBytes(e.Completion)
	pending := resp.Raw
	for _, k := range []string{"output", "usage"} {
		if s, err := sjson.SetRaw(pending, k, map[string]string{"output": "[]", "usage": "null"}[k]); err == nil {
			pending = s
		}
	}
	if s, err := sjson.Set(pending, "status", "in_progress"); err == nil {
		pending = s
	}
	r.event("response.created", `"response":`+pending)
	r.event("response.in_progress", `"response":`+pending)
	resp.Get("output").ForEach(func(i, it gjson.Result) bool {
		r.item(int(i.Int()), it)
		return true
	})
	final := "response.completed"
	if resp.Get("status").Str == "incomplete" {
		final = "response.incomplete"
	}
	r.event(final, `"response":`+resp.Raw)
	return r.out
}

type respReplay struct {
	out []byte
	seq int
}

// event appends one named event whose data is {"type", "sequence_number"}
// and fields (raw JSON members, without braces).
func (r *respReplay) event(name, fields string) {
	r.out = append(r.out, "event: "...)
	r.out = append(r.out, name...)
	r.out = append(r.out, "\ndata: {\"type\":"...)
	r.out = strconv.AppendQuote(r.out, name)
	r.out = append(r.out, `,"sequence_number":`...)
	r.out = strconv.AppendInt(r.out, int64(r.seq), 10)
	if fields != "" {
		r.out = append(r.out, ',')
		r.out = append(r.out, fields...)
	}
	r.out = append(r.out, "}\n\n"...)
	r.seq++
}

// item replays one output item: added (in progress, empty), its content or
// arguments, done (whole).
func (r *respReplay) item(i int, it gjson.Result) {
	idx := `"output_index":` + strconv.Itoa(i)
	id := it.Get("id").Raw
	if id == "" {
		id = `""`
	}
	added := it.Raw
	if it.Get("status").Exists() {
		added, _ = sjson.Set(added, "status", "in_progress")
	}
	switch it.Get("type").Str {
	case "message":
		added, _ = sjson.SetRaw(added, "content", "[]")
	case "function_call":
		added, _ = sjson.Set(added, "arguments", "")
	}
	r.event("response.output_item.added", idx+`,"item":`+added)
	switch it.Get("type").Str {
	case "message":
		it.Get("content").ForEach(func(j, part gjson.Result) bool {
			at := idx + `,"item_id":` + id + `,"content_index":` + strconv.Itoa(int(j.Int()))
			if part.Get("type").Str != "output_text" {
				r.event("response.content_part.added", at+`,"part":`+part.Raw)
				r.event("response.content_part.done", at+`,"part":`+part.Raw)
				return true
			}
			text := part.Get("text").Raw
			if text == "" {
				text = `""`
			}
			r.event("response.content_part.added", at+`,"part":{"type":"output_text","text":"","annotations":[]}`)
			r.event("response.output_text.delta", at+`,"delta":`+text)
			r.event("response.output_text.done", at+`,"text":`+text)
			r.event("response.content_part.done", at+`,"part":`+part.Raw)
			return true
		})
	case "function_call":
		args := it.Get("arguments").Raw
		if args == "" {
			args = `""`
		}
		r.event("response.function_call_arguments.delta", idx+`,"item_id":`+id+`,"delta":`+args)
		r.event("response.function_call_arguments.done", idx+`,"item_id":`+id+`,"arguments":`+args)
	}
	r.event("response.output_item.done", idx+`,"item":`+it.Raw)
}
