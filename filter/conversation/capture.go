package conversation

import (
	"bytes"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/sse"
)

// Capture reads a Responses answer as the client receives it, JSON or a
// stream of semantic events, and keeps its final response object. It keeps
// at most maxBytes: a larger answer is not kept at all.
type Capture struct {
	stream   bool
	maxBytes int

	body     []byte // a JSON answer so far
	sc       sse.Scanner
	final    []byte   // the stream's response.completed / .incomplete response
	items    [][]byte // the stream's output_item.done items, in order
	size     int      // bytes held in items
	over     bool     // past maxBytes
	failed   bool     // response.failed or an error event
	finished bool
}

// NewCapture returns a Capture for a streamed answer (stream) or a JSON one.
func NewCapture(stream bool, maxBytes int) *Capture {
	return &Capture{stream: stream, maxBytes: maxBytes}
}

// Write reads the next chunk of the answer.
func (c *Capture) Write(chunk []byte) {
	if c.over || c.failed || c.finished {
		return
	}
	if !c.stream {
		if len(c.body)+len(chunk) > c.maxBytes {
			c.over, c.body = true, nil
			return
		}
		c.body = append(c.body, chunk...)
		return
	}
	c.sc.Feed(chunk, c.event)
}

func (c *Capture) event(e sse.Event) {
	if string(e.Name) == "error" {
		c.failed = true
		return
	}
	data := bytes.TrimSpace(e.Data)
	if len(data) == 0 || data[0] != '{' {
		return
	}
	switch gjson.GetBytes(data, "type").Str {
	case "response.output_item.done":
		it := gjson.GetBytes(data, "item")
		if c.size += len(it.Raw); c.size > c.maxBytes {
			c.over, c.items = true, nil
			return
		}
		c.items = append(c.items, []byte(it.Raw))
	case "response.completed", "response.incomplete":
		r := gjson.GetBytes(data, "response")
		if len(r.Raw) > c.maxBytes {
			c.over = true
			return
		}
		c.final, c.finished = []byte(r.Raw), true
	case "response.failed", "error":
		c.failed = true
	}
}

// Response returns the answer's final response object when the answer is
// complete: a JSON response object, or a stream that ended with
// response.completed or response.incomplete, without an error; false for
// anything else (a failed or cut answer, one past the bound). A stream's
// response whose output is empty gets the items its output_item.done
// events carried.
func (c *Capture) Response() ([]byte, bool) {
	if c.over || c.failed {
		return nil, false
	}
	resp := c.final
	if !c.stream {
		resp = bytes.TrimSpace(c.body)
		if !gjson.ValidBytes(resp) {
			return nil, false
		}
	}
	v := gjson.ParseBytes(resp)
	switch {
	case !v.IsObject() || v.Get("id").Type != gjson.String || v.Get("id").Str == "":
		return nil, false
	case v.Get("status").Str != "completed" && v.Get("status").Str != "incomplete":
		return nil, false
	}
	if c.stream && len(c.items) > 0 && v.Get("output.#").Int() == 0 {
		out := []byte{'['}
		for i, it := range c.items {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, it...)
		}
		out = append(out, ']')
		if r, err := sjson.SetRawBytes(bytes.Clone(resp), "output", out); err == nil {
			resp = r
		}
	}
	return resp, true
}
