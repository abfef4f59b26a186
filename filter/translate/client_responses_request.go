package translate

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
)

// responsesFields are the top-level members of a Responses request the
// conversion reads.
type responsesFields struct {
	model, input, instructions, tools, toolChoice, parallel, text, reasoning gjson.Result
	maxOutput, temperature, topP, topLogprobs, user, safety, stream, include gjson.Result
	metadata, store, truncation                                              gjson.Result
}

// ResponsesRequestToChat converts a Responses API request body into an
// OpenAI chat-completions body for backend be (whose drop_params decide what
// cannot be mapped: dropped, or a 400 naming the field and the backend),
// and returns what the answer's conversion needs (ResponsesMeta). A stream
// always asks for usage (stream_options.include_usage), which the Responses
// answer always carries. Errors are *apierr.Error 400s with Param set.
func ResponsesRequestToChat(body []byte, be *config.RBackend) ([]byte, *ResponsesMeta, error) {
	if !gjson.ValidBytes(body) {
		return nil, nil, respBad("", "The request body is not valid JSON.")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, nil, respBad("", "The request body must be a JSON object.")
	}
	var f responsesFields
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			f.model = v
		case "input":
			f.input = v
		case "instructions":
			f.instructions = v
		case "tools":
			f.tools = v
		case "tool_choice":
			f.toolChoice = v
		case "parallel_tool_calls":
			f.parallel = v
		case "text":
			f.text = v
		case "reasoning":
			f.reasoning = v
		case "max_output_tokens":
			f.maxOutput = v
		case "temperature":
			f.temperature = v
		case "top_p":
			f.topP = v
		case "top_logprobs":
			f.topLogprobs = v
		case "user":
			f.user = v
		case "safety_identifier":
			f.safety = v
		case "stream":
			f.stream = v
		case "include":
			f.include = v
		case "metadata":
			f.metadata = v
		case "store":
			f.store = v
		case "truncation":
			f.truncation = v
		case "previous_response_id", "conversation", "prompt":
			if respSet(v) {
				err = respUnsupported(be, k.Str, "it needs OpenAI's server-side conversation state; send the whole conversation in input")
			}
		case "background":
			if v.Type == gjson.True {
				err = respUnsupported(be, k.Str, "background responses need OpenAI's server-side state")
			}
		case "max_tool_calls":
			if respSet(v) {
				if e := Unsupported(be, k.Str); e != nil {
					err = e
				}
			}
		}
		return err == nil
	})
	if err != nil {
		return nil, nil, err
	}
	if f.model.Type != gjson.String || f.model.Str == "" {
		return nil, nil, respBad("model", "Missing required parameter: 'model'.")
	}
	meta := &ResponsesMeta{tag: reasoningTag(be)}
	meta.echo = responsesEcho{
		instructions: rawIf(f.instructions), maxOutputTokens: rawIf(f.maxOutput), parallelToolCalls: rawIf(f.parallel),
		reasoning: rawIf(f.reasoning), store: rawIf(f.store), temperature: rawIf(f.temperature), text: rawIf(f.text),
		toolChoice: rawIf(f.toolChoice), tools: rawIf(f.tools), topP: rawIf(f.topP), truncation: rawIf(f.truncation),
		user: rawIf(f.user), meta: rawIf(f.metadata),
	}
	f.include.ForEach(func(_, v gjson.Result) bool {
		if v.Str == "reasoning.encrypted_content" {
			meta.encrypted = true
		}
		return true
	})

	b := make([]byte, 0, len(body)+256)
	b = append(b, `{"model":`...)
	b = appendJSONString(b, f.model.Str)
	b = append(b, `,"messages":[`...)
	w := respMsgWriter{b: b, be: be, tag: meta.tag}
	switch {
	case !respSet(f.instructions):
	case f.instructions.Type == gjson.String:
		if f.instructions.Str != "" {
			w.open("system")
			w.b = appendJSONString(w.b, f.instructions.Str)
			w.b = append(w.b, '}')
		}
	default:
		return nil, nil, respBad("instructions", "'instructions' must be a string.")
	}
	switch {
	case f.input.Type == gjson.String:
		w.open("user")
		w.b = appendJSONString(w.b, f.input.Str)
		w.b = append(w.b, '}')
	case f.input.IsArray():
		i := 0
		f.input.ForEach(func(_, item gjson.Result) bool {
			err = w.item(i, item)
			i++
			return err == nil
		})
		if err != nil {
			return nil, nil, err
		}
		w.flush()
	default:
		return nil, nil, respBad("input", "'input' must be a string or an array of input items.")
	}
	if w.n == 0 {
		return nil, nil, respBad("input", "'input' must contain at least one message.")
	}
	b = append(w.b, ']')

	var hasTools bool
	if b, hasTools, err = respAppendTools(b, be, f.tools, f.toolChoice, meta); err != nil {
		return nil, nil, err
	}
	if hasTools && (f.parallel.Type == gjson.True || f.parallel.Type == gjson.False) {
		b = append(b, `,"parallel_tool_calls":`...)
		b = append(b, f.parallel.Raw...)
	}
	if b, err = respAppendText(b, f.text); err != nil {
		return nil, nil, err
	}
	if respSet(f.reasoning) {
		if !f.reasoning.IsObject() {
			return nil, nil, respBad("reasoning", "'reasoning' must be an object.")
		}
		if e := f.reasoning.Get("effort"); e.Type == gjson.String {
			b = append(b, `,"reasoning_effort":`...)
			b = appendJSONString(b, e.Str)
		}
	}
	for _, p := range []struct {
		name string
		v    gjson.Result
	}{{"max_tokens", f.maxOutput}, {"temperature", f.temperature}, {"top_p", f.topP}} {
		switch p.v.Type {
		case gjson.Null:
		case gjson.Number:
			b = append(b, `,"`...)
			b = append(b, p.name...)
			b = append(b, `":`...)
			b = append(b, p.v.Raw...)
		default:
			return nil, nil, respBad(p.name, "'%s' must be a number.", p.name)
		}
	}
	if f.topLogprobs.Type == gjson.Number {
		b = append(b, `,"logprobs":true,"top_logprobs":`...)
		b = append(b, f.topLogprobs.Raw...)
	}
	user := f.user
	if user.Type != gjson.String {
		user = f.safety
	}
	if user.Type == gjson.String && user.Str != "" {
		b = append(b, `,"user":`...)
		b = appendJSONString(b, user.Str)
	}
	switch f.stream.Type {
	case gjson.True:
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	case gjson.False, gjson.Null:
	default:
		return nil, nil, respBad("stream", "'stream' must be a boolean.")
	}
	return append(b, '}'), meta, nil
}

