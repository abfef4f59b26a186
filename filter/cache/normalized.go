package cache

import (
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
// when there is none, or it holds no text, or (Responses) the body leans on
// state the provider keeps (ProviderState): then only the exact key applies.
// Its errors are KeyOf's.
func NormalizedKeyOf(in KeyInput, api string) (k Key, ok bool, err error) {
	d, err := Parse(in.Body)
	if err != nil {
		return Key{}, false, err
	}
	defer d.Release()
	k, ok = d.NormalizedKey(in, api)
	return k, ok, nil
}

// NormalizedKey is NormalizedKeyOf(in, api) for the body d was parsed from.
func (d *Doc) NormalizedKey(in KeyInput, api string) (Key, bool) {
	turn := d.LatestUserTurn(api)
	if len(turn) == 0 {
		return Key{}, false
	}
	subs := make([]Sub, len(turn))
	for i, v := range turn {
		subs[i] = Sub{At: v, Text: meaning.Normalize(v.Str())}
	}
	return d.key(in, normalizedKeyVersion, subs), true
}

// LatestUserTurn returns the string values that hold the text of the
// latest user turn of a request of the client API (APIChat, …): the last
// message's content when it is the user's — a string, or the text parts of
// an array — or a Responses request's input string. It returns nil when
// there is none, or when a Responses request leans on state the provider
// keeps (ProviderState).
func (d *Doc) LatestUserTurn(api string) []Value {
	root := d.Root()
	var list, content, part, partType, userRole string
	switch api {
	case APIChat, APIMessages:
		list, content, part, partType, userRole = "messages", "content", "text", "text", "user"
	case APIResponses:
		if provider, _ := state(root); provider { // the rest of its input is the provider's
			return nil
		}
		if in := root.Get("input"); in.IsString() {
			return []Value{in}
		}
		list, content, part, partType, userRole = "input", "content", "text", "input_text", "user"
	case APIGemini:
		list, content, part, partType, userRole = "contents", "parts", "text", "", "user"
	default:
		return nil
	}
	items := root.Get(list)
	n := items.Len()
	if !items.IsArray() || n == 0 {
		return nil
	}
	last := items.Index(n - 1)
	role := last.Get("role")
	switch {
	case api == APIGemini && !role.Exists(): // a single-turn request may leave the role out
	case !role.IsString() || role.Str() != userRole:
		return nil
	}
	if api == APIResponses {
		if t := last.Get("type"); t.Exists() && t.Str() != "message" {
			return nil
		}
	}
	c := last.Get(content)
	if c.IsString() && api != APIGemini {
		return []Value{c}
	}
	if !c.IsArray() {
		return nil
	}
	var out []Value
	c.Each(func(_ string, p Value) bool {
		t := p.Get(part)
		typ := p.Get("type")
		if t.IsString() && (partType == "" && !typ.Exists() || typ.Str() == partType) {
			out = append(out, t)
		}
		return true
	})
	return out
}
