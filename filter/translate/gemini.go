package translate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/usage"
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

// geminiAnswer reads a Gemini (or Vertex) response.
func geminiAnswer(r *Response, now func() time.Time) Answer {
	if r.Status < 200 || r.Status >= 300 {
		return Answer{Body: &errorBody{status: r.Status, norm: geminiErrorJSON}, ContentType: "application/json"}
	}
	if now == nil {
		now = time.Now
	}
	t := now()
	if r.Stream {
		g := &geminiStream{s: Stream{Model: r.Model, Created: t.Unix(), HideReasoning: !r.Reasoning}, fallbackID: fallbackID(t)}
		g.onEvent = g.event
		return Answer{Body: g, ContentType: "text/event-stream"}
	}
	return Answer{Body: &geminiJSON{c: Completion{Model: r.Model, Created: t.Unix(), ID: fallbackID(t), HideReasoning: !r.Reasoning}}, ContentType: "application/json"}
}

// fallbackID names an answer whose provider gave no responseId.
func fallbackID(t time.Time) string { return "chatcmpl-" + strconv.FormatInt(t.UnixNano(), 36) }

// geminiFinish maps a candidate's finishReason; "" means none yet.
func geminiFinish(r string) string {
	switch r {
	case "", "FINISH_REASON_UNSPECIFIED":
		return ""
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return "content_filter"
	default: // STOP, OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, …
		return "stop"
	}
}

// geminiUsage maps usageMetadata. Input is everything billed as input (the
// prompt, cached part included, and tool-use prompts); Output is the
// candidates plus the thinking tokens, so Input+Output is totalTokenCount.
func geminiUsage(m gjson.Result) usage.Usage {
	var u usage.Usage
	var thoughts int64
	m.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "promptTokenCount", "toolUsePromptTokenCount":
			u.Input += max(v.Int(), 0)
		case "candidatesTokenCount":
			u.Output += max(v.Int(), 0)
		case "thoughtsTokenCount":
			thoughts = max(v.Int(), 0)
		case "cachedContentTokenCount":
			u.CachedInput = max(v.Int(), 0)
		}
		return true
	})
	u.Output += thoughts
	u.Reasoning = thoughts
	return u
}

// googleError maps a Google API error object ({code, message, status}) to an
// OpenAI error. status is the HTTP status the client sees; 0 (an error
// inside a 200 stream) derives it from the error's own status.
func googleError(status int, e gjson.Result) *apierr.Error {
	gs, msg := e.Get("status").Str, e.Get("message").Str
	mapped, code := int(e.Get("code").Int()), strings.ToLower(gs)
	switch gs {
	case "RESOURCE_EXHAUSTED":
		mapped, code = http.StatusTooManyRequests, "rate_limit_exceeded"
	case "UNAVAILABLE":
		mapped = http.StatusServiceUnavailable
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		mapped = http.StatusBadRequest
		lm := strings.ToLower(msg)
		switch {
		case strings.Contains(lm, "exceeds the maximum number of tokens") || strings.Contains(lm, "token count") && strings.Contains(lm, "exceed"):
			code = "context_length_exceeded"
		case strings.Contains(e.Raw, `"API_KEY_INVALID"`):
			code = "invalid_api_key"
		}
	case "PERMISSION_DENIED":
		mapped = http.StatusForbidden
	case "UNAUTHENTICATED":
		mapped, code = http.StatusUnauthorized, "invalid_api_key"
	case "NOT_FOUND":
		mapped = http.StatusNotFound
	case "DEADLINE_EXCEEDED":
		mapped = http.StatusGatewayTimeout
	case "INTERNAL":
		mapped = http.StatusInternalServerError
	}
	if status == 0 {
		status = mapped
	}
	if status < 400 || status > 599 {
		status = http.StatusBadGateway
	}
	if code == "" {
		code = "upstream_error"
	}
	return ProviderError(status, code, msg)
}

// geminiErrorJSON turns a buffered non-2xx Gemini or Vertex answer into
// OpenAI error JSON (errorBody's norm).
func geminiErrorJSON(status int, body []byte) []byte {
	v := gjson.ParseBytes(body)
	if v.IsArray() { // streamGenerateContent without alt=sse wraps it
		v = v.Get("0")
	}
	if gjson.ValidBytes(body) && v.Get("error").IsObject() {
		return googleError(status, v.Get("error")).JSON()
	}
	return NormalizeError(status, body)
}