// respSet reports whether v is present and not null.
func respSet(v gjson.Result) bool { return v.Exists() && v.Type != gjson.Null }

// rawIf is v's raw JSON when it is set, else "".
func rawIf(v gjson.Result) string {
	if !respSet(v) {
		return ""
	}
	return v.Raw
}

// respAppendText writes text.format as response_format and text.verbosity
// as verbosity.
func respAppendText(b []byte, text gjson.Result) ([]byte, error) {
	if !respSet(text) {
		return b, nil
	}
	if !text.IsObject() {
		return nil, respBad("text", "'text' must be an object.")
	}
	if v := text.Get("verbosity"); v.Type == gjson.String {
		b = append(b, `,"verbosity":`...)
		b = appendJSONString(b, v.Str)
	}
	format := text.Get("format")
	if !respSet(format) {
		return b, nil
	}
	switch typ := format.Get("type").String(); typ {
	case "text":
		return b, nil
	case "json_object":
		return append(b, `,"response_format":{"type":"json_object"}`...), nil
	case "json_schema":
		schema, name := format.Get("schema"), format.Get("name")
		if !schema.IsObject() {
			return nil, respBad("text.format.schema", "'text.format.schema' must be an object.")
		}
		if name.Type != gjson.String || name.Str == "" {
			return nil, respBad("text.format.name", "Missing required parameter: 'text.format.name'.")
		}
		b = append(b, `,"response_format":{"type":"json_schema","json_schema":{"name":`...)
		b = appendJSONString(b, name.Str)
		if d := format.Get("description"); d.Type == gjson.String {
			b = append(b, `,"description":`...)
			b = appendJSONString(b, d.Str)
		}
		if s := format.Get("strict"); s.Type == gjson.True || s.Type == gjson.False {
			b = append(b, `,"strict":`...)
			b = append(b, s.Raw...)
		}
		b = append(b, `,"schema":`...)
		b = append(b, schema.Raw...)
		return append(b, "}}"...), nil
	default:
		return nil, respBad("text.format.type", "Invalid value for 'text.format.type': %q; expected text, json_object or json_schema.", typ)
	}
}

