package translate

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// This file serves clients that speak Anthropic's Messages API
// (POST /v1/messages). Their request becomes an OpenAI chat-completions body,
// llmproc's one internal schema, so any backend's translator can take it; the
// OpenAI answer (already normalized by that translator) becomes Anthropic's
// Messages output again, JSON or SSE.
//
// Choices where the two schemas do not meet:
//   - thinking becomes reasoning_effort through the budget ⇄ effort table
//     (reasoning.go): enabled with budget_tokens → the effort of that budget;
//     adaptive → output_config.effort (max → high), or none sent (the
//     backend's default) without one; disabled → none sent. output_config.effort
//     without thinking becomes reasoning_effort too.
//   - Fields that only tune how an Anthropic model works are dropped, so an
//     agent such as Claude Code, which sends them with every request, works
//     with any backend: context_management and top_k (chat-completions has
//     none).
//   - The web_search server tool (web_search_20250305 and later) becomes
//     web_search_options (user_location kept; max_uses, allowed_domains and
//     blocked_domains have no equivalent and are dropped). Other server
//     tools (tool search, code execution...) are dropped: the backend cannot
//     run them. defer_loading is ignored: a deferred tool is declared like
//     any other.
//   - A message with role "system" inside messages becomes an OpenAI system
//     message in its place.
//   - Signed thinking and redacted_thinking blocks in assistant history go
//     to the hub's thinking_blocks, for backends that verify them (Claude on
//     Bedrock); unsigned ones (from a backend without signatures) are
//     dropped, as Anthropic itself ignores thinking in earlier turns.
//   - cache_control is a caching hint and is dropped; service_tier too.
//   - tool_result content is flattened to one string (text blocks joined by
//     "\n"); is_error prefixes it with "Error: ". Images inside tool results
//     are refused: OpenAI tool messages carry text only.
//   - output_config.format / output_format json_schema becomes response_format
//     json_schema (name "output", strict).
//   - Unknown top-level fields are refused, as Anthropic refuses them.
//   - A stream's message_start carries llmproc's estimate of input_tokens
//     (chat-completions reports usage only at the end) and output_tokens 0;
//     message_delta carries the backend's exact counts, all four, which
//     current Anthropic SDKs and Claude Code read from it.
//   - Answers: reasoning_content becomes a thinking block (signature "" when
//     the backend signs nothing), thinking_blocks become thinking blocks with
//     their signatures and redacted_thinking blocks; with thinking.display
//     "omitted" the thinking text is left out (signed blocks keep their
//     signature, unsigned ones are not sent). url_citation annotations
//     become web_search_result_location citations (no encrypted_index): in
//     JSON on a text block per cited span, streamed as citations_delta on
//     the open text block.

