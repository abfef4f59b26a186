package translate

import (
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// anthropic speaks Anthropic's Messages API (POST /v1/messages).
//
// Requests: system and developer messages become the top-level system
// blocks; consecutive messages of one role are merged, as Anthropic requires
// user and assistant turns to alternate; tool results become user
// tool_result blocks; response_format json_schema becomes
// output_config.format (Anthropic's structured outputs), json_object has no
// equivalent and is Unsupported.
//
// Answers: a message becomes one chat.completion, a stream of Anthropic
// events becomes OpenAI chunks ending with the usage chunk and [DONE], and
// errors become OpenAI error JSON (529 overloaded → 503).
type anthropic struct {
	now func() time.Time // stamps "created" in answers
}

const anthropicMessagesPath = "/v1/messages"

// anthropicFields are the top-level members of a chat request the Anthropic
// translator reads, gathered in one pass.
type anthropicFields struct {
	messages, tools, toolChoice, parallel, responseFormat, stop gjson.Result
	maxTokens, maxCompletion, temperature, topP, user           gjson.Result
	effort, webSearch                                           gjson.Result
}

// anthSet reports whether a member is present and not null.
func anthSet(v gjson.Result) bool { return v.Exists() && v.Type != gjson.Null }

func (a anthropic) Request(r *Request) (*Upstream, error) {
	if !gjson.ValidBytes(r.Body) {
		return nil, apierr.BadRequest("invalid_json", "We could not parse the JSON body of your request. The request body must be valid JSON.")
	}
	be := r.Backend
	var f anthropicFields
	var err error
	gjson.Parse(unsafe.String(unsafe.SliceData(r.Body), len(r.Body))).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "messages":
			f.messages = v
		case "tools":
			f.tools = v
		case "tool_choice":
			f.toolChoice = v
		case "parallel_tool_calls":
			f.parallel = v
		case "response_format":
			f.responseFormat = v
		case "stop":
			f.stop = v
		case "max_tokens":
			f.maxTokens = v
		case "max_completion_tokens":
			f.maxCompletion = v
		case "temperature":
			f.temperature = v
		case "top_p":
			f.topP = v
		case "user", "safety_identifier":
			if !anthSet(f.user) {
				f.user = v
			}
		case "reasoning_effort":
			f.effort = v
		case "web_search_options":
			f.webSearch = v
		default:
			if anthUnsupportedParam(k.Str, v) {
				err = Unsupported(be, k.Str)
			}
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}

	w := anthropicWriter{be: be, msgs: make([]byte, 0, len(r.Body)+len(r.Body)/4)}
	if err := w.messages(f.messages); err != nil {
		return nil, err
	}
	_, budget, err := hubEffort(f.effort)
	if err != nil {
		return nil, err
	}
	if budget > 0 && (claudeForcedToolChoice(f.toolChoice) || w.lastToolsUnsigned) {
		// Anthropic refuses thinking with a forced tool, and when the last
		// assistant turn called tools without its signed thinking (history
		// from another backend or a client that dropped it): the request
		// goes without thinking.
		budget = 0
	}
	maxTokens, err := anthMaxTokens(be, f)
	if err != nil {
		return nil, err
	}
	think := claudeThinkingFor(budget, maxTokens)

	model := r.Model
	if model == "" {
		model = r.ClientModel
	}
	out := make([]byte, 0, len(r.Body)+256)
	out = append(out, `{"model":`...)
	out = appendJSONString(out, model)
	out = append(out, `,"max_tokens":`...)
	out = strconv.AppendInt(out, think.maxTokens, 10)
	if think.budget > 0 {
		out = append(out, `,"thinking":`...)
		out = appendClaudeThinking(out, think.budget)
	}
	if len(w.system) > 0 {
		out = append(out, `,"system":[`...)
		out = append(out, w.system...)
		out = append(out, ']')
	}
	out = append(out, `,"messages":[`...)
	out = append(out, w.msgs...)
	out = append(out, ']')
	if out, err = anthTools(out, be, f, readWebSearchOptions(f.webSearch)); err != nil {
		return nil, err
	}
	if out, err = anthStop(out, f.stop); err != nil {
		return nil, err
	}
	if think.budget > 0 {
		f.temperature, f.topP = claudeThinkingSampling(f.temperature, f.topP)
	}
	if anthSet(f.temperature) {
		t := f.temperature
		if t.Type != gjson.Number || t.Float() < 0 {
			return nil, anthParamErr("temperature", "invalid_type", "'temperature' must be a number between 0 and 1.")
		}
		if t.Float() > 1 {
			return nil, anthParamErr("temperature", "unsupported_value",
				"Backend %q (schema anthropic) accepts a temperature between 0 and 1; the request asks for %s.", be.Name, t.Raw)
		}
		out = append(out, `,"temperature":`...)
		out = append(out, t.Raw...)
	}
	if anthSet(f.topP) {
		if f.topP.Type != gjson.Number {
			return nil, anthParamErr("top_p", "invalid_type", "'top_p' must be a number.")
		}
		out = append(out, `,"top_p":`...)
		out = append(out, f.topP.Raw...)
	}
	if f.user.Type == gjson.String && f.user.Str != "" {
		out = append(out, `,"metadata":{"user_id":`...)
		out = append(out, f.user.Raw...)
		out = append(out, '}')
	}
	if out, err = anthResponseFormat(out, be, f.responseFormat); err != nil {
		return nil, err
	}
	if r.Stream {
		out = append(out, `,"stream":true`...)
	}
	out = append(out, '}')

	up := &Upstream{
		Path: be.BasePath + anthropicMessagesPath,
		Body: out,
		SetHeaders: [][2]string{
			{"anthropic-version", anthropicVersion(be)},
		},
	}
	if be.Credential != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"x-api-key", be.Credential})
	}
	return up, nil
}

