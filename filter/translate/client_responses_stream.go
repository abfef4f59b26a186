package translate

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/usage"
)

// respStream turns chat.completion.chunk events into the Responses API's
// semantic stream events, in the order OpenAI sends them:
// response.created, response.in_progress, then per output item
// response.output_item.added, its content events (content_part.added,
// output_text.delta/.done, content_part.done; reasoning_summary_part.added,
// reasoning_summary_text.delta/.done, reasoning_summary_part.done;
// function_call_arguments.delta/.done; custom_tool_call_input.delta/.done)
// and response.output_item.done, and last response.completed or
// response.incomplete. An error event, or a stream that ends without
// [DONE], ends with response.failed. Every event carries the next
// sequence_number, from 0.
type respStream struct {
	meta    *ResponsesMeta
	model   string
	sc      sse.Scanner
	out     []byte
	seq     int
	started bool
	ended   bool
	base    string // the id items derive from
	created int64
	items   []respItem
	cur     int    // index of the open item in items, -1 for none
	output  []byte // the done items, comma-separated, for the final response
	finish  string
	usage   *usage.Usage
}

// An item kind.
const (
	itemReasoning = iota
	itemMessage
	itemCall
)

// respItem is one output item being streamed.
type respItem struct {
	kind     int
	id       string
	call     int // the chat tool-call index (itemCall)
	callID   string
	name     string
	text     strings.Builder // message text, reasoning summary, call arguments
	refusal  strings.Builder
	part     int // the open content part: 0 none, 1 text, 2 refusal (itemMessage)
	parts    int // content parts opened so far
	textPart int // content_index of the text part
	// itemReasoning: the summary part is open; the signed thinking; how
	// much of text the blocks so far cover.
	summary bool
	blocks  []ThinkingBlock
	covered int
	// itemMessage: the text's url citations.
	ann []Annotation
}

func (s *respStream) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	s.out = reuse(s.out)
	s.sc.Feed(chunk, s.event)
	if eos {
		s.sc.Flush(s.event)
		if !s.ended {
			s.fail("stream_incomplete", "The upstream stream ended before it was complete.")
		}
	}
	return s.out, false
}

// begin starts an event of type typ, up to its first member's comma.
func (s *respStream) begin(typ string) {
	s.out = append(s.out, "event: "...)
	s.out = append(s.out, typ...)
	s.out = append(s.out, "\ndata: {\"type\":\""...)
	s.out = append(s.out, typ...)
	s.out = append(s.out, '"')
}

// end closes the event with its sequence number.
func (s *respStream) end() {
	s.out = append(s.out, `,"sequence_number":`...)
	s.out = strconv.AppendInt(s.out, int64(s.seq), 10)
	s.seq++
	s.out = append(s.out, "}\n\n"...)
}

// itemRef writes "item_id" and "output_index" of item i.
func (s *respStream) itemRef(i int) {
	s.out = append(s.out, `,"item_id":`...)
	s.out = appendJSONString(s.out, s.items[i].id)
	s.out = append(s.out, `,"output_index":`...)
	s.out = strconv.AppendInt(s.out, int64(i), 10)
}

func (s *respStream) event(ev sse.Event) {
	if s.ended {
		return
	}
	if string(ev.Data) == "[DONE]" {
		s.start("", "", 0)
		s.complete()
		return
	}
	if !gjson.ValidBytes(ev.Data) {
		return
	}
	r := gjson.ParseBytes(ev.Data)
	if e := r.Get("error"); e.Exists() {
		s.start("", "", 0)
		code := e.Get("code").String()
		if code == "" {
			code = "server_error"
		}
		msg := e.Get("message").String()
		if msg == "" {
			msg = "upstream error"
		}
		s.fail(code, msg)
		return
	}
	s.start(r.Get("id").String(), r.Get("model").String(), r.Get("created").Int())
	if u, ok := usage.FromOpenAI(r.Get("usage")); ok {
		s.usage = &u
	}
	c := r.Get("choices.0")
	if !c.Exists() {
		return
	}
	c.Get("delta").ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "reasoning_content":
			if v.Str != "" {
				s.reasoning(v.Str)
			}
		case "thinking_blocks":
			v.ForEach(func(_, tb gjson.Result) bool {
				s.thinkingBlock(tb)
				return true
			})
		case "content":
			if v.Str != "" {
				s.text(1, v.Str)
			}
		case "refusal":
			if v.Str != "" {
				s.text(2, v.Str)
			}
		case "annotations":
			s.annotations(respAnnotations(v))
		case "tool_calls":
			eachToolCallDelta(v, s.toolCall)
		}
		return true
	})
	if f := c.Get("finish_reason"); f.Type == gjson.String && f.Str != "" {
		s.finish = f.Str
		s.closeItem()
	}
}

