package translate

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/usage"
)

// ResponsesResponse converts the chat-completions answer of one attempt
// (already normalized by the backend's translator) into a Responses answer.
// meta comes from ResponsesRequestToChat on the same request; model is the
// model to report. 2xx JSON: chat.completion → the response object; 2xx
// stream: chat chunks (any boundaries) → the semantic events; a stream
// that ends in an error event, or without [DONE], ends with
// response.failed. Error answers (non-2xx) are OpenAI error JSON already,
// which is the Responses API's error shape too: they pass (nil).
func ResponsesResponse(meta *ResponsesMeta, stream bool, status int, model string) Body {
	switch {
	case status < 200 || status >= 300:
		return nil
	case stream:
		return &respStream{meta: meta, model: model}
	}
	return &respJSON{meta: meta, model: model}
}

// respObject is a response object's own fields (the rest is the request's
// echo).
type respObject struct {
	id, model  string
	created    int64
	status     string // in_progress, completed, incomplete, failed
	incomplete string // incomplete_details.reason
	errCode    string // error, for failed
	errMsg     string
	output     []byte // the items, comma-separated
	usage      *usage.Usage
}

// appendResponse writes the response object.
func appendResponse(b []byte, o *respObject, m *ResponsesMeta) []byte {
	var e responsesEcho
	if m != nil {
		e = m.echo
	}
	or := func(raw, def string) string {
		if raw == "" {
			return def
		}
		return raw
	}
	b = append(b, `{"id":`...)
	b = appendJSONString(b, o.id)
	b = append(b, `,"object":"response","created_at":`...)
	b = strconv.AppendInt(b, o.created, 10)
	b = append(b, `,"status":"`...)
	b = append(b, o.status...)
	b = append(b, `","background":false,"error":`...)
	if o.status == "failed" {
		b = append(b, `{"code":`...)
		b = appendJSONString(b, o.errCode)
		b = append(b, `,"message":`...)
		b = appendJSONString(b, o.errMsg)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"incomplete_details":`...)
	if o.incomplete != "" {
		b = append(b, `{"reason":`...)
		b = appendJSONString(b, o.incomplete)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"instructions":`...)
	b = append(b, or(e.instructions, "null")...)
	b = append(b, `,"max_output_tokens":`...)
	b = append(b, or(e.maxOutputTokens, "null")...)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, o.model)
	b = append(b, `,"output":[`...)
	b = append(b, o.output...)
	b = append(b, `],"parallel_tool_calls":`...)
	b = append(b, or(e.parallelToolCalls, "true")...)
	b = append(b, `,"previous_response_id":null,"reasoning":`...)
	b = append(b, or(e.reasoning, `{"effort":null,"summary":null}`)...)
	b = append(b, `,"store":`...)
	b = append(b, or(e.store, "true")...)
	b = append(b, `,"temperature":`...)
	b = append(b, or(e.temperature, "1")...)
	b = append(b, `,"text":`...)
	b = append(b, or(e.text, `{"format":{"type":"text"}}`)...)
	b = append(b, `,"tool_choice":`...)
	b = append(b, or(e.toolChoice, `"auto"`)...)
	b = append(b, `,"tools":`...)
	b = append(b, or(e.tools, "[]")...)
	b = append(b, `,"top_p":`...)
	b = append(b, or(e.topP, "1")...)
	b = append(b, `,"truncation":`...)
	b = append(b, or(e.truncation, `"disabled"`)...)
	b = append(b, `,"usage":`...)
	if o.usage != nil {
		b = appendResponsesUsage(b, *o.usage)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"user":`...)
	b = append(b, or(e.user, "null")...)
	b = append(b, `,"metadata":`...)
	b = append(b, or(e.meta, "{}")...)
	return append(b, '}')
}

// appendResponsesUsage writes the Responses usage object. input_tokens
// includes cached tokens, as chat's prompt_tokens does.
func appendResponsesUsage(b []byte, u usage.Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, u.Input, 10)
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, u.CachedInput, 10)
	b = append(b, `},"output_tokens":`...)
	b = strconv.AppendInt(b, u.Output, 10)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, u.Reasoning, 10)
	b = append(b, `},"total_tokens":`...)
	b = strconv.AppendInt(b, u.Total(), 10)
	return append(b, '}')
}

// respIDs derives the response's and its items' ids from the chat id, so an
// answer's ids are stable (and the goldens too).
func respBaseID(chatID string) string {
	id := strings.TrimPrefix(strings.TrimPrefix(chatID, "chatcmpl-"), "msg_")
	if id == "" {
		id = "0"
	}
	return id
}

// respIncomplete maps a chat finish_reason to the response's status and
// incomplete_details.reason.
func respIncomplete(finish string) (status, reason string) {
	switch finish {
	case "length":
		return "incomplete", "max_output_tokens"
	case "content_filter":
		return "incomplete", "content_filter"
	}
	return "completed", ""
}

// Item writers, shared by the JSON answer and the stream's done events.

func appendMessageItem(b []byte, id, status, text, refusal string, ann []Annotation) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"type":"message","status":"`...)
	b = append(b, status...)
	b = append(b, `","content":[`...)
	n := 0
	if text != "" || refusal == "" {
		b = appendTextPart(b, text, ann)
		n++
	}
	if refusal != "" {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendRefusalPart(b, refusal)
	}
	return append(b, `],"role":"assistant"}`...)
}

