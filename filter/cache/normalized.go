package cache

import (
	"strconv"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/meaning"
)

// Client APIs whose latest user turn NormalizedKeyOf finds.
const (
	APIChat      = "chat"      // OpenAI chat completions: messages[].content
	APIMessages  = "messages"  // Anthropic Messages: messages[].content
	APIResponses = "responses" // OpenAI Responses: input
	APIGemini    = "gemini"    // Gemini generateContent: contents[].parts
)

// normalizedKeyVersion keeps normalized keys apart from exact ones and from
// those of other normalization rules.
const normalizedKeyVersion = keyVersion + "/normalized/" + meaning.Version

// NormalizedKeyOf is the normalized tier's key: KeyOf over the body with the
// text of the latest user turn replaced by its meaning.Normalize form;
// everything else (system prompt, earlier turns, tools, sampling parameters,
// and the scope: tenant, client API, endpoint, pool, model) stays exact. The
// latest user turn is the last message when it is the user's; ok is false
// when there is none, or it holds no text (then only the exact key applies).
// Its errors are KeyOf's.
func NormalizedKeyOf(in KeyInput, api string) (k Key, ok bool, err error) {
	paths := turnPaths(api, in.Body)
	if len(paths) == 0 {
		return Key{}, false, nil
	}
	body := in.Body
	for _, p := range paths {
		text := gjson.GetBytes(body, p).Str
		if body, err = sjson.SetBytes(body, p, meaning.Normalize(text)); err != nil {
			return Key{}, false, nil
		}
	}
	in.Body = body
	k, err = keyOf(in, normalizedKeyVersion)
	return k, err == nil, err
}

// turnPaths returns the gjson paths of the latest user turn's text values.
func turnPaths(api string, b []byte) []string {
	body := unsafe.String(unsafe.SliceData(b), len(b))
	var list, content, part, partType, userRole string
	switch api {
	case APIChat, APIMessages:
		list, content, part, partType, userRole = "messages", "content", "text", "text", "user"
	case APIResponses:
		if in := gjson.Get(body, "input"); in.Type == gjson.String {
			return []string{"input"}
		}
		list, content, part, partType, userRole = "input", "content", "text", "input_text", "user"
	case APIGemini:
		list, content, part, partType, userRole = "contents", "parts", "text", "", "user"
	default:
		return nil
	}
	items := gjson.Get(body, list)
	if !items.IsArray() {
		return nil
	}
	n := int(gjson.Get(items.Raw, "#").Int())
	if n == 0 {
		return nil
	}
	last := gjson.Get(items.Raw, strconv.Itoa(n-1))
	role := last.Get("role")
	switch {
	case api == APIGemini && !role.Exists(): // a single-turn request may leave the role out
	case role.Type != gjson.String || role.Str != userRole:
		return nil
	}
	if api == APIResponses {
		if t := last.Get("type"); t.Exists() && t.Str != "message" {
			return nil
		}
	}
	prefix := list + "." + strconv.Itoa(n-1) + "." + content
	c := last.Get(content)
	if c.Type == gjson.String && api != APIGemini {
		return []string{prefix}
	}
	if !c.IsArray() {
		return nil
	}
	var paths []string
	i := 0
	c.ForEach(func(_, p gjson.Result) bool {
		t := p.Get(part)
		typ := p.Get("type")
		if t.Type == gjson.String && (partType == "" && !typ.Exists() || typ.Str == partType) {
			paths = append(paths, prefix+"."+strconv.Itoa(i)+"."+part)
		}
		i++
		return true
	})
	return paths
}