// respToolSel is what tool_choice asks for: the chat tool_choice to write
// and, for allowed_tools, the tools the model may see.
type respToolSel struct {
	choice  string          // raw chat tool_choice, "" for none given
	allowed map[string]bool // nil: every tool
}

func respToolChoice(be *config.RBackend, c gjson.Result) (respToolSel, error) {
	var sel respToolSel
	switch {
	case !respSet(c):
		return sel, nil
	case c.Type == gjson.String:
		switch c.Str {
		case "auto", "none", "required":
			sel.choice = `"` + c.Str + `"`
			return sel, nil
		}
		return sel, respBad("tool_choice", "Invalid value for 'tool_choice': %q; expected auto, none or required.", c.Str)
	case !c.IsObject():
		return sel, respBad("tool_choice", "'tool_choice' must be a string or an object.")
	}
	switch typ := c.Get("type").String(); typ {
	case "function", "custom":
		name := c.Get("name")
		if name.Type != gjson.String || name.Str == "" {
			return sel, respBad("tool_choice.name", "Missing required parameter: 'tool_choice.name'.")
		}
		sel.choice = string(appendJSONString([]byte(`{"type":"function","function":{"name":`), name.Str)) + "}}"
	case "allowed_tools":
		mode := c.Get("mode").String()
		switch mode {
		case "auto", "required":
		case "":
			mode = "auto"
		default:
			return sel, respBad("tool_choice.mode", "Invalid value for 'tool_choice.mode': %q; expected auto or required.", mode)
		}
		sel.choice = `"` + mode + `"`
		sel.allowed = map[string]bool{}
		c.Get("tools").ForEach(func(_, t gjson.Result) bool {
			if n := t.Get("name"); n.Type == gjson.String {
				sel.allowed[n.Str] = true
			} else {
				sel.allowed["\x00"+t.Get("type").String()] = true // a built-in tool, by type
			}
			return true
		})
	default:
		if err := Unsupported(be, "tool_choice"); err != nil {
			return sel, respUnsupported(be, "tool_choice", "tool_choice "+strconv.Quote(typ)+" names a built-in tool llmproc cannot force on this backend")
		}
	}
	return sel, nil
}

