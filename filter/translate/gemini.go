package translate

import (
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// gemini speaks Google's Gemini API on AI Studio (generativelanguage): the
// generateContent and streamGenerateContent methods, with the backend's API
// key in x-goog-api-key. vertex.go reuses everything here but the path and
// the credentials.
type gemini struct {
	now func() time.Time // nil means time.Now
}

func (g gemini) Request(r *Request) (*Upstream, error) {
	body, err := geminiRequestBody(r)
	if err != nil {
		return nil, err
	}
	up := &Upstream{
		Path: r.Backend.BasePath + "/v1beta/models/" + geminiModel(r.Model) + geminiMethod(r.Stream),
		Body: body,
	}
	if r.Backend.Credential != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"x-goog-api-key", r.Backend.Credential})
	}
	return up, nil
}

func (g gemini) Response(r *Response) Answer { return geminiAnswer(r, g.now) }

// Headers: the API key goes in x-goog-api-key.
func (gemini) Headers() []string { return []string{"authorization", "x-goog-api-key"} }

// geminiModel is the model's path segment: a "models/" prefix, which the
// API's own model names carry, is dropped, and the rest escaped.
func geminiModel(model string) string {
	return url.PathEscape(strings.TrimPrefix(model, "models/"))
}

func geminiMethod(stream bool) string {
	if stream {
		return ":streamGenerateContent?alt=sse"
	}
	return ":generateContent"
}

// thoughtSkip is the thought signature Google documents for function calls
// whose real signature is not at hand (history written by another model or
// a client that dropped the hub's thinking_blocks). Gemini 3 models reject a
// replayed function call without one. A real signature (a thought_signature
// block of the hub, reasoning.go) goes back on the part it came with: on the
// functionCall part of its tool call, or, for a text part's, on the
// message's first part.
const thoughtSkip = "skip_thought_signature_validator"

