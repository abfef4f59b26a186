package translate

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
)

// respMsgWriter appends chat messages for Responses input items. The
// assistant's items (its messages, function and custom tool calls) are
// gathered into one assistant message until another role's item comes, as
// chat wants an assistant's tool calls in one message, followed by their
// results.
type respMsgWriter struct {
	b   []byte
	n   int
	be  *config.RBackend
	tag string // this backend's encrypted_content prefix
	// The pending assistant message.
	texts    []string
	calls    []respCall
	thinking []ThinkingBlock
}

type respCall struct{ id, name, args string }

func (w *respMsgWriter) open(role string) {
	w.flush()
	w.openRaw(role)
}

func (w *respMsgWriter) openRaw(role string) {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = append(w.b, `{"role":"`...)
	w.b = append(w.b, role...)
	w.b = append(w.b, `","content":`...)
}

// flush writes the pending assistant message, if any.
func (w *respMsgWriter) flush() {
	if len(w.texts) == 0 && len(w.calls) == 0 {
		w.thinking = w.thinking[:0] // thinking alone is no message
		return
	}
	w.openRaw("assistant")
	switch {
	case len(w.texts) > 0:
		w.b = appendJSONString(w.b, strings.Join(w.texts, ""))
	default:
		w.b = append(w.b, "null"...)
	}
	if len(w.calls) > 0 {
		w.b = append(w.b, `,"tool_calls":[`...)
		for i, c := range w.calls {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendToolCall(w.b, -1, c.id, c.name, c.args)
		}
		w.b = append(w.b, ']')
	}
	if len(w.thinking) > 0 {
		w.b = append(w.b, `,"thinking_blocks":[`...)
		for i, tb := range w.thinking {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendThinkingBlock(w.b, tb)
		}
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
	w.texts, w.calls, w.thinking = w.texts[:0], w.calls[:0], w.thinking[:0]
}

func itemPath(i int) string { return "input[" + strconv.Itoa(i) + "]" }

// item writes input[i].
func (w *respMsgWriter) item(i int, it gjson.Result) error {
	p := itemPath(i)
	if !it.IsObject() {
		return respBad(p, "'%s' must be an object.", p)
	}
	typ := it.Get("type").String()
	if typ == "" && it.Get("role").Exists() {
		typ = "message" // an EasyInputMessage
	}
	switch typ {
	case "message":
		return w.message(p, it)
	case "function_call", "custom_tool_call":
		id, name := it.Get("call_id"), it.Get("name")
		if id.Type != gjson.String || id.Str == "" {
			return respBad(p+".call_id", "Missing required parameter: '%s.call_id'.", p)
		}
		if name.Type != gjson.String || name.Str == "" {
			return respBad(p+".name", "Missing required parameter: '%s.name'.", p)
		}
		var args string
		if typ == "custom_tool_call" {
			args = string(appendJSONString([]byte(`{"input":`), it.Get("input").String())) + "}"
		} else {
			args = it.Get("arguments").String()
			if args == "" {
				args = "{}"
			}
		}
		w.calls = append(w.calls, respCall{id: id.Str, name: name.Str, args: args})
		return nil
	case "function_call_output", "custom_tool_call_output":
		id := it.Get("call_id")
		if id.Type != gjson.String || id.Str == "" {
			return respBad(p+".call_id", "Missing required parameter: '%s.call_id'.", p)
		}
		out, err := w.toolOutput(p+".output", it.Get("output"))
		if err != nil {
			return err
		}
		w.open("tool")
		w.b = appendJSONString(w.b, out)
		w.b = append(w.b, `,"tool_call_id":`...)
		w.b = appendJSONString(w.b, id.Str)
		w.b = append(w.b, '}')
		return nil
	case "reasoning":
		// This backend's signed thinking goes back with the assistant's
		// turn; any other reasoning no chat backend takes back.
		w.thinking = append(w.thinking, decodeThinking(w.tag, it.Get("encrypted_content").String())...)
		return nil
	case "web_search_call", "file_search_call", "image_generation_call", "code_interpreter_call", "mcp_list_tools", "mcp_call":
		// A built-in tool's earlier run: its results are in the messages
		// that follow; the backend cannot replay it.
		return nil
	case "item_reference":
		return respUnsupported(w.be, p, "item references need OpenAI's server-side state; send the item itself")
	default:
		return respUnsupported(w.be, p+".type", "input items of type "+strconv.Quote(typ)+" have no chat-completions equivalent")
	}
}

// message writes a message item: system and developer messages as system
// messages, user messages with their text, image and file parts, assistant
// messages into the pending assistant message.
func (w *respMsgWriter) message(p string, it gjson.Result) error {
	role, content := it.Get("role").String(), it.Get("content")
	switch role {
	case "user", "system", "developer", "assistant":
	default:
		return respBad(p+".role", "Invalid value for '%s.role': %q; expected user, assistant, system or developer.", p, role)
	}
	if role == "assistant" {
		switch {
		case content.Type == gjson.String:
			w.texts = append(w.texts, content.Str)
		case content.IsArray():
			var err error
			j := 0
			content.ForEach(func(_, part gjson.Result) bool {
				pp := p + ".content[" + strconv.Itoa(j) + "]"
				j++
				switch t := part.Get("type").String(); t {
				case "output_text", "input_text", "text":
					w.texts = append(w.texts, part.Get("text").String())
				case "refusal":
					w.texts = append(w.texts, part.Get("refusal").String())
				default:
					err = respBad(pp+".type", "Invalid content part type %q in an assistant message.", t)
				}
				return err == nil
			})
			return err
		default:
			return respBad(p+".content", "'%s.content' must be a string or an array of content parts.", p)
		}
		return nil
	}
	if role == "developer" {
		role = "system"
	}
	if content.Type == gjson.String {
		w.open(role)
		w.b = appendJSONString(w.b, content.Str)
		w.b = append(w.b, '}')
		return nil
	}
	if !content.IsArray() {
		return respBad(p+".content", "'%s.content' must be a string or an array of content parts.", p)
	}
	parts := content.Array()
	if len(parts) == 1 && parts[0].Get("type").String() == "input_text" {
		w.open(role)
		w.b = appendJSONString(w.b, parts[0].Get("text").String())
		w.b = append(w.b, '}')
		return nil
	}
	w.open(role)
	w.b = append(w.b, '[')
	for j, part := range parts {
		pp := p + ".content[" + strconv.Itoa(j) + "]"
		if j > 0 {
			w.b = append(w.b, ',')
		}
		var err error
		if w.b, err = w.part(pp, role, part); err != nil {
			return err
		}
	}
	w.b = append(w.b, "]}"...)
	return nil
}

// part writes one content part of a user or system message.
func (w *respMsgWriter) part(p, role string, part gjson.Result) ([]byte, error) {
	b := w.b
	t := part.Get("type").String()
	if role == "system" && t != "input_text" {
		return nil, respBad(p+".type", "System and developer messages take input_text parts only, not %q.", t)
	}
	switch t {
	case "input_text", "output_text":
		b = append(b, `{"type":"text","text":`...)
		b = appendJSONString(b, part.Get("text").String())
		return append(b, '}'), nil
	case "input_image":
		u := part.Get("image_url")
		if u.Type != gjson.String || u.Str == "" {
			if part.Get("file_id").Exists() {
				return nil, respUnsupported(w.be, p+".file_id", "files uploaded to OpenAI are not readable by other providers; send image_url (a URL or a data URL)")
			}
			return nil, respBad(p+".image_url", "Missing required parameter: '%s.image_url'.", p)
		}
		b = append(b, `{"type":"image_url","image_url":{"url":`...)
		b = appendJSONString(b, u.Str)
		if d := part.Get("detail"); d.Type == gjson.String && d.Str != "" {
			b = append(b, `,"detail":`...)
			b = appendJSONString(b, d.Str)
		}
		return append(b, "}}"...), nil
	case "input_file":
		data := part.Get("file_data")
		if data.Type != gjson.String || data.Str == "" {
			switch {
			case part.Get("file_id").Exists():
				return nil, respUnsupported(w.be, p+".file_id", "files uploaded to OpenAI are not readable by other providers; send file_data")
			case part.Get("file_url").Exists():
				return nil, respUnsupported(w.be, p+".file_url", "chat backends take files as file_data, not by URL")
			}
			return nil, respBad(p+".file_data", "Missing required parameter: '%s.file_data'.", p)
		}
		b = append(b, `{"type":"file","file":{"file_data":`...)
		b = appendJSONString(b, data.Str)
		if n := part.Get("filename"); n.Type == gjson.String && n.Str != "" {
			b = append(b, `,"filename":`...)
			b = appendJSONString(b, n.Str)
		}
		return append(b, "}}"...), nil
	}
	return nil, respBad(p+".type", "Invalid content part type %q; expected input_text, input_image or input_file.", t)
}

// toolOutput reads a function_call_output's output: a string, or text parts
// joined (chat tool messages carry text only).
func (w *respMsgWriter) toolOutput(p string, out gjson.Result) (string, error) {
	switch {
	case out.Type == gjson.String:
		return out.Str, nil
	case out.IsArray():
		var sb strings.Builder
		var err error
		j := 0
		out.ForEach(func(_, part gjson.Result) bool {
			pp := p + "[" + strconv.Itoa(j) + "]"
			j++
			switch t := part.Get("type").String(); t {
			case "input_text", "output_text":
				if sb.Len() > 0 {
					sb.WriteByte('\n')
				}
				sb.WriteString(part.Get("text").String())
			default:
				err = respUnsupported(w.be, pp+".type", "chat tool results carry text only, not "+strconv.Quote(t)+" parts")
			}
			return err == nil
		})
		return sb.String(), err
	case !respSet(out):
		return "", nil
	}
	return out.Raw, nil
}