// start sends response.created and response.in_progress once.
func (s *respStream) start(id, model string, created int64) {
	if s.started {
		return
	}
	s.started, s.cur = true, -1
	s.base, s.created = respBaseID(id), created
	if s.model == "" {
		s.model = model
	}
	o := respObject{id: "resp_" + s.base, model: s.model, created: s.created, status: "in_progress"}
	for _, typ := range []string{"response.created", "response.in_progress"} {
		s.begin(typ)
		s.out = append(s.out, `,"response":`...)
		s.out = appendResponse(s.out, &o, s.meta)
		s.end()
	}
}

// open starts a new output item of kind, closing the open one.
func (s *respStream) open(kind int) int {
	s.closeItem()
	i := len(s.items)
	s.items = append(s.items, respItem{kind: kind, call: -1})
	s.cur = i
	it := &s.items[i]
	switch kind {
	case itemReasoning:
		it.id = "rs_" + s.base + "_" + strconv.Itoa(i)
	case itemMessage:
		it.id = "msg_" + s.base + "_" + strconv.Itoa(i)
	}
	return i
}

func (s *respStream) added(i int) {
	it := &s.items[i]
	s.begin("response.output_item.added")
	s.out = append(s.out, `,"output_index":`...)
	s.out = strconv.AppendInt(s.out, int64(i), 10)
	s.out = append(s.out, `,"item":`...)
	switch it.kind {
	case itemReasoning:
		s.out = append(s.out, `{"id":`...)
		s.out = appendJSONString(s.out, it.id)
		s.out = append(s.out, `,"type":"reasoning","summary":[]}`...)
	case itemMessage:
		s.out = append(s.out, `{"id":`...)
		s.out = appendJSONString(s.out, it.id)
		s.out = append(s.out, `,"type":"message","status":"in_progress","content":[],"role":"assistant"}`...)
	case itemCall:
		s.out = appendCallItem(s.out, s.meta, it.id, "in_progress", it.callID, it.name, "")
	}
	s.end()
}

// reasoningItem returns the open reasoning item, opening one if needed.
func (s *respStream) reasoningItem() int {
	i := s.cur
	if i < 0 || s.items[i].kind != itemReasoning {
		i = s.open(itemReasoning)
		s.added(i)
	}
	return i
}

func (s *respStream) reasoning(t string) {
	i := s.reasoningItem()
	if !s.items[i].summary {
		s.items[i].summary = true
		s.begin("response.reasoning_summary_part.added")
		s.itemRef(i)
		s.out = append(s.out, `,"summary_index":0,"part":{"type":"summary_text","text":""}`...)
		s.end()
	}
	s.items[i].text.WriteString(t)
	s.begin("response.reasoning_summary_text.delta")
	s.itemRef(i)
	s.out = append(s.out, `,"summary_index":0,"delta":`...)
	s.out = appendJSONString(s.out, t)
	s.end()
}

// thinkingBlock keeps a signed thinking block (or redacted thinking) for
// the reasoning item's encrypted_content. A streamed block's text came as
// reasoning_content before it: the text since the previous block.
func (s *respStream) thinkingBlock(v gjson.Result) {
	blocks := hubSignedBlocks(gjson.Parse("[" + v.Raw + "]"))
	if len(blocks) == 0 {
		return
	}
	tb := blocks[0]
	if tb.Kind == thoughtSignature && (s.meta == nil || !s.meta.encrypted) {
		return // a Gemini signature alone makes no reasoning item unless it carries it
	}
	i := s.reasoningItem()
	it := &s.items[i]
	if tb.Kind == thoughtSignature {
		it.blocks = append(it.blocks, tb) // it covers no text
		return
	}
	if tb.Kind == "thinking" && tb.Text == "" {
		tb.Text = it.text.String()[it.covered:]
	}
	it.covered = it.text.Len()
	it.blocks = append(it.blocks, tb)
}