// Headers: the version and key, and the client's own anthropic-beta (an
// Anthropic SDK's, meant for Anthropic; the body is rebuilt from OpenAI's
// schema, so no beta it names is asked for) and bearer token.
func (anthropic) Headers() []string {
	return []string{"anthropic-beta", "anthropic-version", "authorization", "x-api-key"}
}

func anthropicVersion(be *config.RBackend) string {
	if be.Anthropic.Version != "" {
		return be.Anthropic.Version
	}
	return "2023-06-01"
}

// anthUnsupportedParam reports whether a top-level chat parameter asks for
// something the Messages API cannot do. Parameters it does not know are
// left out of the Anthropic request (store, metadata, service_tier, ...):
// they do not change the answer.
func anthUnsupportedParam(name string, v gjson.Result) bool {
	if !anthSet(v) {
		return false
	}
	switch name {
	case "n":
		return !(v.Type == gjson.Number && v.Raw == "1")
	case "frequency_penalty", "presence_penalty":
		return !(v.Type == gjson.Number && v.Float() == 0)
	case "logit_bias":
		return !(v.IsObject() && (v.Raw == "{}" || len(v.Map()) == 0))
	case "logprobs":
		return v.Type != gjson.False
	case "modalities":
		only := true
		v.ForEach(func(_, m gjson.Result) bool {
			only = m.Str == "text"
			return only
		})
		return !only
	case "seed", "top_logprobs", "audio", "prediction", "functions", "function_call", "verbosity":
		return true
	}
	return false
}

func anthParamErr(param, code, format string, args ...any) error {
	e := apierr.BadRequest(code, format, args...)
	e.Param = param
	return e
}