// geminiParts reads one GenerateContentResponse: each part of the first
// candidate goes to fn (kind "text", "thought" or "call"), and the mapped
// finish reason (content_filter for a blocked prompt) is returned. A part's
// thoughtSignature goes to fn too, as kind "signature" (text in text) after
// a text or thought part, or "call_signature" (with the call's id) before
// the call it came on, so that the hub's thinking_blocks name the call.
func geminiParts(v gjson.Result, fn func(kind, text, id, name, args string)) (finish string) {
	cand := v.Get("candidates.0")
	if !cand.Exists() {
		if v.Get("promptFeedback.blockReason").Str != "" {
			return "content_filter"
		}
		return ""
	}
	cand.Get("content.parts").ForEach(func(_, p gjson.Result) bool {
		sig := p.Get("thoughtSignature").Str
		if t := p.Get("text"); t.Type == gjson.String {
			if p.Get("thought").Type == gjson.True {
				fn("thought", t.Str, "", "", "")
			} else {
				fn("text", t.Str, "", "", "")
			}
		}
		if c := p.Get("functionCall"); c.IsObject() {
			args := c.Get("args")
			s := "{}"
			if args.IsObject() {
				var buf bytes.Buffer
				if json.Compact(&buf, []byte(args.Raw)) == nil {
					s = buf.String()
				}
			}
			if sig != "" {
				fn("call_signature", sig, c.Get("id").Str, "", "")
			}
			fn("call", "", c.Get("id").Str, c.Get("name").Str, s)
		} else if sig != "" {
			fn("signature", sig, "", "", "")
		}
		return true
	})
	return geminiFinish(cand.Get("finishReason").Str)
}

// geminiJSON turns a generateContent answer into one chat.completion.
type geminiJSON struct {
	buf  []byte
	over bool
	c    Completion
}

// maxAnswerBody bounds a buffered (non-streamed) answer.
const maxAnswerBody = 64 << 20

func (g *geminiJSON) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if len(g.buf)+len(chunk) > maxAnswerBody {
		g.over = true
	} else {
		g.buf = append(g.buf, chunk...)
	}
	if !eos {
		return nil, false
	}
	if g.over {
		return ProviderError(http.StatusBadGateway, "response_too_large", "The backend's answer is too large to translate.").JSON(), false
	}
	if !gjson.ValidBytes(g.buf) {
		return g.buf, false // cut short; it reaches the client as it is
	}
	v := gjson.ParseBytes(g.buf)
	if e := v.Get("error"); e.IsObject() {
		return googleError(0, e).JSON(), false
	}
	if id := v.Get("responseId").Str; id != "" {
		g.c.ID = "chatcmpl-" + id
	}
	var content, reasoning strings.Builder
	g.c.FinishReason = geminiParts(v, func(kind, text, id, name, args string) {
		switch kind {
		case "text":
			content.WriteString(text)
		case "thought":
			reasoning.WriteString(text)
		case "signature":
			g.c.Thinking = append(g.c.Thinking, ThinkingBlock{Kind: thoughtSignature, Signature: text})
		case "call_signature":
			if id == "" {
				id = "call_" + strconv.Itoa(len(g.c.ToolCalls))
			}
			g.c.Thinking = append(g.c.Thinking, ThinkingBlock{Kind: thoughtSignature, Signature: text, ToolCallID: id})
		case "call":
			if id == "" {
				id = "call_" + strconv.Itoa(len(g.c.ToolCalls))
			}
			g.c.ToolCalls = append(g.c.ToolCalls, ToolCall{ID: id, Name: name, Arguments: args})
		}
	})
	g.c.Content, g.c.Reasoning = content.String(), reasoning.String()
	if len(g.c.ToolCalls) > 0 && g.c.FinishReason == "stop" {
		g.c.FinishReason = "tool_calls"
	}
	g.c.Usage = geminiUsage(v.Get("usageMetadata"))
	gm := v.Get("candidates.0.groundingMetadata")
	g.c.Annotations = geminiGrounding(gm, g.c.Content, geminiPartStarts(v.Get("candidates.0.content.parts")))
	g.c.Usage.WebSearches = int64(len(gm.Get("webSearchQueries").Array()))
	return g.c.JSON(), false
}

// geminiPartStarts returns, for each part of a candidate, the byte offset
// in the answer's content where its text starts (thoughts are not content).
func geminiPartStarts(parts gjson.Result) []int {
	var starts []int
	n := 0
	parts.ForEach(func(_, p gjson.Result) bool {
		starts = append(starts, n)
		if t := p.Get("text"); t.Type == gjson.String && p.Get("thought").Type != gjson.True {
			n += len(t.Str)
		}
		return true
	})
	return starts
}

