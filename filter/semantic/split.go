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

// Split returns the text of the latest user turn of an OpenAI
// chat-completions or Anthropic Messages body (both keep the conversation
// in "messages"), and the body with that turn's content blanked, from which
// the bucket is computed. ok is false unless the last message is the
// user's and its content is a non-empty string or an array of text parts
// only (an image, a tool result or a document is no text to compare).
func Split(body []byte) (text string, rest []byte, ok bool) {
	msgs := gjson.GetBytes(body, "messages")
	if !msgs.IsArray() {
		return "", nil, false
	}
	n := int(msgs.Get("#").Int())
	if n == 0 {
		return "", nil, false
	}
	last := msgs.Get(strconv.Itoa(n - 1))
	if last.Get("role").Str != "user" {
		return "", nil, false
	}
	c := last.Get("content")
	switch {
	case c.Type == gjson.String:
		text = c.Str
	case c.IsArray():
		var b strings.Builder
		good := true
		c.ForEach(func(_, p gjson.Result) bool {
			if p.Get("type").Str != "text" || p.Get("text").Type != gjson.String {
				good = false
				return false
			}
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(p.Get("text").Str)
			return true
		})
		if !good {
			return "", nil, false
		}
		text = b.String()
	default:
		return "", nil, false
	}
	if strings.TrimSpace(text) == "" {
		return "", nil, false
	}
	rest, err := sjson.SetBytes(body, "messages."+strconv.Itoa(n-1)+".content", "")
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