func anthMaxTokens(be *config.RBackend, f anthropicFields) (int64, error) {
	v, param := f.maxCompletion, "max_completion_tokens"
	if !anthSet(v) {
		v, param = f.maxTokens, "max_tokens"
	}
	if !anthSet(v) {
		n := be.Anthropic.MaxTokens
		if n <= 0 {
			n = 4096
		}
		return int64(n), nil
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if v.Type != gjson.Number || err != nil || n < 1 {
		return 0, anthParamErr(param, "invalid_value", "'%s' must be a positive integer.", param)
	}
	return n, nil
}

// claudeThinkingSampling applies claudeSampling to temperature and top_p:
// a dropped parameter becomes an absent one.
func claudeThinkingSampling(temperature, topP gjson.Result) (gjson.Result, gjson.Result) {
	if _, keep := claudeSampling("temperature", temperature); !keep {
		temperature = gjson.Result{}
	}
	if raw, _ := claudeSampling("top_p", topP); anthSet(topP) && raw != topP.Raw {
		topP = gjson.Result{Type: gjson.Number, Raw: raw, Num: 0.95}
	}
	return temperature, topP
}

func anthStop(out []byte, stop gjson.Result) ([]byte, error) {
	switch {
	case !anthSet(stop):
		return out, nil
	case stop.Type == gjson.String:
		if stop.Str == "" {
			return out, nil
		}
		out = append(out, `,"stop_sequences":[`...)
		out = append(out, stop.Raw...)
		return append(out, ']'), nil
	case !stop.IsArray():
		return out, anthParamErr("stop", "invalid_type", "'stop' must be a string or an array of strings.")
	}
	n := 0
	var err error
	stop.ForEach(func(_, s gjson.Result) bool {
		if s.Type != gjson.String {
			err = anthParamErr("stop", "invalid_type", "'stop' must be a string or an array of strings.")
			return false
		}
		if s.Str == "" {
			return true
		}
		if n == 0 {
			out = append(out, `,"stop_sequences":[`...)
		} else {
			out = append(out, ',')
		}
		n++
		out = append(out, s.Raw...)
		return true
	})
	if n > 0 {
		out = append(out, ']')
	}
	return out, err
}

// anthResponseFormat maps json_schema to Anthropic's structured outputs
// (output_config.format), which constrains the answer to the schema as
// OpenAI's strict mode does. json_object (JSON without a schema) has no
// Anthropic equivalent.
func anthResponseFormat(out []byte, be *config.RBackend, rf gjson.Result) ([]byte, error) {
	if !anthSet(rf) {
		return out, nil
	}
	switch typ := rf.Get("type").Str; typ {
	case "text":
		return out, nil
	case "json_schema":
		schema := rf.Get("json_schema.schema")
		if !schema.IsObject() {
			return out, anthParamErr("response_format.json_schema.schema", "invalid_value", "response_format json_schema needs a 'schema' object.")
		}
		out = append(out, `,"output_config":{"format":{"type":"json_schema","schema":`...)
		out = append(out, schema.Raw...)
		return append(out, "}}"...), nil
	default:
		if err := Unsupported(be, "response_format"); err != nil {
			if typ == "json_object" {
				err.(*apierr.Error).Message += " Anthropic has no JSON mode without a schema; use response_format json_schema."
			}
			return out, err
		}
		return out, nil
	}
}

// anthTools writes tools and tool_choice. parallel_tool_calls: false
// becomes disable_parallel_tool_use on the tool choice.
func anthTools(out []byte, be *config.RBackend, f anthropicFields, ws webSearchOptions) ([]byte, error) {
	n, fns := 0, 0
	if ws.set {
		out = append(out, `,"tools":[`...)
		out = appendAnthropicWebSearch(out, ws)
		n++
	}
	if anthSet(f.tools) {
		if !f.tools.IsArray() {
			return out, anthParamErr("tools", "invalid_type", "'tools' must be an array.")
		}
		var err error
		f.tools.ForEach(func(_, t gjson.Result) bool {
			if typ := t.Get("type"); typ.Exists() && typ.Str != "function" {
				err = Unsupported(be, "tools")
				return err == nil
			}
			fn := t.Get("function")
			name := fn.Get("name")
			if name.Type != gjson.String || name.Str == "" {
				err = anthParamErr("tools", "invalid_value", "Every tool needs a function name.")
				return false
			}
			if n == 0 {
				out = append(out, `,"tools":[`...)
			} else {
				out = append(out, ',')
			}
			n++
			fns++
			out = append(out, `{"name":`...)
			out = append(out, name.Raw...)
			if d := fn.Get("description"); d.Type == gjson.String {
				out = append(out, `,"description":`...)
				out = append(out, d.Raw...)
			}
			out = append(out, `,"input_schema":`...)
			if p := fn.Get("parameters"); p.IsObject() {
				out = append(out, p.Raw...)
			} else {
				out = append(out, `{"type":"object","properties":{}}`...)
			}
			if fn.Get("strict").Type == gjson.True {
				out = append(out, `,"strict":true`...)
			}
			out = append(out, '}')
			return true
		})
		if err != nil {
			return out, err
		}
	}
	if n > 0 {
		out = append(out, ']')
	}
	if fns == 0 {
		return out, nil // no tools: tool_choice has nothing to choose from
	}
	disable := ""
	if f.parallel.Type == gjson.False {
		disable = `,"disable_parallel_tool_use":true`
	}
	tc := f.toolChoice
	switch {
	case !anthSet(tc):
		if disable != "" {
			out = append(out, `,"tool_choice":{"type":"auto"`+disable+`}`...)
		}
	case tc.Type == gjson.String && tc.Str == "auto":
		out = append(out, `,"tool_choice":{"type":"auto"`+disable+`}`...)
	case tc.Type == gjson.String && tc.Str == "required":
		out = append(out, `,"tool_choice":{"type":"any"`+disable+`}`...)
	case tc.Type == gjson.String && tc.Str == "none":
		out = append(out, `,"tool_choice":{"type":"none"}`...)
	case tc.IsObject() && tc.Get("type").Str == "function":
		name := tc.Get("function.name")
		if name.Type != gjson.String || name.Str == "" {
			return out, anthParamErr("tool_choice", "invalid_value", "tool_choice of type function needs function.name.")
		}
		out = append(out, `,"tool_choice":{"type":"tool","name":`...)
		out = append(out, name.Raw...)
		out = append(out, disable...)
		out = append(out, '}')
	default:
		if err := Unsupported(be, "tool_choice"); err != nil {
			return out, err
		}
	}
	return out, nil
}

// anthropicWriter builds the system blocks and the messages array, merging
// consecutive messages that map to the same Anthropic role.
type anthropicWriter struct {
	be     *config.RBackend
	system []byte // text blocks, comma separated
	msgs   []byte // messages, comma separated; the last one open while role != ""
	role   string // the open message's role
	blocks int    // blocks in the open message
	// lastToolsUnsigned: the last assistant message calls tools and carries
	// no signed thinking, so Anthropic would refuse thinking for this turn.
	lastToolsUnsigned bool
}

// block starts a content block in a message of role, opening (or
// continuing) that message.
func (w *anthropicWriter) block(role string) {
	if w.role != role {
		if w.role != "" {
			w.msgs = append(w.msgs, "]}"...)
			w.msgs = append(w.msgs, ',')
		}
		w.msgs = append(w.msgs, `{"role":"`...)
		w.msgs = append(w.msgs, role...)
		w.msgs = append(w.msgs, `","content":[`...)
		w.role, w.blocks = role, 0
	}
	if w.blocks > 0 {
		w.msgs = append(w.msgs, ',')
	}
	w.blocks++
}

func (w *anthropicWriter) messages(msgs gjson.Result) error {
	if !msgs.IsArray() {
		return anthParamErr("messages", "invalid_type", "'messages' must be an array.")
	}
	var err error
	i := 0
	msgs.ForEach(func(_, m gjson.Result) bool {
		err = w.message(i, m)
		i++
		return err == nil
	})
	if err != nil {
		return err
	}
	if w.role != "" {
		w.msgs = append(w.msgs, "]}"...)
	}
	return nil
}

func (w *anthropicWriter) message(i int, m gjson.Result) error {
	var role, content, toolCalls, toolCallID, thinking gjson.Result
	m.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "role":
			role = v
		case "content":
			content = v
		case "tool_calls":
			toolCalls = v
		case "tool_call_id":
			toolCallID = v
		case "thinking_blocks":
			thinking = v
		}
		return true
	})
	switch role.Str {
	case "system", "developer":
		return w.systemContent(i, content)
	case "user":
		return w.content(i, "user", content)
	case "assistant":
		// Signed thinking first, as Anthropic wants it, then the answer.
		blocks := hubThinkingBlocks(thinking)
		for _, tb := range blocks {
			w.block("assistant")
			w.msgs = appendAnthropicThinking(w.msgs, tb)
		}
		if err := w.content(i, "assistant", content); err != nil {
			return err
		}
		w.lastToolsUnsigned = len(blocks) == 0 && toolCalls.IsArray() && len(toolCalls.Array()) > 0
		return w.toolUses(i, toolCalls)
	case "tool":
		if toolCallID.Type != gjson.String || toolCallID.Str == "" {
			return anthParamErr(msgParam(i, ".tool_call_id", -1, ""), "missing_required_parameter", "A tool message needs a tool_call_id.")
		}
		return w.toolResult(i, toolCallID, content)
	case "function":
		return Unsupported(w.be, "functions")
	default:
		return anthParamErr(msgParam(i, ".role", -1, ""), "invalid_value", "Unknown message role %q.", role.Str)
	}
}