// geminiRequestBody turns an OpenAI chat-completions body into a
// GenerateContentRequest.
func geminiRequestBody(r *Request) ([]byte, error) {
	b := r.Backend
	root := gjson.ParseBytes(r.Body)
	if !root.IsObject() {
		return nil, apierr.BadRequest("invalid_json", "The request body must be a JSON object.")
	}
	var messages, tools, toolChoice, respFormat, stop, maxTokens, temperature, topP, seed, presence, frequency, effort, webSearch gjson.Result
	var unsupported []string
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "messages":
			messages = v
		case "tools":
			tools = v
		case "tool_choice":
			toolChoice = v
		case "response_format":
			respFormat = v
		case "stop":
			stop = v
		case "max_tokens":
			if !maxTokens.Exists() {
				maxTokens = v
			}
		case "max_completion_tokens":
			maxTokens = v // wins over the deprecated max_tokens
		case "temperature":
			temperature = v
		case "top_p":
			topP = v
		case "seed":
			seed = v
		case "presence_penalty":
			presence = v
		case "frequency_penalty":
			frequency = v
		case "reasoning_effort":
			effort = v
		case "web_search_options":
			webSearch = v
		case "n":
			if v.Type != gjson.Null && v.Int() != 1 {
				// The shared OpenAI writer answers with one choice.
				unsupported = append(unsupported, "n")
			}
		case "logprobs":
			if v.Type == gjson.True {
				unsupported = append(unsupported, "logprobs")
			}
		case "top_logprobs", "logit_bias", "audio", "prediction", "functions", "function_call":
			if v.Type != gjson.Null {
				unsupported = append(unsupported, k.Str)
			}
		case "modalities":
			v.ForEach(func(_, m gjson.Result) bool {
				if m.Str != "text" {
					unsupported = append(unsupported, "modalities")
					return false
				}
				return true
			})
		case "parallel_tool_calls":
			if v.Type == gjson.False {
				unsupported = append(unsupported, "parallel_tool_calls")
			}
		}
		return true
	})
	for _, p := range unsupported {
		if err := Unsupported(b, p); err != nil {
			return nil, err
		}
	}
	if !messages.IsArray() {
		return nil, apierr.BadRequest("invalid_messages", "'messages' must be an array.")
	}

	out := make([]byte, 0, len(r.Body)+256)
	out = append(out, `{"contents":[`...)
	var system []byte // systemInstruction parts, comma separated
	cw := contentWriter{buf: out}
	names := map[string]string{} // tool_call_id → function name
	var err error
	messages.ForEach(func(_, m gjson.Result) bool {
		err = cw.message(b, m, &system, names)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	out = cw.close()
	out = append(out, ']')
	if len(system) > 0 {
		out = append(out, `,"systemInstruction":{"parts":[`...)
		out = append(out, system...)
		out = append(out, "]}"...)
	}
	if out, err = geminiTools(b, out, tools, toolChoice, webSearch.IsObject()); err != nil {
		return nil, err
	}

	gc := make([]byte, 0, 128)
	field := func(name, raw string) {
		gc = append(gc, ',', '"')
		gc = append(gc, name...)
		gc = append(gc, `":`...)
		gc = append(gc, raw...)
	}
	number := func(name string, v gjson.Result) {
		if v.Type == gjson.Number {
			field(name, v.Raw)
		}
	}
	switch {
	case stop.Type == gjson.String:
		field("stopSequences", "["+string(appendJSONString(nil, stop.Str))+"]")
	case stop.IsArray() && len(stop.Array()) > 0:
		var s []byte
		stop.ForEach(func(_, v gjson.Result) bool {
			if len(s) > 0 {
				s = append(s, ',')
			}
			s = appendJSONString(s, v.String())
			return true
		})
		field("stopSequences", "["+string(s)+"]")
	}
	number("maxOutputTokens", maxTokens)
	number("temperature", temperature)
	number("topP", topP)
	number("seed", seed)
	number("presencePenalty", presence)
	number("frequencyPenalty", frequency)
	if e, budget, err := hubEffort(effort); err != nil {
		return nil, err
	} else if e != "" {
		// The budget ⇄ effort table (reasoning.go); thought summaries come
		// back as reasoning_content.
		field("thinkingConfig", `{"thinkingBudget":`+strconv.FormatInt(budget, 10)+`,"includeThoughts":`+strconv.FormatBool(budget != 0)+`}`)
	}
	switch rf := respFormat.Get("type").Str; rf {
	case "", "text":
	case "json_object":
		field("responseMimeType", `"application/json"`)
	case "json_schema":
		schema := respFormat.Get("json_schema.schema")
		field("responseMimeType", `"application/json"`)
		if schema.IsObject() {
			field("responseSchema", string(appendSchema(nil, schema)))
		}
	default:
		if err := Unsupported(b, "response_format"); err != nil {
			return nil, err
		}
	}
	if len(gc) > 0 {
		out = append(out, `,"generationConfig":{`...)
		out = append(out, gc[1:]...)
		out = append(out, '}')
	}
	return append(out, '}'), nil
}

// contentWriter writes the contents array, merging consecutive messages of
// one role into one Content (Gemini wants the results of parallel calls in
// one turn, and turns that alternate).
type contentWriter struct {
	buf  []byte
	role string
	open bool
}

// part prepares buf for the next part of a Content with role.
func (w *contentWriter) part(role string) {
	if w.open && w.role == role {
		w.buf = append(w.buf, ',')
		return
	}
	if w.open {
		w.buf = append(w.buf, "]},"...)
	}
	w.buf = append(w.buf, `{"role":"`...)
	w.buf = append(w.buf, role...)
	w.buf = append(w.buf, `","parts":[`...)
	w.role, w.open = role, true
}

func (w *contentWriter) close() []byte {
	if w.open {
		w.buf = append(w.buf, "]}"...)
	}
	return w.buf
}

func (w *contentWriter) text(role, s string) { w.signedText(role, s, "") }

// signedText writes a text part, with its thoughtSignature unless sig is "".
func (w *contentWriter) signedText(role, s, sig string) {
	if s == "" {
		return
	}
	w.part(role)
	w.buf = append(w.buf, `{"text":`...)
	w.buf = appendJSONString(w.buf, s)
	w.buf = appendThoughtSignature(w.buf, sig)
	w.buf = append(w.buf, '}')
}

// appendThoughtSignature writes a part's thoughtSignature member, if any.
func appendThoughtSignature(b []byte, sig string) []byte {
	if sig == "" {
		return b
	}
	b = append(b, `,"thoughtSignature":`...)
	return appendJSONString(b, sig)
}

// geminiSignatures reads the Gemini thought signatures of a hub assistant
// message: by tool call id, and the first one of a text part.
func geminiSignatures(blocks gjson.Result) (calls map[string]string, text string) {
	for _, tb := range hubSignedBlocks(blocks) {
		switch {
		case tb.Kind != thoughtSignature:
		case tb.ToolCallID != "":
			if calls == nil {
				calls = map[string]string{}
			}
			calls[tb.ToolCallID] = tb.Signature
		case text == "":
			text = tb.Signature
		}
	}
	return calls, text
}

func (w *contentWriter) message(b *config.RBackend, m gjson.Result, system *[]byte, names map[string]string) error {
	var content, role, calls, callID, name, thinking gjson.Result
	m.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "content":
			content = v
		case "role":
			role = v
		case "tool_calls":
			calls = v
		case "tool_call_id":
			callID = v
		case "name":
			name = v
		case "thinking_blocks":
			thinking = v
		}
		return true
	})
	switch role := role.Str; role {
	case "system", "developer":
		return eachText(content, role, func(s string) {
			if s == "" {
				return
			}
			if len(*system) > 0 {
				*system = append(*system, ',')
			}
			*system = append(*system, `{"text":`...)
			*system = appendJSONString(*system, s)
			*system = append(*system, '}')
		})
	case "user":
		if content.Type == gjson.String {
			w.text("user", content.Str)
			return nil
		}
		if !content.IsArray() {
			return apierr.BadRequest("invalid_content", "A user message's content must be a string or an array of parts.")
		}
		var err error
		content.ForEach(func(_, p gjson.Result) bool {
			err = w.userPart(b, p)
			return err == nil
		})
		return err
	case "assistant":
		callSigs, textSig := geminiSignatures(thinking)
		signed := len(callSigs) > 0 || textSig != ""
		if err := eachText(content, role, func(s string) {
			if s != "" {
				w.signedText("model", s, textSig)
				textSig = "" // on the first part only
			}
		}); err != nil {
			return err
		}
		first := true
		var err error
		calls.ForEach(func(_, tc gjson.Result) bool {
			if t := tc.Get("type").Str; t != "" && t != "function" {
				err = apierr.BadRequest("invalid_tool_call", "Tool call type %q is not supported.", t)
				return false
			}
			name := tc.Get("function.name").Str
			names[tc.Get("id").Str] = name
			args := strings.TrimSpace(tc.Get("function.arguments").Str)
			if args == "" {
				args = "{}"
			}
			if !gjson.Valid(args) || !gjson.Parse(args).IsObject() {
				err = apierr.BadRequest("invalid_tool_call", "The arguments of tool call %q are not a JSON object.", tc.Get("id").Str)
				return false
			}
			w.part("model")
			w.buf = append(w.buf, `{"functionCall":{"name":`...)
			w.buf = appendJSONString(w.buf, name)
			w.buf = append(w.buf, `,"args":`...)
			w.buf = append(w.buf, args...)
			w.buf = append(w.buf, '}')
			sig := callSigs[tc.Get("id").Str]
			if sig == "" && first {
				// A text part's signature with no text goes on the first
				// part; a call without one gets the skip marker unless the
				// message carries Gemini's own (parallel calls: only the
				// first is signed).
				sig = textSig
				if sig == "" && !signed {
					sig = thoughtSkip
				}
			}
			w.buf = appendThoughtSignature(w.buf, sig)
			first = false
			w.buf = append(w.buf, '}')
			return true
		})
		return err
	case "tool", "function":
		id := callID.Str
		fn, ok := names[id]
		if role == "function" {
			fn, ok = name.Str, true
		}
		if !ok {
			return apierr.BadRequest("invalid_tool_result", "Tool message with tool_call_id %q answers no earlier tool call.", id)
		}
		var text strings.Builder
		if err := eachText(content, role, func(s string) { text.WriteString(s) }); err != nil {
			return err
		}
		w.part("user")
		w.buf = append(w.buf, `{"functionResponse":{"name":`...)
		w.buf = appendJSONString(w.buf, fn)
		w.buf = append(w.buf, `,"response":`...)
		s := strings.TrimSpace(text.String())
		if gjson.Valid(s) && gjson.Parse(s).IsObject() {
			w.buf = append(w.buf, s...)
		} else {
			// The response must be an object; other results are wrapped.
			w.buf = append(w.buf, `{"content":`...)
			if gjson.Valid(s) && s != "" {
				w.buf = append(w.buf, s...)
			} else {
				w.buf = appendJSONString(w.buf, text.String())
			}
			w.buf = append(w.buf, '}')
		}
		w.buf = append(w.buf, "}}"...)
		return nil
	default:
		return apierr.BadRequest("invalid_role", "Unknown message role %q.", role)
	}
}