// AnthropicRequestToOpenAI converts an Anthropic Messages request body into an OpenAI chat-completions body.
// It returns *apierr.Error (400, Anthropic-meaningful message, Param set) for invalid input: not JSON, missing model / messages / max_tokens, bad roles or blocks.
// The OpenAI body always has stream_options.include_usage=true when stream is true (Anthropic clients always get usage).
func AnthropicRequestToOpenAI(body []byte) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, caBad("", "the request body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, caBad("", "the request body must be a JSON object")
	}
	var f struct {
		model, messages, maxTokens, system, stop, stream, temperature, topP gjson.Result
		metadata, tools, toolChoice, outputFormat, outputConfig             gjson.Result
		thinking                                                            gjson.Result
	}
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			f.model = v
		case "messages":
			f.messages = v
		case "max_tokens":
			f.maxTokens = v
		case "system":
			f.system = v
		case "stop_sequences":
			f.stop = v
		case "stream":
			f.stream = v
		case "temperature":
			f.temperature = v
		case "top_p":
			f.topP = v
		case "metadata":
			f.metadata = v
		case "tools":
			f.tools = v
		case "tool_choice":
			f.toolChoice = v
		case "output_format":
			f.outputFormat = v
		case "output_config":
			f.outputConfig = v
		case "thinking":
			f.thinking = v
		case "service_tier", "top_k", "context_management":
			// Dropped: how the model works, not what it answers (see above).
		default:
			err = caUnsupported(k.Str, "llmproc does not translate this field")
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if f.model.Type != gjson.String || f.model.Str == "" {
		return nil, caBad("model", "model: Field required")
	}
	maxTokens, ok := caPositiveInt(f.maxTokens)
	if !ok {
		if !f.maxTokens.Exists() {
			return nil, caBad("max_tokens", "max_tokens: Field required")
		}
		return nil, caBad("max_tokens", "max_tokens: Input should be a positive integer")
	}
	if !f.messages.IsArray() {
		return nil, caBad("messages", "messages: Field required (a list of messages)")
	}

	b := make([]byte, 0, len(body)+128)
	b = append(b, `{"model":`...)
	b = appendJSONString(b, f.model.Str)
	b = append(b, `,"messages":[`...)
	w := caMsgWriter{b: b}
	if err := w.system(f.system); err != nil {
		return nil, err
	}
	n := 0
	var merr error
	f.messages.ForEach(func(_, m gjson.Result) bool {
		merr = w.message(n, m)
		n++
		return merr == nil
	})
	if merr != nil {
		return nil, merr
	}
	if n == 0 {
		return nil, caBad("messages", "messages: at least one message is required")
	}
	b = append(w.b, `],"max_tokens":`...)
	b = strconv.AppendInt(b, maxTokens, 10)

	if f.stop.Exists() && f.stop.Type != gjson.Null {
		if !f.stop.IsArray() {
			return nil, caBad("stop_sequences", "stop_sequences: Input should be a list of strings")
		}
		stops := f.stop.Array()
		for i, s := range stops {
			if s.Type != gjson.String {
				return nil, caBad(fmt.Sprintf("stop_sequences.%d", i), fmt.Sprintf("stop_sequences.%d: Input should be a string", i))
			}
		}
		if len(stops) > 0 {
			b = append(b, `,"stop":[`...)
			for i, s := range stops {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, s.Str)
			}
			b = append(b, ']')
		}
	}
	for _, p := range []struct {
		name string
		v    gjson.Result
	}{{"temperature", f.temperature}, {"top_p", f.topP}} {
		switch p.v.Type {
		case gjson.Null:
		case gjson.Number:
			b = append(b, `,"`...)
			b = append(b, p.name...)
			b = append(b, `":`...)
			b = append(b, p.v.Raw...)
		default:
			return nil, caBad(p.name, p.name+": Input should be a number")
		}
	}
	b, err = caAppendTools(b, f.tools, f.toolChoice)
	if err != nil {
		return nil, err
	}
	b, err = caAppendReasoning(b, f.thinking, f.outputConfig.Get("effort"))
	if err != nil {
		return nil, err
	}
	b, err = caAppendFormat(b, f.outputFormat, f.outputConfig)
	if err != nil {
		return nil, err
	}
	if f.metadata.Exists() && f.metadata.Type != gjson.Null {
		if !f.metadata.IsObject() {
			return nil, caBad("metadata", "metadata: Input should be an object")
		}
		if u := f.metadata.Get("user_id"); u.Type == gjson.String {
			b = append(b, `,"user":`...)
			b = appendJSONString(b, u.Str)
		} else if u.Exists() && u.Type != gjson.Null {
			return nil, caBad("metadata.user_id", "metadata.user_id: Input should be a string")
		}
	}
	switch f.stream.Type {
	case gjson.True:
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	case gjson.False, gjson.Null:
	default:
		return nil, caBad("stream", "stream: Input should be a boolean")
	}
	return append(b, '}'), nil
}

