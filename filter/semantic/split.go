package semantic

import (
	"strings"

	"github.com/llmproc/llmproc/filter/cache"
)

// bucketMark is added to the endpoint of a bucket's key input, so that a
// bucket never equals the exact key of any request.
const bucketMark = "\x00semantic/1"

// Turn finds the latest user turn of a parsed request body in the client
// API api (cache.APIChat, APIMessages, APIResponses or APIGemini): its text,
// and the string value that holds it (the content, a Responses request's
// input, or the last text part of an array of parts, the earlier parts
// staying exact in the bucket), which BucketOf blanks. ok is false unless
// the turn is the user's and holds only text:
//
//   - chat, messages: the last of "messages" is role "user" and its content
//     a string or an array of "text" parts only;
//   - responses: "input" is a string, or its last item is a user message
//     (type "message" or none) whose content is a string or "input_text"
//     parts only; a body that leans on state the provider keeps
//     (Doc.ProviderState: previous_response_id, conversation, prompt,
//     background) has no turn to compare, since llmproc cannot see the rest
//     of its input;
//   - gemini: the last of "contents" is role "user" (or has none) and every
//     part holds only "text".
//
// An image, a tool result, a document or any other part is no text to
// compare, so such a turn is never split. text views the body d was parsed
// from when it is one string without escapes.
func Turn(d *cache.Doc, api string) (text string, at cache.Value, ok bool) {
	root := d.Root()
	var list, content, partType string
	switch api {
	case cache.APIChat, cache.APIMessages:
		list, content, partType = "messages", "content", "text"
	case cache.APIResponses:
		if d.ProviderState() {
			return "", cache.Value{}, false
		}
		if in := root.Get("input"); in.IsString() {
			return nonBlank(in.Str(), in)
		}
		list, content, partType = "input", "content", "input_text"
	case cache.APIGemini:
		list, content = "contents", "parts"
	default:
		return "", cache.Value{}, false
	}
	items := root.Get(list)
	n := items.Len()
	if !items.IsArray() || n == 0 {
		return "", cache.Value{}, false
	}
	last := items.Index(n - 1)
	if !last.IsObject() {
		return "", cache.Value{}, false
	}
	switch role := last.Get("role"); {
	case api == cache.APIGemini && !role.Exists(): // a single-turn request may leave it out
	case !role.IsString() || role.Str() != "user":
		return "", cache.Value{}, false
	}
	if api == cache.APIResponses {
		if t := last.Get("type"); t.Exists() && (!t.IsString() || t.Str() != "message") {
			return "", cache.Value{}, false
		}
	}
	c := last.Get(content)
	switch {
	case c.IsString() && api != cache.APIGemini:
		return nonBlank(c.Str(), c)
	case !c.IsArray():
		return "", cache.Value{}, false
	}
	// Every part must be text; the last one is the turn compared, the
	// others stay exact in the bucket: a long constant part (a CLI's session
	// context, a reminder block) would otherwise make any two questions
	// look alike to the embedding.
	var final cache.Value
	good := true
	c.Each(func(_ string, p cache.Value) bool {
		t, only := textPart(p, partType)
		if !only {
			good = false
			return false
		}
		final = t
		return true
	})
	if !good || !final.Exists() {
		return "", cache.Value{}, false
	}
	return nonBlank(final.Str(), final)
}

// textPart returns a content part's text value and whether the part is
// text only: {"type": partType, "text": "…"} (other members, such as
// Anthropic's cache_control, do not change the answer), or for Gemini
// (partType "") an object whose only member is "text" — any other member
// (inlineData, fileData, functionResponse, …) carries content of its own.
func textPart(p cache.Value, partType string) (cache.Value, bool) {
	if !p.IsObject() {
		return cache.Value{}, false
	}
	t := p.Get("text")
	if partType != "" {
		return t, p.Get("type").Str() == partType && t.IsString()
	}
	return t, p.Len() == 1 && t.IsString()
}

func nonBlank(text string, at cache.Value) (string, cache.Value, bool) {
	if strings.TrimSpace(text) == "" {
		return "", cache.Value{}, false
	}
	return text, at, true
}

// Split is Turn over an unparsed body; the text is a copy (it may be kept
// past the body).
func Split(api string, body []byte) (text string, ok bool) {
	d, err := cache.Parse(body)
	if err != nil {
		return "", false
	}
	defer d.Release()
	text, _, ok = Turn(d, api)
	return strings.Clone(text), ok
}

// BucketOf is the bucket of a request: the exact cache key of in over the
// body d was parsed from with the turn's value at (Turn's) blanked — the
// key of the body with that value set to "" — and the endpoint marked, so
// every scope field (tenant, client API, endpoint, pool, model) and the
// rest of the body stay exact.
func BucketOf(d *cache.Doc, in cache.KeyInput, at cache.Value) Bucket {
	in.Endpoint += bucketMark
	return Bucket(d.KeyWith(in, cache.Sub{At: at, Text: ""}))
}