// eachText calls fn with a string content, or with each text part of an
// array content (refusal parts count as text).
func eachText(content gjson.Result, role string, fn func(string)) error {
	switch {
	case content.Type == gjson.String:
		fn(content.Str)
	case content.IsArray():
		var err error
		content.ForEach(func(_, p gjson.Result) bool {
			switch t := p.Get("type").Str; t {
			case "text":
				fn(p.Get("text").Str)
			case "refusal":
				fn(p.Get("refusal").Str)
			default:
				err = apierr.BadRequest("invalid_content", "Content part type %q is not allowed in a %s message.", t, role)
			}
			return err == nil
		})
		return err
	case content.Type == gjson.Null, !content.Exists():
	default:
		return apierr.BadRequest("invalid_content", "A %s message's content must be a string or an array of parts.", role)
	}
	return nil
}

// userPart writes one part of a user message: text, an image (data URL →
// inlineData, http(s)/gs URL → fileData), audio or a file given as data.
func (w *contentWriter) userPart(b *config.RBackend, p gjson.Result) error {
	switch t := p.Get("type").Str; t {
	case "text":
		w.text("user", p.Get("text").Str)
	case "image_url":
		u := p.Get("image_url.url").Str
		if u == "" {
			u = p.Get("image_url").Str
		}
		return w.media(b, "image_url", u)
	case "input_audio":
		format := p.Get("input_audio.format").Str
		mime := map[string]string{"wav": "audio/wav", "mp3": "audio/mp3"}[format]
		if mime == "" {
			return Unsupported(b, "input_audio")
		}
		w.part("user")
		w.inline(mime, p.Get("input_audio.data").Str)
	case "file":
		data := p.Get("file.file_data").Str
		if !strings.HasPrefix(data, "data:") {
			return Unsupported(b, "file")
		}
		return w.media(b, "file", data)
	default:
		return apierr.BadRequest("invalid_content", "Content part type %q is not supported.", t)
	}
	return nil
}

