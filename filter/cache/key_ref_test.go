package cache

// This file keeps the cache key as it was before the single-pass Doc
// (renamed with a ref prefix): gjson's per-level ForEach for the exact key,
// sjson rewrites of the body for the normalized one. TestSameKeys and
// FuzzSameKeys hold Doc to it: no key may change.

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/meaning"
)

func refKeyOf(in KeyInput, version string) (Key, error) {
	body := unsafe.String(unsafe.SliceData(in.Body), len(in.Body))
	if !gjson.Valid(body) {
		return Key{}, apierr.BadRequest("invalid_json", "We could not parse the JSON body of your request. The request body must be valid JSON.")
	}
	root := gjson.Parse(body)
	if !root.IsObject() {
		return Key{}, apierr.BadRequest("invalid_json", "The request body must be a JSON object.")
	}
	c := refCanon{
		buf:     make([]byte, 0, 64+len(in.Tenant)+len(in.Group)+len(in.Endpoint)+len(in.Pool)+len(in.Model)+len(in.Body)),
		members: make([]refMember, 0, 32),
	}
	scope := in.Tenant
	if in.Group != "" {
		// A cache group's entries are apart from any tenant's, in each tier.
		scope = in.Group
		if version == keyVersion {
			version = keyVersionGroup
		} else {
			version += "+group"
		}
	}
	for _, s := range [...]string{version, scope, in.ClientSchema, in.Endpoint, in.Pool, in.Model} {
		c.str(s)
	}
	c.value(root, true)
	return sha256.Sum256(c.buf), nil
}

// canon writes the canonical form: a type byte per value, strings and keys
// length-prefixed (so no two different documents share a form), object
// members in key order. members is a stack of object members shared by the
// whole walk, so sorting costs no allocation per object once it has grown.
type refCanon struct {
	buf     []byte
	members []refMember
}

type refMember struct {
	key, val gjson.Result
}

func (c *refCanon) str(s string) {
	c.buf = binary.AppendUvarint(c.buf, uint64(len(s)))
	c.buf = append(c.buf, s...)
}

// text writes a JSON string by its value, so escapes do not matter; but a
// string whose escapes decode to U+FFFD (a lone surrogate such as \ud800,
// which gjson replaces) is written as sent, so it never shares a key with
// one that spells U+FFFD itself.
func (c *refCanon) text(v gjson.Result) {
	if strings.Contains(v.Raw, `\u`) && strings.ContainsRune(v.Str, utf8.RuneError) {
		c.buf = append(c.buf, 'r')
		c.str(v.Raw)
		return
	}
	c.str(v.Str)
}

func (c *refCanon) value(v gjson.Result, top bool) {
	switch v.Type {
	case gjson.Null:
		c.buf = append(c.buf, 'z')
	case gjson.False:
		c.buf = append(c.buf, 'f')
	case gjson.True:
		c.buf = append(c.buf, 't')
	case gjson.Number:
		c.buf = append(c.buf, 'n')
		c.buf = appendNumber(c.buf, v.Raw)
		c.buf = append(c.buf, ';')
	case gjson.String:
		c.buf = append(c.buf, 's')
		c.text(v)
	case gjson.JSON:
		if v.IsArray() {
			c.buf = append(c.buf, '[')
			v.ForEach(func(_, e gjson.Result) bool {
				c.value(e, false)
				return true
			})
			c.buf = append(c.buf, ']')
			return
		}
		c.object(v, top)
	}
}

func (c *refCanon) object(v gjson.Result, top bool) {
	start := len(c.members)
	v.ForEach(func(k, e gjson.Result) bool {
		if top && (k.Str == "stream" || k.Str == "stream_options") {
			return true
		}
		c.members = append(c.members, refMember{k, e})
		return true
	})
	end := len(c.members)
	// A stable sort keeps duplicate keys in document order: two bodies that
	// differ only in the order of duplicates get different keys, which is
	// safe (a miss), never a wrong hit.
	slices.SortStableFunc(c.members[start:end], func(a, b refMember) int { return strings.Compare(a.key.Str, b.key.Str) })
	c.buf = append(c.buf, '{')
	for i := start; i < end; i++ {
		m := c.members[i] // by index: nested objects may grow c.members
		c.text(m.key)
		c.value(m.val, false)
	}
	c.buf = append(c.buf, '}')
	c.members = c.members[:start]
}

// refNormalizedKeyOf is the normalized key before Doc.
func refNormalizedKeyOf(in KeyInput, api string) (k Key, ok bool, err error) {
	paths := refTurnPaths(api, in.Body)
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
	k, err = refKeyOf(in, normalizedKeyVersion)
	return k, err == nil, err
}

// turnPaths returns the gjson paths of the latest user turn's text values.
func refTurnPaths(api string, b []byte) []string {
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