// caPositiveInt reads a JSON integer ≥ 1.
func caPositiveInt(v gjson.Result) (int64, bool) {
	if v.Type != gjson.Number || v.Num < 1 || v.Num > math.MaxInt32 || v.Num != math.Trunc(v.Num) {
		return 0, false
	}
	return int64(v.Num), true
}

// caBad is a 400 for an invalid Anthropic request; param is Anthropic's
// dotted path to the offending field.
func caBad(param, msg string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Param: param, Message: msg}
}

// caUnsupported is a 400 for a valid Anthropic field that cannot cross
// chat-completions.
func caUnsupported(param, why string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "unsupported_parameter", Param: param,
		Message: fmt.Sprintf("%s: not supported on llmproc's /v1/messages: %s.", param, why)}
}

// caLoc locates a content block for error messages: messages.<msg>,
// .content.<block> when block ≥ 0, .content.<part> when part ≥ 0. The
// string is built only when an error needs it.
type caLoc struct{ msg, block, part int }

func (l caLoc) s() string {
	b := strconv.AppendInt([]byte("messages."), int64(l.msg), 10)
	if l.block >= 0 {
		b = strconv.AppendInt(append(b, ".content."...), int64(l.block), 10)
	}
	if l.part >= 0 {
		b = strconv.AppendInt(append(b, ".content."...), int64(l.part), 10)
	}
	return string(b)
}

// caMsgWriter appends OpenAI messages, comma-separated.
type caMsgWriter struct {
	b []byte
	n int
}

func (w *caMsgWriter) open(role string) {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = append(w.b, `{"role":"`...)
	w.b = append(w.b, role...)
	w.b = append(w.b, `","content":`...)
}

// system writes Anthropic's top-level system prompt as a system message.
func (w *caMsgWriter) system(s gjson.Result) error {
	switch {
	case !s.Exists() || s.Type == gjson.Null:
		return nil
	case s.Type == gjson.String:
		if s.Str != "" {
			w.open("system")
			w.b = appendJSONString(w.b, s.Str)
			w.b = append(w.b, '}')
		}
		return nil
	case !s.IsArray():
		return caBad("system", "system: Input should be a string or a list of text blocks")
	}
	blocks := s.Array()
	for i, blk := range blocks {
		if blk.Get("type").String() != "text" || blk.Get("text").Type != gjson.String {
			p := fmt.Sprintf("system.%d", i)
			return caBad(p, p+": only text blocks with a text field are allowed in system")
		}
	}
	if len(blocks) == 0 {
		return nil
	}
	w.open("system")
	w.b = caTextParts(w.b, blocks)
	w.b = append(w.b, '}')
	return nil
}

