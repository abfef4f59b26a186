package translate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// This file serves clients that speak Google's Gemini API
// (POST /v1beta/models/{model}:generateContent and :streamGenerateContent)
// when the chosen backend speaks another: their GenerateContentRequest
// becomes an OpenAI chat-completions body, llmproc's one internal schema,
// and client_gemini_answer.go turns the OpenAI answer back into a
// GenerateContentResponse. A Gemini or Vertex backend gets the body as the
// client sent it (GeminiNative).
//
// Google's JSON API reads every field in lowerCamelCase or in its proto
// snake_case name (system_instruction, inline_data, mime_type); so does this
// converter, for the messages it knows. Choices where the schemas do not meet:
//   - generationConfig.topK has no chat-completions equivalent: dropped.
//     safetySettings, labels, mediaResolution, speechConfig and
//     audioTimestamp tune Google's serving only: dropped.
//   - thinkingConfig.thinkingBudget becomes reasoning_effort by the one
//     budget ⇄ effort table (reasoning.go; −1, dynamic, sets none) and
//     thinkingLevel the effort of its name; includeThoughts has no
//     equivalent (reasoning_content in the answer comes back as thought
//     parts whenever the backend sends it).
//   - thought parts in model turns are dropped, as Gemini ignores earlier
//     turns' thoughts; thoughtSignature too.
//   - functionCall ids: a call without an id takes the id of the
//     functionResponse that answers it in the next turn (Gemini CLI sends
//     its own there), else call_<turn>_<n>; a response finds its call by id,
//     else by name in order.
//   - functionResponse.response becomes the tool message's text: its JSON.
//   - googleSearch and googleSearchRetrieval tools become web_search_options;
//     other server tools (codeExecution, urlContext, fileSearch, …) are
//     dropped: the backend cannot run them. executableCode and
//     codeExecutionResult parts in history become text.
//   - functionCallingConfig ANY with allowedFunctionNames restricts the
//     declared tools to those names (tool_choice required, or that function
//     when there is one).
//   - inlineData: image/* → image_url data URL, audio/wav and audio/mp3 →
//     input_audio, application/pdf → file, text/* → text; fileData: an image
//     URL → image_url. Other media are refused (400).
//   - candidateCount above 1, responseModalities other than TEXT, a
//     responseMimeType other than text/plain and application/json, and
//     cachedContent (a Gemini-side cache) are refused (400).

// GeminiRequestToOpenAI converts a Gemini GenerateContentRequest body into
// an OpenAI chat-completions body for model. stream asks for a stream (with
// usage: Gemini clients always get usageMetadata). Errors are *apierr.Error
// 400s whose Param is the field's path (contents[1].parts[0].inlineData).
func GeminiRequestToOpenAI(body []byte, model string, stream bool) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, gcBad("", "Invalid JSON payload received.")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, gcBad("", "Invalid JSON payload received: the request must be a JSON object.")
	}
	var contents, system, tools, toolConfig, genConfig gjson.Result
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		switch geminiKey(k.Str) {
		case "contents":
			contents = v
		case "systemInstruction":
			system = v
		case "tools":
			tools = v
		case "toolConfig":
			toolConfig = v
		case "generationConfig":
			genConfig = v
		case "cachedContent":
			if v.Type != gjson.Null {
				err = gcUnsupported("cachedContent", "a Gemini context cache exists only on Gemini backends")
			}
		}
		// safetySettings, labels, model and unknown fields: dropped.
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(body)+256)
	b = append(b, `{"model":`...)
	b = appendJSONString(b, model)
	b = append(b, `,"messages":[`...)
	w := caMsgWriter{b: b}
	if err := gcSystem(&w, system); err != nil {
		return nil, err
	}
	if err := gcContents(&w, contents); err != nil {
		return nil, err
	}
	b = append(w.b, ']')
	allowed, b, err := gcToolConfig(b, toolConfig)
	if err != nil {
		return nil, err
	}
	if b, err = gcTools(b, tools, allowed); err != nil {
		return nil, err
	}
	if b, err = gcGenerationConfig(b, genConfig); err != nil {
		return nil, err
	}
	if stream {
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	return append(b, '}'), nil
}