// respAppendTools writes tools (function, custom and the functions of
// namespaces; web_search as web_search_options) and tool_choice, and
// records the custom and namespaced tools in meta.
func respAppendTools(b []byte, be *config.RBackend, tools, choice gjson.Result, meta *ResponsesMeta) ([]byte, bool, error) {
	sel, err := respToolChoice(be, choice)
	if err != nil {
		return nil, false, err
	}
	if respSet(tools) && !tools.IsArray() {
		return nil, false, respBad("tools", "'tools' must be an array.")
	}
	n := 0
	var search gjson.Result
	var walk func(prefix string, list gjson.Result, ns string) bool
	walk = func(prefix string, list gjson.Result, ns string) bool {
		i := -1
		list.ForEach(func(_, t gjson.Result) bool {
			i++
			p := prefix + "[" + strconv.Itoa(i) + "]"
			typ := t.Get("type").String()
			name := t.Get("name")
			switch typ {
			case "function", "custom":
				if name.Type != gjson.String || name.Str == "" {
					err = respBad(p+".name", "Missing required parameter: '%s.name'.", p)
					return false
				}
				if ns != "" {
					if meta.namespace == nil {
						meta.namespace = map[string]string{}
					}
					meta.namespace[name.Str] = ns
				}
				if sel.allowed != nil && !sel.allowed[name.Str] {
					return true
				}
				if n == 0 {
					b = append(b, `,"tools":[`...)
				} else {
					b = append(b, ',')
				}
				n++
				if typ == "custom" {
					if meta.custom == nil {
						meta.custom = map[string]bool{}
					}
					meta.custom[name.Str] = true
					b = respCustomTool(b, name.Str, t)
					return true
				}
				b = append(b, `{"type":"function","function":{"name":`...)
				b = appendJSONString(b, name.Str)
				if d := t.Get("description"); d.Type == gjson.String {
					b = append(b, `,"description":`...)
					b = appendJSONString(b, d.Str)
				}
				b = append(b, `,"parameters":`...)
				if params := t.Get("parameters"); params.IsObject() {
					b = append(b, params.Raw...)
				} else {
					b = append(b, `{"type":"object","properties":{}}`...)
				}
				if s := t.Get("strict"); s.Type == gjson.True || s.Type == gjson.False {
					b = append(b, `,"strict":`...)
					b = append(b, s.Raw...)
				}
				b = append(b, "}}"...)
			case "namespace":
				nsName := name.String()
				if !walk(p+".tools", t.Get("tools"), nsName) {
					return false
				}
			case "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11":
				if sel.allowed == nil || sel.allowed["\x00"+typ] {
					search = t
				}
			default:
				if sel.allowed != nil && !sel.allowed["\x00"+typ] {
					return true
				}
				if err = respUnsupportedTool(be, p, typ); err != nil {
					return false
				}
			}
			return true
		})
		return err == nil
	}
	if respSet(tools) && !walk("tools", tools, "") {
		return nil, false, err
	}
	if n > 0 {
		b = append(b, ']')
		if sel.choice != "" {
			b = append(b, `,"tool_choice":`...)
			b = append(b, sel.choice...)
		}
	} else if strings.HasPrefix(sel.choice, "{") || sel.choice == `"required"` && !search.Exists() {
		return nil, false, respBad("tool_choice", "'tool_choice' requires tools.")
	}
	if search.Exists() {
		b = respWebSearch(b, search)
	}
	return b, n > 0, nil
}

// respWebSearch writes a web_search tool as chat's web_search_options: its
// search_context_size, and its user_location (flat in Responses) nested
// under approximate, as chat has it. Domain filters have no chat
// equivalent and are dropped.
func respWebSearch(b []byte, t gjson.Result) []byte {
	b = append(b, `,"web_search_options":{`...)
	n := 0
	if v := t.Get("search_context_size"); v.Type == gjson.String {
		b = append(b, `"search_context_size":`...)
		b = appendJSONString(b, v.Str)
		n++
	}
	if loc := t.Get("user_location"); loc.IsObject() {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `"user_location":{"type":"approximate","approximate":{`...)
		k := 0
		for _, f := range []string{"city", "region", "country", "timezone"} {
			if v := loc.Get(f); v.Type == gjson.String {
				if k > 0 {
					b = append(b, ',')
				}
				k++
				b = appendJSONString(b, f)
				b = append(b, ':')
				b = appendJSONString(b, v.Str)
			}
		}
		b = append(b, "}}"...)
	}
	return append(b, '}')
}

// respCustomTool writes a custom (freeform) tool as a function taking its
// whole input as one string.
func respCustomTool(b []byte, name string, t gjson.Result) []byte {
	desc := t.Get("description").String()
	if f := t.Get("format"); f.Get("type").String() == "grammar" {
		def := f.Get("definition").String()
		syntax := f.Get("syntax").String()
		if desc != "" {
			desc += "\n\n"
		}
		desc += "The input must match this " + syntax + " grammar:\n" + def
	}
	b = append(b, `{"type":"function","function":{"name":`...)
	b = appendJSONString(b, name)
	if desc != "" {
		b = append(b, `,"description":`...)
		b = appendJSONString(b, desc)
	}
	return append(b, `,"parameters":{"type":"object","properties":{"input":{"type":"string","description":"The tool's whole input, as free-form text."}},"required":["input"],"additionalProperties":false}}}`...)
}