// caTextParts writes one text block as a string and several as an array
// of OpenAI text parts.
func caTextParts(b []byte, blocks []gjson.Result) []byte {
	if len(blocks) == 1 {
		return appendJSONString(b, blocks[0].Get("text").Str)
	}
	b = append(b, '[')
	for i, blk := range blocks {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"text","text":`...)
		b = appendJSONString(b, blk.Get("text").Str)
		b = append(b, '}')
	}
	return append(b, ']')
}

// message writes Anthropic messages[i] as one or more OpenAI messages.
func (w *caMsgWriter) message(i int, m gjson.Result) error {
	at := caLoc{i, -1, -1}
	if !m.IsObject() {
		return caBad(at.s(), at.s()+": Input should be an object")
	}
	role, content := m.Get("role"), m.Get("content")
	if role.Str != "user" && role.Str != "assistant" && role.Str != "system" || role.Type != gjson.String {
		return caBad(at.s()+".role", at.s()+".role: Input should be 'user', 'assistant' or 'system'")
	}
	if role.Str == "system" && content.IsArray() {
		for j, blk := range content.Array() {
			if blk.Get("type").String() != "text" || blk.Get("text").Type != gjson.String {
				p := caLoc{i, j, -1}.s()
				return caBad(p, p+": only text blocks with a text field are allowed in a system message")
			}
		}
		w.open("system")
		w.b = caTextParts(w.b, content.Array())
		w.b = append(w.b, '}')
		return nil
	}
	if content.Type == gjson.String {
		w.open(role.Str)
		w.b = appendJSONString(w.b, content.Str)
		w.b = append(w.b, '}')
		return nil
	}
	if !content.IsArray() {
		return caBad(at.s()+".content", at.s()+".content: Input should be a string or a list of content blocks")
	}
	blocks := content.Array()
	for j, blk := range blocks {
		p := caLoc{at.msg, j, -1}
		if !blk.IsObject() || blk.Get("type").Type != gjson.String {
			return caBad(p.s(), p.s()+": a content block must be an object with a type")
		}
	}
	if role.Str == "assistant" {
		return w.assistant(at, blocks)
	}
	return w.user(at, blocks)
}

func (w *caMsgWriter) user(at caLoc, blocks []gjson.Result) error {
	// Tool results become role "tool" messages, which OpenAI wants right
	// after the assistant's tool_calls: first, in order, then the rest.
	parts, texts, results := 0, 0, 0
	for j, blk := range blocks {
		p := caLoc{at.msg, j, -1}
		switch t := blk.Get("type").Str; t {
		case "text":
			if blk.Get("text").Type != gjson.String {
				return caBad(p.s()+".text", p.s()+".text: Field required")
			}
			parts++
			texts++
		case "image":
			if _, err := caImageURL(p, blk); err != nil {
				return err
			}
			parts++
		case "tool_result":
			if err := w.toolResult(p, blk); err != nil {
				return err
			}
			results++
		case "document", "search_result", "container_upload":
			return caUnsupported(p.s()+".type", fmt.Sprintf("%s blocks have no OpenAI chat-completions equivalent", t))
		default:
			return caBad(p.s()+".type", fmt.Sprintf("%s.type: %q blocks are not allowed in user messages", p.s(), t))
		}
	}
	if parts == 0 {
		if results == 0 {
			return caBad(at.s()+".content", at.s()+".content: at least one content block is required")
		}
		return nil
	}
	w.open("user")
	if parts == 1 && texts == 1 {
		for _, blk := range blocks {
			if blk.Get("type").Str == "text" {
				w.b = appendJSONString(w.b, blk.Get("text").Str)
			}
		}
		w.b = append(w.b, '}')
		return nil
	}
	w.b = append(w.b, '[')
	k := 0
	for j, blk := range blocks {
		t := blk.Get("type").Str
		if t != "text" && t != "image" {
			continue
		}
		if k > 0 {
			w.b = append(w.b, ',')
		}
		k++
		if t == "text" {
			w.b = append(w.b, `{"type":"text","text":`...)
			w.b = appendJSONString(w.b, blk.Get("text").Str)
			w.b = append(w.b, '}')
			continue
		}
		url, _ := caImageURL(caLoc{at.msg, j, -1}, blk)
		w.b = append(w.b, `{"type":"image_url","image_url":{"url":`...)
		w.b = append(w.b, url...)
		w.b = append(w.b, "}}"...)
	}
	w.b = append(w.b, "]}"...)
	return nil
}

// caImageURL returns an Anthropic image block's source as a JSON string: a
// data URL for base64 data, the URL for url sources.
func caImageURL(p caLoc, blk gjson.Result) ([]byte, error) {
	src := blk.Get("source")
	switch src.Get("type").String() {
	case "base64":
		mt, data := src.Get("media_type"), src.Get("data")
		if mt.Type != gjson.String || mt.Str == "" || data.Type != gjson.String || data.Str == "" {
			return nil, caBad(p.s()+".source", p.s()+".source: base64 images need media_type and data")
		}
		return appendJSONString(nil, "data:"+mt.Str+";base64,"+data.Str), nil
	case "url":
		u := src.Get("url")
		if u.Type != gjson.String || u.Str == "" {
			return nil, caBad(p.s()+".source.url", p.s()+".source.url: Field required")
		}
		return appendJSONString(nil, u.Str), nil
	case "file":
		return nil, caUnsupported(p.s()+".source.type", "file sources (the Files API) cannot be sent through OpenAI chat-completions")
	}
	return nil, caBad(p.s()+".source.type", p.s()+".source.type: Input should be 'base64' or 'url'")
}

func (w *caMsgWriter) toolResult(p caLoc, blk gjson.Result) error {
	id := blk.Get("tool_use_id")
	if id.Type != gjson.String || id.Str == "" {
		return caBad(p.s()+".tool_use_id", p.s()+".tool_use_id: Field required")
	}
	var sb strings.Builder
	if blk.Get("is_error").Bool() {
		sb.WriteString("Error: ")
	}
	c := blk.Get("content")
	switch {
	case c.Type == gjson.String:
		sb.WriteString(c.Str)
	case c.IsArray():
		var err error
		k := 0
		c.ForEach(func(_, part gjson.Result) bool {
			pp := caLoc{p.msg, p.block, k}
			k++
			switch t := part.Get("type").String(); t {
			case "text":
				if k > 1 {
					sb.WriteByte('\n')
				}
				sb.WriteString(part.Get("text").String())
			case "image":
				err = caUnsupported(pp.s()+".type", "OpenAI tool messages carry text only, not images")
			default:
				err = caBad(pp.s()+".type", fmt.Sprintf("%s.type: %q blocks are not allowed in tool_result content", pp.s(), t))
			}
			return err == nil
		})
		if err != nil {
			return err
		}
	case !c.Exists() || c.Type == gjson.Null:
	default:
		return caBad(p.s()+".content", p.s()+".content: Input should be a string or a list of content blocks")
	}
	w.open("tool")
	w.b = appendJSONString(w.b, sb.String())
	w.b = append(w.b, `,"tool_call_id":`...)
	w.b = appendJSONString(w.b, id.Str)
	w.b = append(w.b, '}')
	return nil
}

func (w *caMsgWriter) assistant(at caLoc, blocks []gjson.Result) error {
	texts := make([]gjson.Result, 0, len(blocks))
	calls := 0
	var thinking []ThinkingBlock
	for j, blk := range blocks {
		p := caLoc{at.msg, j, -1}
		switch t := blk.Get("type").Str; t {
		case "text":
			if blk.Get("text").Type != gjson.String {
				return caBad(p.s()+".text", p.s()+".text: Field required")
			}
			texts = append(texts, blk)
		case "tool_use":
			id, name, input := blk.Get("id"), blk.Get("name"), blk.Get("input")
			if id.Type != gjson.String || id.Str == "" {
				return caBad(p.s()+".id", p.s()+".id: Field required")
			}
			if name.Type != gjson.String || name.Str == "" {
				return caBad(p.s()+".name", p.s()+".name: Field required")
			}
			if input.Exists() && !input.IsObject() {
				return caBad(p.s()+".input", p.s()+".input: Input should be an object")
			}
			calls++
		case "thinking":
			if sig := blk.Get("signature").Str; sig != "" {
				thinking = append(thinking, ThinkingBlock{Kind: "thinking", Text: blk.Get("thinking").Str, Signature: sig})
			}
		case "redacted_thinking":
			if d := blk.Get("data").Str; d != "" {
				thinking = append(thinking, ThinkingBlock{Kind: "redacted_thinking", Data: d})
			}
		default:
			return caBad(p.s()+".type", fmt.Sprintf("%s.type: %q blocks are not allowed in assistant messages", p.s(), t))
		}
	}
	w.open("assistant")
	switch {
	case len(texts) > 0:
		w.b = caTextParts(w.b, texts)
	case calls > 0:
		w.b = append(w.b, "null"...)
	default:
		w.b = append(w.b, `""`...)
	}
	if calls > 0 {
		w.b = append(w.b, `,"tool_calls":[`...)
		k := 0
		for _, blk := range blocks {
			if blk.Get("type").Str != "tool_use" {
				continue
			}
			if k > 0 {
				w.b = append(w.b, ',')
			}
			k++
			args := "{}"
			if in := blk.Get("input"); in.Exists() {
				args = in.Raw
			}
			w.b = appendToolCall(w.b, -1, blk.Get("id").Str, blk.Get("name").Str, args)
		}
		w.b = append(w.b, ']')
	}
	if len(thinking) > 0 {
		w.b = append(w.b, `,"thinking_blocks":[`...)
		for i, tb := range thinking {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendThinkingBlock(w.b, tb)
		}
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
	return nil
}

// caAppendTools writes tools, tool_choice and parallel_tool_calls.
func caAppendTools(b []byte, tools, choice gjson.Result) ([]byte, error) {
	n := 0
	webSearch, ws := false, ""
	if tools.Exists() && tools.Type != gjson.Null {
		if !tools.IsArray() {
			return nil, caBad("tools", "tools: Input should be a list")
		}
		var err error
		i := -1
		tools.ForEach(func(_, t gjson.Result) bool {
			i++
			p := "tools." + strconv.Itoa(i)
			name, desc, schema := t.Get("name"), t.Get("description"), t.Get("input_schema")
			if typ := t.Get("type"); typ.Exists() && typ.Type != gjson.Null && typ.Str != "custom" {
				if strings.HasPrefix(typ.Str, "web_search_") && !webSearch {
					webSearch = true
					ws = caWebSearchOptions(t.Get("user_location"))
				}
				return true // a server tool: dropped or mapped (see above)
			}
			switch {
			case name.Type != gjson.String || name.Str == "":
				err = caBad(p+".name", p+".name: Field required")
			case !schema.IsObject():
				err = caBad(p+".input_schema", p+".input_schema: Field required (an object)")
			case desc.Exists() && desc.Type != gjson.String && desc.Type != gjson.Null:
				err = caBad(p+".description", p+".description: Input should be a string")
			}
			if err != nil {
				return false
			}
			if n == 0 {
				b = append(b, `,"tools":[`...)
			} else {
				b = append(b, ',')
			}
			n++
			b = append(b, `{"type":"function","function":{"name":`...)
			b = appendJSONString(b, name.Str)
			if desc.Type == gjson.String {
				b = append(b, `,"description":`...)
				b = appendJSONString(b, desc.Str)
			}
			b = append(b, `,"parameters":`...)
			b = append(b, schema.Raw...)
			if s := t.Get("strict"); s.Type == gjson.True || s.Type == gjson.False {
				b = append(b, `,"strict":`...)
				b = append(b, s.Raw...)
			}
			b = append(b, "}}"...)
			return true
		})
		if err != nil {
			return nil, err
		}
		if n > 0 {
			b = append(b, ']')
		}
	}
	if webSearch {
		b = append(b, `,"web_search_options":`...)
		b = append(b, ws...)
	}
	if !choice.Exists() || choice.Type == gjson.Null {
		return b, nil
	}
	if !choice.IsObject() {
		return nil, caBad("tool_choice", "tool_choice: Input should be an object")
	}
	typ := choice.Get("type").String()
	switch typ {
	case "auto", "any", "tool", "none":
	default:
		return nil, caBad("tool_choice.type", "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
	}
	if n == 0 {
		if typ == "any" || typ == "tool" {
			return nil, caBad("tool_choice", "tool_choice: requires tools")
		}
		return b, nil
	}
	b = append(b, `,"tool_choice":`...)
	switch typ {
	case "auto":
		b = append(b, `"auto"`...)
	case "any":
		b = append(b, `"required"`...)
	case "none":
		b = append(b, `"none"`...)
	case "tool":
		name := choice.Get("name")
		if name.Type != gjson.String || name.Str == "" {
			return nil, caBad("tool_choice.name", "tool_choice.name: Field required")
		}
		b = append(b, `{"type":"function","function":{"name":`...)
		b = appendJSONString(b, name.Str)
		b = append(b, "}}"...)
	}
	if choice.Get("disable_parallel_tool_use").Type == gjson.True && typ != "none" {
		b = append(b, `,"parallel_tool_calls":false`...)
	}
	return b, nil
}

// caWebSearchOptions writes the web_search_options of Anthropic's web
// search tool: its user_location, the one setting OpenAI's has too.
func caWebSearchOptions(loc gjson.Result) string {
	b := []byte(`{`)
	if loc.IsObject() {
		n := 0
		for _, k := range []string{"city", "region", "country", "timezone"} {
			v := loc.Get(k)
			if v.Type != gjson.String || v.Str == "" {
				continue
			}
			if n == 0 {
				b = append(b, `"user_location":{"type":"approximate","approximate":{`...)
			} else {
				b = append(b, ',')
			}
			n++
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, v.Str)
		}
		if n > 0 {
			b = append(b, "}}"...)
		}
	}
	return string(append(b, '}'))
}

// caAppendReasoning writes reasoning_effort for Anthropic's thinking and
// output_config.effort (see the file comment).
func caAppendReasoning(b []byte, thinking, effort gjson.Result) ([]byte, error) {
	out := ""
	if effort.Exists() && effort.Type != gjson.Null {
		switch effort.Str {
		case "low", "medium", "high":
			out = effort.Str
		case "max", "xhigh":
			out = "high"
		default:
			return nil, caBad("output_config.effort", "output_config.effort: Input should be 'low', 'medium', 'high' or 'max'")
		}
	}
	switch {
	case !thinking.Exists() || thinking.Type == gjson.Null:
	case !thinking.IsObject():
		return nil, caBad("thinking", "thinking: Input should be an object")
	default:
		switch typ := thinking.Get("type").Str; typ {
		case "enabled":
			n, ok := caPositiveInt(thinking.Get("budget_tokens"))
			if !ok {
				return nil, caBad("thinking.budget_tokens", "thinking.budget_tokens: Input should be a positive integer")
			}
			if out == "" {
				out = ReasoningEffort(n)
			}
		case "adaptive":
		case "disabled":
			out = ""
		default:
			return nil, caBad("thinking.type", "thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'")
		}
	}
	if out == "" {
		return b, nil
	}
	b = append(b, `,"reasoning_effort":"`...)
	b = append(b, out...)
	return append(b, '"'), nil
}

// caAppendFormat writes response_format from output_config.format (GA) or
// output_format (beta).
func caAppendFormat(b []byte, legacy, cfg gjson.Result) ([]byte, error) {
	format, at := legacy, "output_format"
	if cfg.Exists() && cfg.Type != gjson.Null {
		if !cfg.IsObject() {
			return nil, caBad("output_config", "output_config: Input should be an object")
		}
		var err error
		cfg.ForEach(func(k, v gjson.Result) bool {
			switch {
			case k.Str == "format":
				format, at = v, "output_config.format"
			case k.Str == "effort": // dropped with thinking (see above)
			case v.Type != gjson.Null:
				err = caUnsupported("output_config."+k.Str, "it has no OpenAI chat-completions equivalent")
			}
			return err == nil
		})
		if err != nil {
			return nil, err
		}
	}
	if !format.Exists() || format.Type == gjson.Null {
		return b, nil
	}
	if format.Get("type").String() != "json_schema" {
		return nil, caBad(at+".type", at+".type: Input should be 'json_schema'")
	}
	schema := format.Get("schema")
	if !schema.IsObject() {
		return nil, caBad(at+".schema", at+".schema: Field required (an object)")
	}
	b = append(b, `,"response_format":{"type":"json_schema","json_schema":{"name":"output","strict":true,"schema":`...)
	b = append(b, schema.Raw...)
	return append(b, "}}"...), nil
}