// geminiKey is a field name in lowerCamelCase: Google's JSON parser takes
// the proto's snake_case names too.
func geminiKey(k string) string {
	if strings.IndexByte(k, '_') < 0 {
		return k
	}
	var sb strings.Builder
	up := false
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_':
			up = true
		case up && c >= 'a' && c <= 'z':
			sb.WriteByte(c - 'a' + 'A')
			up = false
		default:
			sb.WriteByte(c)
			up = false
		}
	}
	return sb.String()
}

// gget reads member name of an object under its camelCase or snake_case name.
func gget(v gjson.Result, name string) gjson.Result {
	var out gjson.Result
	v.ForEach(func(k, m gjson.Result) bool {
		if geminiKey(k.Str) == name {
			out = m
		}
		return true
	})
	return out
}

// gcBad is a 400 for an invalid Gemini request; param is the field's path.
func gcBad(param, msg string) *apierr.Error {
	if param != "" {
		msg = "Invalid value at '" + param + "': " + msg
	}
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "invalid_argument", Param: param, Message: msg}
}

// gcUnsupported is a 400 for a valid Gemini field that cannot cross
// chat-completions.
func gcUnsupported(param, why string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "unsupported_parameter", Param: param,
		Message: fmt.Sprintf("%s is not supported by llmproc for this model's backend: %s.", param, why)}
}

// gcSystem writes systemInstruction (a Content; its text parts) as a system message.
func gcSystem(w *caMsgWriter, s gjson.Result) error {
	if !s.Exists() || s.Type == gjson.Null {
		return nil
	}
	if s.Type == gjson.String { // accepted by some SDKs' REST shims
		if s.Str != "" {
			w.open("system")
			w.b = appendJSONString(w.b, s.Str)
			w.b = append(w.b, '}')
		}
		return nil
	}
	if !s.IsObject() {
		return gcBad("systemInstruction", "expected a Content object")
	}
	var texts []string
	var err error
	i := -1
	gget(s, "parts").ForEach(func(_, p gjson.Result) bool {
		i++
		t := gget(p, "text")
		if t.Type != gjson.String {
			err = gcUnsupported(fmt.Sprintf("systemInstruction.parts[%d]", i), "only text parts can be a system instruction")
			return false
		}
		if t.Str != "" {
			texts = append(texts, t.Str)
		}
		return true
	})
	if err != nil || len(texts) == 0 {
		return err
	}
	w.open("system")
	w.b = gcTextContent(w.b, texts)
	w.b = append(w.b, '}')
	return nil
}