// geminiGrounding maps Google Search grounding to url_citation
// annotations: each groundingSupport's segment (byte offsets within its
// part, partStarts placing parts in content; nil for offsets into the
// whole content) cites the web sources its groundingChunkIndices name.
func geminiGrounding(gm gjson.Result, content string, partStarts []int) []Annotation {
	supports := gm.Get("groundingSupports")
	if !supports.IsArray() {
		return nil
	}
	chunks := gm.Get("groundingChunks").Array()
	chars := func(off int) int {
		off = min(max(off, 0), len(content))
		return runeCount(content[:off])
	}
	var out []Annotation
	supports.ForEach(func(_, sp gjson.Result) bool {
		seg := sp.Get("segment")
		base := 0
		if pi := int(seg.Get("partIndex").Int()); partStarts != nil && pi >= 0 && pi < len(partStarts) {
			base = partStarts[pi]
		}
		start, end := chars(base+int(seg.Get("startIndex").Int())), chars(base+int(seg.Get("endIndex").Int()))
		sp.Get("groundingChunkIndices").ForEach(func(_, i gjson.Result) bool {
			if k := int(i.Int()); k >= 0 && k < len(chunks) {
				if web := chunks[k].Get("web"); web.IsObject() {
					out = append(out, Annotation{URL: web.Get("uri").Str, Title: web.Get("title").Str, Start: start, End: end,
						CitedText: seg.Get("text").Str})
				}
			}
			return true
		})
		return true
	})
	return out
}

// geminiStream turns streamGenerateContent?alt=sse (one GenerateContentResponse
// per event, usage in the last) into OpenAI chunks. Gemini marks the end
// only by a finish reason, so [DONE] is written at the end of the body
// when one was seen, and never after an error.
type geminiStream struct {
	sc         sse.Scanner
	s          Stream
	fallbackID string
	onEvent    func(sse.Event)
	out        []byte
	started    bool
	failed     bool
	finish     string
	calls      int
	usage      usage.Usage
	content    strings.Builder // the content so far: grounding indexes into it
	searches   int64           // webSearchQueries of Google Search grounding
}

func (g *geminiStream) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	g.out = nil
	if g.failed {
		return nil, false
	}
	g.sc.Feed(chunk, g.onEvent)
	if eos {
		g.sc.Flush(g.onEvent)
		if !g.failed && g.finish != "" {
			if g.calls > 0 && g.finish == "stop" {
				g.finish = "tool_calls"
			}
			g.out = g.s.Finish(g.out, g.finish)
			g.usage.WebSearches = g.searches
			g.out = g.s.Usage(g.out, g.usage)
			g.out = Done(g.out)
		}
	}
	return g.out, false
}

func (g *geminiStream) event(e sse.Event) {
	if g.failed {
		return
	}
	data := bytes.TrimSpace(e.Data)
	if len(data) == 0 || data[0] != '{' || !gjson.ValidBytes(data) {
		return // a cut last event; the missing finish tells
	}
	v := gjson.ParseBytes(data)
	if er := v.Get("error"); er.IsObject() {
		g.out = ErrorEvent(g.out, googleError(0, er))
		g.failed = true
		return
	}
	if !g.started {
		g.started = true
		g.s.ID = g.fallbackID
		if id := v.Get("responseId").Str; id != "" {
			g.s.ID = "chatcmpl-" + id
		}
		g.out = g.s.Role(g.out)
	}
	finish := geminiParts(v, func(kind, text, id, name, args string) {
		switch kind {
		case "text":
			if text != "" {
				g.content.WriteString(text)
				g.out = g.s.Content(g.out, "content", text)
			}
		case "thought":
			if text != "" {
				g.out = g.s.Content(g.out, "reasoning_content", text)
			}
		case "signature":
			g.out = g.s.Thinking(g.out, ThinkingBlock{Kind: thoughtSignature, Signature: text})
		case "call_signature":
			if id == "" {
				id = "call_" + strconv.Itoa(g.calls)
			}
			g.out = g.s.Thinking(g.out, ThinkingBlock{Kind: thoughtSignature, Signature: text, ToolCallID: id})
		case "call":
			if id == "" {
				id = "call_" + strconv.Itoa(g.calls)
			}
			g.out = g.s.ToolCall(g.out, g.calls, id, name, args)
			g.calls++
		}
	})
	if finish != "" {
		g.finish = finish
	}
	if m := v.Get("usageMetadata"); m.IsObject() {
		g.usage = geminiUsage(m)
	}
	if gm := v.Get("candidates.0.groundingMetadata"); gm.IsObject() {
		// Streamed, the segments index the whole answer.
		g.out = g.s.Annotations(g.out, geminiGrounding(gm, g.content.String(), nil))
		if q := gm.Get("webSearchQueries"); q.IsArray() {
			g.searches = int64(len(q.Array()))
		}
	}
}