// appendAnthropicThinking writes a hub thinking block as Anthropic's.
func appendAnthropicThinking(b []byte, tb ThinkingBlock) []byte {
	return appendThinkingBlock(b, tb) // the hub's blocks are Anthropic's
}

// msgParam names a place in messages for an error: messages[i]<field>, then
// [j] when j >= 0, then tail. It runs only when there is an error to report.
func msgParam(i int, field string, j int, tail string) string {
	s := "messages[" + strconv.Itoa(i) + "]" + field
	if j >= 0 {
		s += "[" + strconv.Itoa(j) + "]"
	}
	return s + tail
}

func (w *anthropicWriter) systemContent(i int, c gjson.Result) error {
	add := func(text, cache gjson.Result) {
		if text.Str == "" {
			return
		}
		if len(w.system) > 0 {
			w.system = append(w.system, ',')
		}
		w.system = anthTextBlock(w.system, text, cache)
	}
	switch {
	case c.Type == gjson.String:
		add(c, gjson.Result{})
		return nil
	case c.IsArray():
		var err error
		c.ForEach(func(_, p gjson.Result) bool {
			if p.Get("type").Str != "text" {
				err = anthParamErr(msgParam(i, ".content", -1, ""), "invalid_value", "System and developer messages may hold only text parts.")
				return false
			}
			add(p.Get("text"), p.Get("cache_control"))
			return true
		})
		return err
	case !anthSet(c):
		return nil
	}
	return anthParamErr(msgParam(i, ".content", -1, ""), "invalid_type", "'content' must be a string or an array of content parts.")
}