// gcTextContent writes one text as a string and several as text parts.
func gcTextContent(b []byte, texts []string) []byte {
	if len(texts) == 1 {
		return appendJSONString(b, texts[0])
	}
	b = append(b, '[')
	for i, t := range texts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"text","text":`...)
		b = appendJSONString(b, t)
		b = append(b, '}')
	}
	return append(b, ']')
}

// gcContent is one element of contents, read.
type gcContent struct {
	role  string
	parts []gjson.Result
	// ids are the tool-call ids of the model turn's functionCall parts, in
	// order (model turns only).
	ids []string
}

// gcCallID is a functionCall or functionResponse: its id and name.
type gcCallID struct{ id, name string }

func gcContents(w *caMsgWriter, contents gjson.Result) error {
	if !contents.Exists() || contents.Type == gjson.Null {
		return gcBad("contents", "contents is required")
	}
	if !contents.IsArray() {
		return gcBad("contents", "expected an array of Content")
	}
	var cs []gcContent
	i := -1
	var err error
	contents.ForEach(func(_, c gjson.Result) bool {
		i++
		at := "contents[" + strconv.Itoa(i) + "]"
		if !c.IsObject() {
			err = gcBad(at, "expected a Content object")
			return false
		}
		role := gget(c, "role")
		r := role.Str
		switch {
		case !role.Exists() || role.Type == gjson.Null || r == "" || r == "user" || r == "function" || r == "tool":
			r = "user"
		case r == "model" || r == "assistant":
			r = "model"
		default:
			err = gcBad(at+".role", "Please use a valid role: user, model.")
			return false
		}
		parts := gget(c, "parts")
		if parts.Exists() && !parts.IsArray() {
			err = gcBad(at+".parts", "expected an array of Part")
			return false
		}
		cs = append(cs, gcContent{role: r, parts: parts.Array()})
		return true
	})
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return gcBad("contents", "contents is not specified")
	}
	// The ids of each model turn's calls, matched with the next turn's
	// responses (see the file comment).
	for i := range cs {
		if cs[i].role != "model" {
			continue
		}
		var responses []gcCallID
		if i+1 < len(cs) && cs[i+1].role == "user" {
			for _, p := range cs[i+1].parts {
				if fr := gget(p, "functionResponse"); fr.IsObject() {
					responses = append(responses, gcCallID{gget(fr, "id").Str, gget(fr, "name").Str})
				}
			}
		}
		used := make([]bool, len(responses))
		var calls []gcCallID
		for _, p := range cs[i].parts {
			if fc := gget(p, "functionCall"); fc.IsObject() {
				c := gcCallID{gget(fc, "id").Str, gget(fc, "name").Str}
				for k, r := range responses {
					if c.id != "" && r.id == c.id {
						used[k] = true
					}
				}
				calls = append(calls, c)
			}
		}
		for j := range calls {
			if calls[j].id != "" {
				continue
			}
			for k, r := range responses {
				if !used[k] && r.name == calls[j].name {
					used[k] = true
					calls[j].id = r.id
					break
				}
			}
			if calls[j].id == "" {
				calls[j].id = "call_" + strconv.Itoa(i) + "_" + strconv.Itoa(j)
			}
		}
		for _, c := range calls {
			cs[i].ids = append(cs[i].ids, c.id)
		}
	}
	var prev []gcCallID // the calls of the turn before, to answer
	for i, c := range cs {
		at := "contents[" + strconv.Itoa(i) + "]"
		var err error
		if c.role == "model" {
			prev, err = gcModel(w, at, c)
		} else {
			err = gcUser(w, at, c, prev)
			prev = nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// gcModel writes a model turn as an assistant message and returns its calls.
func gcModel(w *caMsgWriter, at string, c gcContent) ([]gcCallID, error) {
	var text strings.Builder
	var calls []gcCallID
	var args []string
	for j, p := range c.parts {
		pat := at + ".parts[" + strconv.Itoa(j) + "]"
		if !p.IsObject() {
			return nil, gcBad(pat, "expected a Part object")
		}
		if gget(p, "thought").Type == gjson.True {
			continue // an earlier turn's thought summary
		}
		switch {
		case gget(p, "text").Type == gjson.String:
			text.WriteString(gget(p, "text").Str)
		case gget(p, "functionCall").IsObject():
			fc := gget(p, "functionCall")
			name := gget(fc, "name")
			if name.Type != gjson.String || name.Str == "" {
				return nil, gcBad(pat+".functionCall.name", "a function call needs a name")
			}
			a := gget(fc, "args")
			s := "{}"
			switch {
			case a.IsObject():
				s = compactJSON(a.Raw)
			case a.Exists() && a.Type != gjson.Null:
				return nil, gcBad(pat+".functionCall.args", "expected an object")
			}
			calls = append(calls, gcCallID{c.ids[len(calls)], name.Str})
			args = append(args, s)
		case gget(p, "executableCode").IsObject():
			ec := gget(p, "executableCode")
			text.WriteString("```" + strings.ToLower(gget(ec, "language").Str) + "\n" + gget(ec, "code").Str + "\n```\n")
		case gget(p, "codeExecutionResult").IsObject():
			text.WriteString(gget(gget(p, "codeExecutionResult"), "output").Str)
		case gget(p, "inlineData").Exists() || gget(p, "fileData").Exists():
			return nil, gcUnsupported(pat, "media in model turns have no chat-completions equivalent")
		}
		// Parts with only a thoughtSignature or metadata carry nothing.
	}
	w.open("assistant")
	switch {
	case text.Len() > 0:
		w.b = appendJSONString(w.b, text.String())
	case len(calls) > 0:
		w.b = append(w.b, "null"...)
	default:
		w.b = append(w.b, `""`...)
	}
	if len(calls) > 0 {
		w.b = append(w.b, `,"tool_calls":[`...)
		for k, call := range calls {
			if k > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendToolCall(w.b, -1, call.id, call.name, args[k])
		}
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
	return calls, nil
}

func compactJSON(raw string) string {
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(raw)) != nil {
		return raw
	}
	return buf.String()
}

// gcUser writes a user turn: its function responses as tool messages, in
// order, right after the assistant's calls, then its other parts as one
// user message.
func gcUser(w *caMsgWriter, at string, c gcContent, calls []gcCallID) error {
	answered := make([]bool, len(calls))
	var parts [][]byte
	texts := 0
	for j, p := range c.parts {
		pat := at + ".parts[" + strconv.Itoa(j) + "]"
		if !p.IsObject() {
			return gcBad(pat, "expected a Part object")
		}
		if gget(p, "thought").Type == gjson.True {
			continue
		}
		if fr := gget(p, "functionResponse"); fr.IsObject() {
			id, name := gget(fr, "id").Str, gget(fr, "name").Str
			k := -1
			for n, call := range calls {
				if !answered[n] && id != "" && call.id == id {
					k = n
					break
				}
			}
			for n, call := range calls {
				if k < 0 && !answered[n] && call.name == name {
					k = n
				}
			}
			if k < 0 {
				return gcBad(pat+".functionResponse", fmt.Sprintf("function response %q answers no function call of the previous model turn", name))
			}
			answered[k] = true
			if gget(fr, "parts").IsArray() && len(gget(fr, "parts").Array()) > 0 {
				return gcUnsupported(pat+".functionResponse.parts", "multimodal function responses have no chat-completions equivalent")
			}
			resp := gget(fr, "response")
			content := "{}"
			if resp.Exists() && resp.Type != gjson.Null {
				content = compactJSON(resp.Raw)
			}
			w.open("tool")
			w.b = appendJSONString(w.b, content)
			w.b = append(w.b, `,"tool_call_id":`...)
			w.b = appendJSONString(w.b, calls[k].id)
			w.b = append(w.b, '}')
			continue
		}
		part, isText, err := gcUserPart(pat, p)
		if err != nil {
			return err
		}
		if part != nil {
			parts = append(parts, part)
			if isText {
				texts++
			}
		}
	}
	if len(parts) == 0 {
		return nil
	}
	w.open("user")
	if len(parts) == 1 && texts == 1 {
		w.b = append(w.b, gjson.GetBytes(parts[0], "text").Raw...)
		w.b = append(w.b, '}')
		return nil
	}
	w.b = append(w.b, '[')
	for k, part := range parts {
		if k > 0 {
			w.b = append(w.b, ',')
		}
		w.b = append(w.b, part...)
	}
	w.b = append(w.b, "]}"...)
	return nil
}

// gcUserPart is one non-tool part of a user turn as an OpenAI content part
// (nil for a part that carries nothing).
func gcUserPart(at string, p gjson.Result) (part []byte, text bool, err error) {
	if t := gget(p, "text"); t.Type == gjson.String {
		return gcText(t.Str), true, nil
	}
	if d := gget(p, "inlineData"); d.IsObject() {
		mime, data := strings.ToLower(gget(d, "mimeType").Str), gget(d, "data").Str
		if mime == "" || data == "" {
			return nil, false, gcBad(at+".inlineData", "inline data needs mimeType and data")
		}
		switch {
		case strings.HasPrefix(mime, "image/"):
			return gcImage("data:" + mime + ";base64," + data), false, nil
		case mime == "audio/wav" || mime == "audio/x-wav" || mime == "audio/mp3" || mime == "audio/mpeg":
			format := "wav"
			if strings.Contains(mime, "mp") {
				format = "mp3"
			}
			b := append([]byte(`{"type":"input_audio","input_audio":{"data":`), appendJSONString(nil, data)...)
			b = append(b, `,"format":"`+format+`"}}`...)
			return b, false, nil
		case mime == "application/pdf":
			b := append([]byte(`{"type":"file","file":{"filename":"document.pdf","file_data":`), appendJSONString(nil, "data:application/pdf;base64,"+data)...)
			return append(b, "}}"...), false, nil
		case strings.HasPrefix(mime, "text/"):
			dec, derr := base64.StdEncoding.DecodeString(data)
			if derr != nil {
				return nil, false, gcBad(at+".inlineData.data", "expected base64 data")
			}
			return gcText(string(dec)), true, nil
		}
		return nil, false, gcUnsupported(at+".inlineData", "inline data of type "+mime+" has no chat-completions equivalent")
	}
	if f := gget(p, "fileData"); f.IsObject() {
		mime, uri := strings.ToLower(gget(f, "mimeType").Str), gget(f, "fileUri").Str
		if uri == "" {
			return nil, false, gcBad(at+".fileData.fileUri", "a file needs a fileUri")
		}
		if (mime == "" || strings.HasPrefix(mime, "image/")) && (strings.HasPrefix(uri, "https://") || strings.HasPrefix(uri, "http://")) {
			return gcImage(uri), false, nil
		}
		return nil, false, gcUnsupported(at+".fileData", "only image files at an http(s) URL can be sent to this backend")
	}
	if fc := gget(p, "functionCall"); fc.Exists() {
		return nil, false, gcBad(at+".functionCall", "function calls belong in model turns")
	}
	return nil, false, nil
}

func gcText(s string) []byte {
	b := append([]byte(`{"type":"text","text":`), appendJSONString(nil, s)...)
	return append(b, '}')
}

func gcImage(url string) []byte {
	b := append([]byte(`{"type":"image_url","image_url":{"url":`), appendJSONString(nil, url)...)
	return append(b, "}}"...)
}

// gcToolConfig reads functionCallingConfig and writes tool_choice; allowed
// is the allowedFunctionNames of mode ANY (the declared tools are then
// restricted to them).
func gcToolConfig(b []byte, tc gjson.Result) (allowed map[string]bool, _ []byte, _ error) {
	fcc := gget(tc, "functionCallingConfig")
	if !fcc.IsObject() {
		return nil, b, nil
	}
	mode := strings.ToUpper(gget(fcc, "mode").Str)
	var names []string
	gget(fcc, "allowedFunctionNames").ForEach(func(_, n gjson.Result) bool {
		names = append(names, n.Str)
		return true
	})
	switch mode {
	case "", "MODE_UNSPECIFIED":
	case "AUTO", "VALIDATED":
		b = append(b, `,"tool_choice":"auto"`...)
	case "NONE":
		b = append(b, `,"tool_choice":"none"`...)
	case "ANY":
		if len(names) == 1 {
			b = append(b, `,"tool_choice":{"type":"function","function":{"name":`...)
			b = appendJSONString(b, names[0])
			b = append(b, "}}"...)
		} else {
			b = append(b, `,"tool_choice":"required"`...)
		}
		if len(names) > 0 {
			allowed = map[string]bool{}
			for _, n := range names {
				allowed[n] = true
			}
		}
	default:
		return nil, nil, gcBad("toolConfig.functionCallingConfig.mode", "unknown mode "+strconv.Quote(mode))
	}
	return allowed, b, nil
}

// gcTools writes the function declarations as OpenAI function tools and a
// Google Search tool as web_search_options.
func gcTools(b []byte, tools gjson.Result, allowed map[string]bool) ([]byte, error) {
	if !tools.Exists() || tools.Type == gjson.Null {
		return b, nil
	}
	if !tools.IsArray() {
		return nil, gcBad("tools", "expected an array of Tool")
	}
	n := 0
	search := false
	var err error
	i := -1
	tools.ForEach(func(_, t gjson.Result) bool {
		i++
		t.ForEach(func(k, v gjson.Result) bool {
			switch geminiKey(k.Str) {
			case "googleSearch", "googleSearchRetrieval":
				search = true
			case "functionDeclarations":
				j := -1
				v.ForEach(func(_, f gjson.Result) bool {
					j++
					at := fmt.Sprintf("tools[%d].functionDeclarations[%d]", i, j)
					name := gget(f, "name")
					if name.Type != gjson.String || name.Str == "" {
						err = gcBad(at+".name", "a function declaration needs a name")
						return false
					}
					if allowed != nil && !allowed[name.Str] {
						return true
					}
					if n == 0 {
						b = append(b, `,"tools":[`...)
					} else {
						b = append(b, ',')
					}
					n++
					b = append(b, `{"type":"function","function":{"name":`...)
					b = appendJSONString(b, name.Str)
					if d := gget(f, "description"); d.Type == gjson.String {
						b = append(b, `,"description":`...)
						b = appendJSONString(b, d.Str)
					}
					b = append(b, `,"parameters":`...)
					switch js, ps := gget(f, "parametersJsonSchema"), gget(f, "parameters"); {
					case js.IsObject():
						b = append(b, js.Raw...)
					case ps.IsObject():
						b = appendJSONSchema(b, ps)
					default:
						b = append(b, `{"type":"object","properties":{}}`...)
					}
					b = append(b, "}}"...)
					return true
				})
			}
			// codeExecution, urlContext, fileSearch, … : server tools, dropped.
			return err == nil
		})
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if n > 0 {
		b = append(b, ']')
	}
	if search {
		b = append(b, `,"web_search_options":{}`...)
	}
	return b, nil
}

// appendJSONSchema writes a Gemini Schema (OpenAPI 3.0 subset: upper-case
// types, nullable) as JSON Schema: types lower-cased, nullable as a type
// list with "null", propertyOrdering dropped, the rest as it is.
func appendJSONSchema(b []byte, s gjson.Result) []byte {
	if !s.IsObject() {
		return append(b, s.Raw...)
	}
	nullable := false
	typ := ""
	s.ForEach(func(k, v gjson.Result) bool {
		if k.Str == "nullable" && v.Type == gjson.True {
			nullable = true
		}
		if k.Str == "type" && v.Type == gjson.String {
			typ = strings.ToLower(v.Str)
		}
		return true
	})
	b = append(b, '{')
	n := 0
	key := func(k string) {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendJSONString(b, k)
		b = append(b, ':')
	}
	s.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			if typ == "" || typ == "type_unspecified" {
				return true
			}
			key("type")
			if nullable {
				b = append(b, '[')
				b = appendJSONString(b, typ)
				b = append(b, `,"null"]`...)
			} else {
				b = appendJSONString(b, typ)
			}
		case "nullable", "propertyOrdering":
		case "properties":
			key("properties")
			if !v.IsObject() {
				b = append(b, v.Raw...)
				return true
			}
			b = append(b, '{')
			i := 0
			v.ForEach(func(pk, pv gjson.Result) bool {
				if i > 0 {
					b = append(b, ',')
				}
				i++
				b = appendJSONString(b, pk.Str)
				b = append(b, ':')
				b = appendJSONSchema(b, pv)
				return true
			})
			b = append(b, '}')
		case "items":
			key("items")
			b = appendJSONSchema(b, v)
		case "anyOf":
			key("anyOf")
			if !v.IsArray() {
				b = append(b, v.Raw...)
				return true
			}
			b = append(b, '[')
			i := 0
			v.ForEach(func(_, e gjson.Result) bool {
				if i > 0 {
					b = append(b, ',')
				}
				i++
				b = appendJSONSchema(b, e)
				return true
			})
			b = append(b, ']')
		default:
			key(k.Str)
			b = append(b, v.Raw...)
		}
		return true
	})
	return append(b, '}')
}

// gcEffort maps a thinking budget to a reasoning effort through the one
// budget ⇄ effort table (reasoning.go); −1, dynamic, leaves it unset.
func gcEffort(budget int64) string {
	if budget < 0 {
		return ""
	}
	return ReasoningEffort(budget)
}

// gcGenerationConfig writes the generation parameters that have an OpenAI
// equivalent.
func gcGenerationConfig(b []byte, gc gjson.Result) ([]byte, error) {
	if !gc.Exists() || gc.Type == gjson.Null {
		return b, nil
	}
	if !gc.IsObject() {
		return nil, gcBad("generationConfig", "expected an object")
	}
	var err error
	var mime string
	var schema, jsonSchema gjson.Result
	num := func(name string, v gjson.Result) {
		if v.Type == gjson.Number {
			b = append(b, `,"`+name+`":`...)
			b = append(b, v.Raw...)
		}
	}
	gc.ForEach(func(k, v gjson.Result) bool {
		at := "generationConfig." + geminiKey(k.Str)
		switch geminiKey(k.Str) {
		case "temperature":
			num("temperature", v)
		case "topP":
			num("top_p", v)
		case "maxOutputTokens":
			num("max_tokens", v)
		case "presencePenalty":
			num("presence_penalty", v)
		case "frequencyPenalty":
			num("frequency_penalty", v)
		case "seed":
			num("seed", v)
		case "candidateCount":
			if v.Type == gjson.Number && v.Int() > 1 {
				err = gcUnsupported(at, "llmproc answers with one candidate")
			}
		case "stopSequences":
			if v.IsArray() && len(v.Array()) > 0 {
				b = append(b, `,"stop":[`...)
				for i, s := range v.Array() {
					if i > 0 {
						b = append(b, ',')
					}
					b = appendJSONString(b, s.String())
				}
				b = append(b, ']')
			}
		case "responseMimeType":
			mime = v.Str
		case "responseSchema":
			schema = v
		case "responseJsonSchema":
			jsonSchema = v
		case "responseLogprobs":
			if v.Type == gjson.True {
				b = append(b, `,"logprobs":true`...)
			}
		case "logprobs":
			num("top_logprobs", v)
		case "responseModalities":
			v.ForEach(func(_, m gjson.Result) bool {
				if !strings.EqualFold(m.Str, "TEXT") {
					err = gcUnsupported(at, "only TEXT answers can be translated")
				}
				return err == nil
			})
		case "thinkingConfig":
			effort := ""
			if lv := gget(v, "thinkingLevel"); lv.Type == gjson.String && !strings.EqualFold(lv.Str, "THINKING_LEVEL_UNSPECIFIED") {
				effort = strings.ToLower(lv.Str)
			} else if bd := gget(v, "thinkingBudget"); bd.Type == gjson.Number {
				effort = gcEffort(bd.Int())
			}
			if effort != "" {
				b = append(b, `,"reasoning_effort":`...)
				b = appendJSONString(b, effort)
			}
		}
		// topK, mediaResolution, speechConfig, audioTimestamp, … : dropped.
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(mime) {
	case "", "text/plain":
	case "application/json":
		switch {
		case jsonSchema.IsObject():
			b = append(b, `,"response_format":{"type":"json_schema","json_schema":{"name":"response","schema":`...)
			b = append(b, jsonSchema.Raw...)
			b = append(b, "}}"...)
		case schema.IsObject():
			b = append(b, `,"response_format":{"type":"json_schema","json_schema":{"name":"response","schema":`...)
			b = appendJSONSchema(b, schema)
			b = append(b, "}}"...)
		default:
			b = append(b, `,"response_format":{"type":"json_object"}`...)
		}
	default:
		return nil, gcUnsupported("generationConfig.responseMimeType", "only text/plain and application/json answers can be translated")
	}
	return b, nil
}