// text appends message text (part 1) or refusal (part 2), opening the
// message item and the content part as needed.
func (s *respStream) text(part int, t string) {
	i := s.cur
	if i < 0 || s.items[i].kind != itemMessage {
		i = s.open(itemMessage)
		s.added(i)
	}
	it := &s.items[i]
	if it.part != part {
		s.closePart(i)
		it.part = part
		if part == 1 {
			it.textPart = it.parts
		}
		it.parts++
		s.begin("response.content_part.added")
		s.itemRef(i)
		s.out = append(s.out, `,"content_index":`...)
		s.out = strconv.AppendInt(s.out, int64(it.parts-1), 10)
		s.out = append(s.out, `,"part":`...)
		if part == 1 {
			s.out = appendTextPart(s.out, "", nil)
		} else {
			s.out = appendRefusalPart(s.out, "")
		}
		s.end()
	}
	if part == 1 {
		it.text.WriteString(t)
		s.begin("response.output_text.delta")
	} else {
		it.refusal.WriteString(t)
		s.begin("response.refusal.delta")
	}
	s.itemRef(i)
	s.out = append(s.out, `,"content_index":`...)
	s.out = strconv.AppendInt(s.out, int64(it.parts-1), 10)
	s.out = append(s.out, `,"delta":`...)
	s.out = appendJSONString(s.out, t)
	if part == 1 {
		s.out = append(s.out, `,"logprobs":[]`...)
	}
	s.end()
}

// annotations adds url citations to the message's text part: one
// response.output_text.annotation.added each.
func (s *respStream) annotations(ann []Annotation) {
	i := s.cur
	if len(ann) == 0 || i < 0 || s.items[i].kind != itemMessage || s.items[i].part != 1 {
		return
	}
	it := &s.items[i]
	for _, a := range ann {
		s.begin("response.output_text.annotation.added")
		s.itemRef(i)
		s.out = append(s.out, `,"content_index":`...)
		s.out = strconv.AppendInt(s.out, int64(it.textPart), 10)
		s.out = append(s.out, `,"annotation_index":`...)
		s.out = strconv.AppendInt(s.out, int64(len(it.ann)), 10)
		s.out = append(s.out, `,"annotation":`...)
		s.out = appendURLCitation(s.out, a)
		s.end()
		it.ann = append(it.ann, a)
	}
}

// closePart ends the message's open content part.
func (s *respStream) closePart(i int) {
	it := &s.items[i]
	if it.part == 0 {
		return
	}
	idx := int64(it.parts - 1)
	if it.part == 1 {
		s.begin("response.output_text.done")
		s.itemRef(i)
		s.out = append(s.out, `,"content_index":`...)
		s.out = strconv.AppendInt(s.out, idx, 10)
		s.out = append(s.out, `,"text":`...)
		s.out = appendJSONString(s.out, it.text.String())
		s.out = append(s.out, `,"logprobs":[]`...)
	} else {
		s.begin("response.refusal.done")
		s.itemRef(i)
		s.out = append(s.out, `,"content_index":`...)
		s.out = strconv.AppendInt(s.out, idx, 10)
		s.out = append(s.out, `,"refusal":`...)
		s.out = appendJSONString(s.out, it.refusal.String())
	}
	s.end()
	s.begin("response.content_part.done")
	s.itemRef(i)
	s.out = append(s.out, `,"content_index":`...)
	s.out = strconv.AppendInt(s.out, idx, 10)
	s.out = append(s.out, `,"part":`...)
	if it.part == 1 {
		s.out = appendTextPart(s.out, it.text.String(), it.ann)
	} else {
		s.out = appendRefusalPart(s.out, it.refusal.String())
	}
	s.end()
	it.part = 0
}

func (s *respStream) toolCall(call int, tc gjson.Result) {
	i := -1
	for j := range s.items {
		if s.items[j].kind == itemCall && s.items[j].call == call {
			i = j
		}
	}
	if i < 0 {
		i = s.open(itemCall)
		it := &s.items[i]
		it.call, it.callID, it.name = call, tc.Get("id").String(), tc.Get("function.name").String()
		if it.callID == "" {
			it.callID = "call_" + s.base + "_" + strconv.Itoa(call)
		}
		it.id = "fc_" + it.callID
		s.added(i)
	}
	it := &s.items[i]
	args := tc.Get("function.arguments").String()
	if args == "" {
		return
	}
	it.text.WriteString(args)
	if s.meta.isCustom(it.name) {
		return // the input is sent whole when the call is done
	}
	s.begin("response.function_call_arguments.delta")
	s.itemRef(i)
	s.out = append(s.out, `,"delta":`...)
	s.out = appendJSONString(s.out, args)
	s.end()
}