func appendTextPart(b []byte, text string, ann []Annotation) []byte {
	b = append(b, `{"type":"output_text","annotations":[`...)
	for i, a := range ann {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendURLCitation(b, a)
	}
	b = append(b, `],"logprobs":[],"text":`...)
	b = appendJSONString(b, text)
	return append(b, '}')
}

// appendURLCitation writes a web search citation as a Responses annotation
// (the hub's url_citation, flattened).
func appendURLCitation(b []byte, a Annotation) []byte {
	b = append(b, `{"type":"url_citation","start_index":`...)
	b = strconv.AppendInt(b, int64(a.Start), 10)
	b = append(b, `,"end_index":`...)
	b = strconv.AppendInt(b, int64(a.End), 10)
	b = append(b, `,"url":`...)
	b = appendJSONString(b, a.URL)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, a.Title)
	return append(b, '}')
}

func appendRefusalPart(b []byte, refusal string) []byte {
	b = append(b, `{"type":"refusal","refusal":`...)
	b = appendJSONString(b, refusal)
	return append(b, '}')
}

// appendReasoningItem writes a reasoning item; summary "" has no summary
// part (summary: [] as OpenAI sends before the text).
// encrypted_content is written when the client asked for it and there is
// one.
func appendReasoningItem(b []byte, id, summary, encrypted string, withEncrypted bool) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"type":"reasoning","summary":[`...)
	if summary != "" {
		b = append(b, `{"type":"summary_text","text":`...)
		b = appendJSONString(b, summary)
		b = append(b, '}')
	}
	b = append(b, ']')
	if withEncrypted && encrypted != "" {
		b = append(b, `,"encrypted_content":`...)
		b = appendJSONString(b, encrypted)
	}
	return append(b, '}')
}

// appendCallItem writes a function_call, or a custom_tool_call for a
// custom tool (its input read from the function's one "input" argument).
func appendCallItem(b []byte, m *ResponsesMeta, id, status, callID, name, args string) []byte {
	if m.isCustom(name) {
		b = append(b, `{"id":`...)
		b = appendJSONString(b, "ctc_"+strings.TrimPrefix(id, "fc_"))
		b = append(b, `,"type":"custom_tool_call","status":"`...)
		b = append(b, status...)
		b = append(b, `","call_id":`...)
		b = appendJSONString(b, callID)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, name)
		b = append(b, `,"input":`...)
		b = appendJSONString(b, customInput(args))
		return append(b, '}')
	}
	b = append(b, `{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"type":"function_call","status":"`...)
	b = append(b, status...)
	b = append(b, `","arguments":`...)
	b = appendJSONString(b, args)
	b = append(b, `,"call_id":`...)
	b = appendJSONString(b, callID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, name)
	if ns := m.namespaceOf(name); ns != "" {
		b = append(b, `,"namespace":`...)
		b = appendJSONString(b, ns)
	}
	return append(b, '}')
}