func (w *contentWriter) media(b *config.RBackend, param, u string) error {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mime, enc, _ := strings.Cut(meta, ";")
		if !ok || enc != "base64" || mime == "" {
			return apierr.BadRequest("invalid_image_url", "A data URL must look like data:<mime type>;base64,<data>.")
		}
		w.part("user")
		w.inline(mime, data)
		return nil
	}
	scheme, _, _ := strings.Cut(u, ":")
	mime := mimeByExt[strings.ToLower(path.Ext(urlPath(u)))]
	if (scheme != "http" && scheme != "https" && scheme != "gs") || mime == "" {
		// Gemini needs the media type of a file it fetches.
		return Unsupported(b, param)
	}
	w.part("user")
	w.buf = append(w.buf, `{"fileData":{"mimeType":`...)
	w.buf = appendJSONString(w.buf, mime)
	w.buf = append(w.buf, `,"fileUri":`...)
	w.buf = appendJSONString(w.buf, u)
	w.buf = append(w.buf, "}}"...)
	return nil
}

func (w *contentWriter) inline(mime, data string) {
	w.buf = append(w.buf, `{"inlineData":{"mimeType":`...)
	w.buf = appendJSONString(w.buf, mime)
	w.buf = append(w.buf, `,"data":`...)
	w.buf = appendJSONString(w.buf, data)
	w.buf = append(w.buf, "}}"...)
}

func urlPath(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Path
	}
	return u
}

// mimeByExt guesses the media type of a file Gemini fetches by URL.
var mimeByExt = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
	".gif": "image/gif", ".heic": "image/heic", ".heif": "image/heif", ".pdf": "application/pdf",
}