// anthTextBlock writes a text block; text must be a JSON string.
func anthTextBlock(b []byte, text, cache gjson.Result) []byte {
	b = append(b, `{"type":"text","text":`...)
	b = append(b, text.Raw...)
	if cache.IsObject() {
		b = append(b, `,"cache_control":`...)
		b = append(b, cache.Raw...)
	}
	return append(b, '}')
}

// content writes a user or assistant message's content. Empty text is left
// out: Anthropic rejects empty text blocks.
func (w *anthropicWriter) content(i int, role string, c gjson.Result) error {
	switch {
	case c.Type == gjson.String:
		if c.Str != "" {
			w.block(role)
			w.msgs = anthTextBlock(w.msgs, c, gjson.Result{})
		} else if role == "user" {
			w.block(role) // keep the turn; the provider judges an empty message
			w.msgs = append(w.msgs, `{"type":"text","text":""}`...)
		}
		return nil
	case !anthSet(c):
		return nil
	case !c.IsArray():
		return anthParamErr(msgParam(i, ".content", -1, ""), "invalid_type", "'content' must be a string or an array of content parts.")
	}
	var err error
	j := 0
	c.ForEach(func(_, p gjson.Result) bool {
		err = w.part(i, j, role, p)
		j++
		return err == nil
	})
	return err
}

func (w *anthropicWriter) part(i, j int, role string, p gjson.Result) error {
	param := func() string { return msgParam(i, ".content", j, "") }
	var typ, text, cache, image, file gjson.Result
	p.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			typ = v
		case "text", "refusal":
			text = v
		case "cache_control":
			cache = v
		case "image_url":
			image = v
		case "file":
			file = v
		}
		return true
	})
	switch typ := typ.Str; typ {
	case "text", "refusal":
		if text.Type != gjson.String {
			return anthParamErr(param(), "invalid_value", "A %s part needs a string '%s'.", typ, typ)
		}
		if text.Str != "" {
			w.block(role)
			w.msgs = anthTextBlock(w.msgs, text, cache)
		}
		return nil
	case "image_url":
		if role != "user" {
			return anthParamErr(param(), "invalid_value", "Only user messages may carry images.")
		}
		url := image.Get("url").Str
		if image.Type == gjson.String {
			url = image.Str
		}
		w.block(role)
		w.msgs = append(w.msgs, `{"type":"image","source":`...)
		var bad string
		if w.msgs, bad = anthMediaSource(w.msgs, url, true); bad != "" {
			return anthParamErr(param(), "invalid_value", "%s", bad)
		}
		w.msgs = append(w.msgs, '}')
		return nil
	case "file":
		if role != "user" {
			return anthParamErr(param(), "invalid_value", "Only user messages may carry files.")
		}
		data := file.Get("file_data")
		if data.Type != gjson.String {
			return Unsupported(w.be, "file_id") // files uploaded to OpenAI are not Anthropic's
		}
		w.block(role)
		w.msgs = append(w.msgs, `{"type":"document","source":`...)
		var bad string
		if w.msgs, bad = anthMediaSource(w.msgs, data.Str, false); bad != "" {
			return anthParamErr(param(), "invalid_value", "%s", bad)
		}
		w.msgs = append(w.msgs, '}')
		return nil
	case "input_audio":
		return Unsupported(w.be, "input_audio")
	default:
		return anthParamErr(msgParam(i, ".content", j, ".type"), "invalid_value", "Unknown content part type %q.", typ)
	}
}