// closeItem ends the open item: its done events, then output_item.done.
func (s *respStream) closeItem() {
	i := s.cur
	if i < 0 {
		return
	}
	s.cur = -1
	it := &s.items[i]
	status := "completed"
	if st, _ := respIncomplete(s.finish); st == "incomplete" {
		status = "incomplete"
	}
	start := len(s.output)
	if start > 0 {
		s.output = append(s.output, ',')
		start++
	}
	switch it.kind {
	case itemReasoning:
		sum := it.text.String()
		if it.summary {
			s.begin("response.reasoning_summary_text.done")
			s.itemRef(i)
			s.out = append(s.out, `,"summary_index":0,"text":`...)
			s.out = appendJSONString(s.out, sum)
			s.end()
			s.begin("response.reasoning_summary_part.done")
			s.itemRef(i)
			s.out = append(s.out, `,"summary_index":0,"part":{"type":"summary_text","text":`...)
			s.out = appendJSONString(s.out, sum)
			s.out = append(s.out, '}')
			s.end()
		}
		enc := ""
		if s.meta != nil && s.meta.encrypted {
			enc = encodeThinking(s.meta.tag, it.blocks)
		}
		s.output = appendReasoningItem(s.output, it.id, sum, enc, enc != "")
	case itemMessage:
		s.closePart(i)
		s.output = appendMessageItem(s.output, it.id, status, it.text.String(), it.refusal.String(), it.ann)
	case itemCall:
		args := it.text.String()
		if s.meta.isCustom(it.name) {
			in := customInput(args)
			id := "ctc_" + strings.TrimPrefix(it.id, "fc_")
			if in != "" {
				s.begin("response.custom_tool_call_input.delta")
				s.out = append(s.out, `,"item_id":`...)
				s.out = appendJSONString(s.out, id)
				s.out = append(s.out, `,"output_index":`...)
				s.out = strconv.AppendInt(s.out, int64(i), 10)
				s.out = append(s.out, `,"delta":`...)
				s.out = appendJSONString(s.out, in)
				s.end()
			}
			s.begin("response.custom_tool_call_input.done")
			s.out = append(s.out, `,"item_id":`...)
			s.out = appendJSONString(s.out, id)
			s.out = append(s.out, `,"output_index":`...)
			s.out = strconv.AppendInt(s.out, int64(i), 10)
			s.out = append(s.out, `,"input":`...)
			s.out = appendJSONString(s.out, in)
			s.end()
		} else {
			s.begin("response.function_call_arguments.done")
			s.itemRef(i)
			s.out = append(s.out, `,"name":`...)
			s.out = appendJSONString(s.out, it.name)
			s.out = append(s.out, `,"arguments":`...)
			s.out = appendJSONString(s.out, args)
			s.end()
		}
		s.output = appendCallItem(s.output, s.meta, it.id, status, it.callID, it.name, args)
	}
	s.begin("response.output_item.done")
	s.out = append(s.out, `,"output_index":`...)
	s.out = strconv.AppendInt(s.out, int64(i), 10)
	s.out = append(s.out, `,"item":`...)
	s.out = append(s.out, s.output[start:]...)
	s.end()
}

// complete ends the stream with response.completed or response.incomplete.
func (s *respStream) complete() {
	s.closeItem()
	s.ended = true
	status, reason := respIncomplete(s.finish)
	o := respObject{id: "resp_" + s.base, model: s.model, created: s.created, status: status, incomplete: reason,
		output: s.output, usage: s.usage}
	s.begin("response." + status)
	s.out = append(s.out, `,"response":`...)
	s.out = appendResponse(s.out, &o, s.meta)
	s.end()
}

// fail ends the stream with response.failed; the items still open are not
// done.
func (s *respStream) fail(code, msg string) {
	s.start("", "", 0)
	s.ended = true
	o := respObject{id: "resp_" + s.base, model: s.model, created: s.created, status: "failed",
		errCode: code, errMsg: msg, output: s.output, usage: s.usage}
	s.begin("response.failed")
	s.out = append(s.out, `,"response":`...)
	s.out = appendResponse(s.out, &o, s.meta)
	s.end()
}