// customInput reads a custom tool's input from the function arguments the
// model wrote ({"input": "..."}); arguments of another shape are the input
// as they are, rather than lost.
func customInput(args string) string {
	if in := gjson.Get(args, "input"); in.Type == gjson.String && gjson.Valid(args) {
		return in.Str
	}
	return args
}

// respJSON buffers a chat.completion and emits the response object.
type respJSON struct {
	meta   *ResponsesMeta
	model  string
	answer hubAnswer
}

func (a *respJSON) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	body, done, ok := a.answer.add(chunk, eos)
	if !done {
		return nil, false
	}
	if !ok {
		return respErrorJSON("server_error", "The upstream answer could not be read."), false
	}
	r := gjson.ParseBytes(body)
	if e := r.Get("error"); e.Exists() {
		return body, false // OpenAI error JSON is the Responses error shape too
	}
	return ResponseFromChat(r, a.meta, a.model), false
}

func respErrorJSON(code, msg string) []byte {
	b := append([]byte(`{"error":{"message":`), appendJSONString(nil, msg)...)
	b = append(b, `,"type":"server_error","param":null,"code":`...)
	b = appendJSONString(b, code)
	return append(b, "}}"...)
}

// ResponseFromChat renders a chat.completion as a Responses response
// object; model "" reports the completion's model.
func ResponseFromChat(r gjson.Result, m *ResponsesMeta, model string) []byte {
	if model == "" {
		model = r.Get("model").String()
	}
	base := respBaseID(r.Get("id").String())
	msg := r.Get("choices.0.message")
	status, reason := respIncomplete(r.Get("choices.0.finish_reason").String())
	itemStatus := "completed"
	if status == "incomplete" {
		itemStatus = "incomplete"
	}
	o := respObject{id: "resp_" + base, model: model, created: r.Get("created").Int(), status: status, incomplete: reason}
	if u, ok := usage.FromOpenAI(r.Get("usage")); ok {
		o.usage = &u
	}
	var out []byte
	n := 0
	sep := func() {
		if n > 0 {
			out = append(out, ',')
		}
		n++
	}
	rc, blocks := msg.Get("reasoning_content").String(), hubSignedBlocks(msg.Get("thinking_blocks"))
	enc := ""
	if m != nil && m.encrypted {
		enc = encodeThinking(m.tag, blocks)
	}
	// Gemini's signatures alone make no reasoning item unless it carries them.
	if rc != "" || enc != "" || len(hubThinkingBlocks(msg.Get("thinking_blocks"))) > 0 {
		sep()
		out = appendReasoningItem(out, "rs_"+base, rc, enc, enc != "")
	}
	text, refusal := caContentText(msg.Get("content")), msg.Get("refusal").String()
	if text != "" || refusal != "" {
		sep()
		out = appendMessageItem(out, "msg_"+base, itemStatus, text, refusal, respAnnotations(msg.Get("annotations")))
	}
	msg.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
		sep()
		callID := c.Get("id").String()
		out = appendCallItem(out, m, "fc_"+callID, itemStatus, callID, c.Get("function.name").String(), c.Get("function.arguments").String())
		return true
	})
	o.output = out
	return appendResponse(make([]byte, 0, 512+len(out)), &o, m)
}

// respAnnotations reads the hub's annotations (its url_citation entries).
func respAnnotations(v gjson.Result) []Annotation {
	var out []Annotation
	v.ForEach(func(_, a gjson.Result) bool {
		if a.Get("type").Str != "url_citation" {
			return true
		}
		c := a.Get("url_citation")
		out = append(out, Annotation{URL: c.Get("url").Str, Title: c.Get("title").Str,
			Start: int(c.Get("start_index").Int()), End: int(c.Get("end_index").Int())})
		return true
	})
	return out
}