// geminiTools writes tools and toolConfig.
func geminiTools(b *config.RBackend, out []byte, tools, choice gjson.Result, webSearch bool) ([]byte, error) {
	n := 0
	var err error
	tools.ForEach(func(_, t gjson.Result) bool {
		if t.Get("type").Str != "function" {
			err = Unsupported(b, "tools")
			return err == nil // dropped
		}
		f := t.Get("function")
		if n == 0 {
			out = append(out, `,"tools":[{"functionDeclarations":[`...)
		} else {
			out = append(out, ',')
		}
		n++
		out = append(out, `{"name":`...)
		out = appendJSONString(out, f.Get("name").Str)
		if d := f.Get("description"); d.Type == gjson.String {
			out = append(out, `,"description":`...)
			out = appendJSONString(out, d.Str)
		}
		if p := f.Get("parameters"); p.IsObject() && (hasMembers(p.Get("properties")) || p.Get("anyOf").Exists()) {
			// An object without properties is refused by Gemini; a
			// function without parameters says the same.
			out = append(out, `,"parameters":`...)
			out = appendSchema(out, p)
		}
		out = append(out, '}')
		return true
	})
	if err != nil {
		return nil, err
	}
	// web_search_options: grounding with Google Search, after the
	// functions; its search_context_size and user_location have no
	// equivalent.
	switch {
	case n > 0 && webSearch:
		out = append(out, `]},{"google_search":{}}]`...)
	case n > 0:
		out = append(out, "]}]"...)
	case webSearch:
		out = append(out, `,"tools":[{"google_search":{}}]`...)
	}
	mode, name := "", ""
	switch {
	case !choice.Exists() || choice.Type == gjson.Null:
	case choice.Type == gjson.String:
		mode = map[string]string{"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice.Str]
		if mode == "" {
			return nil, apierr.BadRequest("invalid_tool_choice", "Unknown tool_choice %q.", choice.Str)
		}
	case choice.Get("type").Str == "function":
		mode, name = "ANY", choice.Get("function.name").Str
	default:
		if err := Unsupported(b, "tool_choice"); err != nil {
			return nil, err
		}
	}
	if mode != "" && (n > 0 || mode == "NONE") {
		out = append(out, `,"toolConfig":{"functionCallingConfig":{"mode":"`...)
		out = append(out, mode...)
		out = append(out, '"')
		if name != "" {
			out = append(out, `,"allowedFunctionNames":[`...)
			out = appendJSONString(out, name)
			out = append(out, ']')
		}
		out = append(out, "}}"...)
	}
	return out, nil
}

// hasMembers reports whether v is an object with at least one member.
func hasMembers(v gjson.Result) bool {
	n := false
	if v.IsObject() {
		v.ForEach(func(_, _ gjson.Result) bool { n = true; return false })
	}
	return n
}

// schemaKeys are the JSON Schema keywords Gemini's Schema object (an OpenAPI
// 3.0 subset) accepts. Everything else — additionalProperties, $schema,
// $ref/$defs, strict, const, oneOf, not, patternProperties … — is dropped,
// which loosens the schema rather than failing the request; const becomes
// a one-value enum and a type list with "null" becomes nullable.
var schemaKeys = map[string]bool{
	"type": true, "format": true, "title": true, "description": true, "nullable": true, "enum": true,
	"maxItems": true, "minItems": true, "properties": true, "required": true, "minProperties": true,
	"maxProperties": true, "minLength": true, "maxLength": true, "pattern": true, "example": true,
	"anyOf": true, "propertyOrdering": true, "default": true, "items": true, "minimum": true, "maximum": true,
}

// appendSchema writes s restricted to Gemini's Schema subset.
func appendSchema(out []byte, s gjson.Result) []byte {
	out = append(out, '{')
	n := 0
	key := func(k string) {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = appendJSONString(out, k)
		out = append(out, ':')
	}
	var nullable, hasType, hasEnum, enumString bool
	var constant gjson.Result
	s.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			hasType = true
			t := v.Str
			if v.IsArray() {
				t = ""
				v.ForEach(func(_, e gjson.Result) bool {
					if e.Str == "null" {
						nullable = true
					} else if t == "" {
						t = e.Str
					}
					return true
				})
			}
			if t != "" {
				key("type")
				out = appendJSONString(out, strings.ToUpper(t))
			}
		case "properties":
			if !v.IsObject() {
				return true
			}
			key("properties")
			out = append(out, '{')
			i := 0
			v.ForEach(func(pk, pv gjson.Result) bool {
				if i > 0 {
					out = append(out, ',')
				}
				i++
				out = appendJSONString(out, pk.Str)
				out = append(out, ':')
				out = appendSchema(out, pv)
				return true
			})
			out = append(out, '}')
		case "items":
			if v.IsObject() {
				key("items")
				out = appendSchema(out, v)
			}
		case "anyOf":
			if !v.IsArray() {
				return true
			}
			key("anyOf")
			out = append(out, '[')
			i := 0
			v.ForEach(func(_, e gjson.Result) bool {
				if i > 0 {
					out = append(out, ',')
				}
				i++
				out = appendSchema(out, e)
				return true
			})
			out = append(out, ']')
		case "const":
			constant = v
		case "enum":
			hasEnum, enumString = true, v.Get("0").Type == gjson.String
			key("enum")
			out = append(out, v.Raw...)
		case "nullable":
			nullable = nullable || v.Type == gjson.True
		default:
			if schemaKeys[k.Str] {
				key(k.Str)
				out = append(out, v.Raw...)
			}
		}
		return true
	})
	if constant.Exists() && !hasEnum {
		key("enum")
		out = append(out, '[')
		out = append(out, constant.Raw...)
		out = append(out, ']')
		enumString = constant.Type == gjson.String
	}
	if !hasType && enumString {
		// Gemini wants a type beside an enum; JSON Schema lets it be implied.
		key("type")
		out = append(out, `"STRING"`...)
	}
	if nullable {
		key("nullable")
		out = append(out, "true"...)
	}
	return append(out, '}')
}
