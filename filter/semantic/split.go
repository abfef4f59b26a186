package semantic

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/cache"
)

// bucketMark is added to the endpoint of a bucket's key input, so that a
// bucket never equals the exact key of any request.
const bucketMark = "\x00semantic/1"

// Split returns the text of the latest user turn of a request body in the
// client API api (cache.APIChat, APIMessages, APIResponses or APIGemini),
// and the body with that turn's content blanked, from which the bucket is
// computed. ok is false unless the turn is the user's and holds only text:
//
//   - chat, messages: the last of "messages" is role "user" and its content
//     a string or an array of "text" parts only;
//   - responses: "input" is a string, or its last item is a user message
//     (type "message" or none) whose content is a string or "input_text"
//     parts only; a body that leans on state the provider keeps
//     (cache.ProviderState: previous_response_id, conversation, prompt,
//     background) has no turn to compare, since llmproc cannot see the rest
//     of its input;
//   - gemini: the last of "contents" is role "user" (or has none) and every
//     part holds only "text".
//
// An image, a tool result, a document or any other part is no text to
// compare, so such a turn is never split.
func Split(api string, body []byte) (text string, rest []byte, ok bool) {
	var list, content, partType string
	switch api {
	case cache.APIChat, cache.APIMessages:
		list, content, partType = "messages", "content", "text"
	case cache.APIResponses:
		if cache.ProviderState(body) {
			return "", nil, false
		}
		if in := gjson.GetBytes(body, "input"); in.Type == gjson.String {
			return blank(body, "input", in.Str)
		}
		list, content, partType = "input", "content", "input_text"
	case cache.APIGemini:
		list, content = "contents", "parts"
	default:
		return "", nil, false
	}
	items := gjson.GetBytes(body, list)
	if !items.IsArray() {
		return "", nil, false
	}
	n := int(items.Get("#").Int())
	if n == 0 {
		return "", nil, false
	}
	last := items.Get(strconv.Itoa(n - 1))
	if !last.IsObject() {
		return "", nil, false
	}
	switch role := last.Get("role"); {
	case api == cache.APIGemini && !role.Exists(): // a single-turn request may leave it out
	case role.Type != gjson.String || role.Str != "user":
		return "", nil, false
	}
	if api == cache.APIResponses {
		if t := last.Get("type"); t.Exists() && (t.Type != gjson.String || t.Str != "message") {
			return "", nil, false
		}
	}
	c := last.Get(content)
	switch {
	case c.Type == gjson.String && api != cache.APIGemini:
		text = c.Str
	case c.IsArray():
		var b strings.Builder
		good := true
		c.ForEach(func(_, p gjson.Result) bool {
			t, only := textPart(p, partType)
			if !only {
				good = false
				return false
			}
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(t)
			return true
		})
		if !good {
			return "", nil, false
		}
		text = b.String()
	default:
		return "", nil, false
	}
	return blank(body, list+"."+strconv.Itoa(n-1)+"."+content, text)
}

// textPart returns a content part's text and whether the part is text only:
// {"type": partType, "text": "…"} (other members, such as Anthropic's
// cache_control, do not change the answer), or for Gemini (partType "") an
// object whose only member is "text" — any other member (inlineData,
// fileData, functionResponse, …) carries content of its own.
func textPart(p gjson.Result, partType string) (string, bool) {
	if !p.IsObject() {
		return "", false
	}
	if partType != "" {
		t := p.Get("text")
		return t.Str, p.Get("type").Str == partType && t.Type == gjson.String
	}
	var text string
	good, n := true, 0
	p.ForEach(func(k, v gjson.Result) bool {
		n++
		if k.Str != "text" || v.Type != gjson.String {
			good = false
			return false
		}
		text = v.Str
		return true
	})
	return text, good && n == 1
}

// blank returns text and the body with the value at path replaced by "",
// unless text is blank.
func blank(body []byte, path, text string) (string, []byte, bool) {
	if strings.TrimSpace(text) == "" {
		return "", nil, false
	}
	rest, err := sjson.SetBytes(body, path, "")
	if err != nil {
		return "", nil, false
	}
	return text, rest, true
}

// BucketOf is the bucket of a request: the exact cache key of in with Body
// replaced by rest (Split's) and the endpoint marked, so every scope field
// (tenant, client API, endpoint, pool, model) stays exact.
func BucketOf(in cache.KeyInput, rest []byte) (Bucket, error) {
	in.Endpoint += bucketMark
	in.Body = rest
	k, err := cache.KeyOf(in)
	return Bucket(k), err
}