// anthMediaSource appends the Anthropic source object for a data URL
// (base64) or, where allowed, an http(s) URL. bad, when not empty, says why
// the URL cannot be sent.
func anthMediaSource(dst []byte, url string, allowURL bool) (out []byte, bad string) {
	if rest, ok := strings.CutPrefix(url, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mt, b64 := strings.CutSuffix(meta, ";base64")
		if !ok || !b64 || mt == "" {
			return dst, "Data URLs must be base64 with a media type (data:<type>;base64,<data>)."
		}
		dst = append(dst, `{"type":"base64","media_type":`...)
		dst = appendJSONString(dst, mt)
		dst = append(dst, `,"data":`...)
		dst = appendJSONString(dst, data)
		return append(dst, '}'), ""
	}
	scheme, _, _ := strings.Cut(url, "://")
	if allowURL && (strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "http")) {
		dst = append(dst, `{"type":"url","url":`...)
		dst = appendJSONString(dst, url)
		return append(dst, '}'), ""
	}
	if allowURL {
		return dst, "Image URLs must be http(s) or base64 data URLs."
	}
	return dst, "File data must be a base64 data URL."
}

// toolUses writes an assistant message's tool calls as tool_use blocks, the
// arguments parsed into input (an object, as Anthropic requires).
func (w *anthropicWriter) toolUses(i int, calls gjson.Result) error {
	if !anthSet(calls) {
		return nil
	}
	if !calls.IsArray() {
		return anthParamErr(msgParam(i, ".tool_calls", -1, ""), "invalid_type", "'tool_calls' must be an array.")
	}
	var err error
	j := 0
	calls.ForEach(func(_, c gjson.Result) bool {
		j++
		var id, fn gjson.Result
		c.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "id":
				id = v
			case "function":
				fn = v
			}
			return true
		})
		var name, args gjson.Result
		fn.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "name":
				name = v
			case "arguments":
				args = v
			}
			return true
		})
		if id.Type != gjson.String || id.Str == "" || name.Type != gjson.String || name.Str == "" {
			err = anthParamErr(msgParam(i, ".tool_calls", j-1, ""), "invalid_value", "A tool call needs an id and a function name.")
			return false
		}
		input := strings.TrimSpace(args.Str)
		if input == "" {
			input = "{}"
		}
		if !gjson.Valid(input) || !gjson.Parse(input).IsObject() {
			err = anthParamErr(msgParam(i, ".tool_calls", j-1, ".function.arguments"), "invalid_value", "Tool call arguments must be a JSON object.")
			return false
		}
		w.block("assistant")
		w.msgs = append(w.msgs, `{"type":"tool_use","id":`...)
		w.msgs = append(w.msgs, id.Raw...)
		w.msgs = append(w.msgs, `,"name":`...)
		w.msgs = append(w.msgs, name.Raw...)
		w.msgs = append(w.msgs, `,"input":`...)
		w.msgs = append(w.msgs, input...)
		w.msgs = append(w.msgs, '}')
		return true
	})
	return err
}

// toolResult writes a tool message as a tool_result block of a user turn.
func (w *anthropicWriter) toolResult(i int, id, c gjson.Result) error {
	w.block("user")
	w.msgs = append(w.msgs, `{"type":"tool_result","tool_use_id":`...)
	w.msgs = append(w.msgs, id.Raw...)
	switch {
	case c.Type == gjson.String:
		if c.Str != "" {
			w.msgs = append(w.msgs, `,"content":`...)
			w.msgs = append(w.msgs, c.Raw...)
		}
	case c.IsArray():
		n := 0
		var err error
		c.ForEach(func(_, p gjson.Result) bool {
			text := p.Get("text")
			if p.Get("type").Str != "text" || text.Type != gjson.String {
				err = anthParamErr(msgParam(i, ".content", -1, ""), "invalid_value", "Tool messages may hold only text parts.")
				return false
			}
			if text.Str == "" {
				return true
			}
			if n == 0 {
				w.msgs = append(w.msgs, `,"content":[`...)
			} else {
				w.msgs = append(w.msgs, ',')
			}
			n++
			w.msgs = anthTextBlock(w.msgs, text, p.Get("cache_control"))
			return true
		})
		if err != nil {
			return err
		}
		if n > 0 {
			w.msgs = append(w.msgs, ']')
		}
	case anthSet(c):
		return anthParamErr(msgParam(i, ".content", -1, ""), "invalid_type", "'content' must be a string or an array of content parts.")
	}
	w.msgs = append(w.msgs, '}')
	return nil
}
