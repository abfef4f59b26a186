package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// KeyInput is everything that scopes and determines an answer.
type KeyInput struct {
	Tenant string // the caller's tenant ("" when none)
	// Group, when set, is the tenant's identity.tenants[].cache_group: the
	// tenants of one group share entries, so the group scopes the key in
	// the tenant's place (in a form no tenant's key can take).
	Group        string
	ClientSchema string // "openai" or "anthropic"
	Endpoint     string // client path, e.g. "/v1/chat/completions"
	Pool, Model  string // resolved pool and the model the client asked for
	Body         []byte // the client's request body, in its schema
}

// keyVersion starts every canonical form; change it when the form changes so
// that entries written by older replicas are never read as current ones.
const keyVersion = "llmproc-cache-key/1"

// keyVersionGroup starts the canonical form of a key scoped by a cache
// group instead of a tenant: a different length-prefixed first field, so a
// group's key never equals a tenant's, whatever the two are named.
const keyVersionGroup = "llmproc-cache-key/1+group"

// KeyOf hashes a canonical form of in: the scope fields, then the body with
// JSON object members sorted by key, insignificant whitespace dropped,
// strings unescaped and numbers written in one spelling (1, 1.0 and 1e0 are
// the same number). The top-level "stream" and "stream_options" members do
// not change the answer, only its framing, and are left out; every other
// member is included as sent. It returns a 400 apierr.Error if Body is not a
// JSON object.
func KeyOf(in KeyInput) (Key, error) {
	return keyOf(in, keyVersion)
}

func keyOf(in KeyInput, version string) (Key, error) {
	body := unsafe.String(unsafe.SliceData(in.Body), len(in.Body))
	if !gjson.Valid(body) {
		return Key{}, apierr.BadRequest("invalid_json", "We could not parse the JSON body of your request. The request body must be valid JSON.")
	}
	root := gjson.Parse(body)
	if !root.IsObject() {
		return Key{}, apierr.BadRequest("invalid_json", "The request body must be a JSON object.")
	}
	c := canon{
		buf:     make([]byte, 0, 64+len(in.Tenant)+len(in.Group)+len(in.Endpoint)+len(in.Pool)+len(in.Model)+len(in.Body)),
		members: make([]member, 0, 32),
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
type canon struct {
	buf     []byte
	members []member
}

type member struct {
	key, val gjson.Result
}

func (c *canon) str(s string) {
	c.buf = binary.AppendUvarint(c.buf, uint64(len(s)))
	c.buf = append(c.buf, s...)
}

// text writes a JSON string by its value, so escapes do not matter; but a
// string whose escapes decode to U+FFFD (a lone surrogate such as \ud800,
// which gjson replaces) is written as sent, so it never shares a key with
// one that spells U+FFFD itself.
func (c *canon) text(v gjson.Result) {
	if strings.Contains(v.Raw, `\u`) && strings.ContainsRune(v.Str, utf8.RuneError) {
		c.buf = append(c.buf, 'r')
		c.str(v.Raw)
		return
	}
	c.str(v.Str)
}

func (c *canon) value(v gjson.Result, top bool) {
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

func (c *canon) object(v gjson.Result, top bool) {
	start := len(c.members)
	v.ForEach(func(k, e gjson.Result) bool {
		if top && (k.Str == "stream" || k.Str == "stream_options") {
			return true
		}
		c.members = append(c.members, member{k, e})
		return true
	})
	end := len(c.members)
	// A stable sort keeps duplicate keys in document order: two bodies that
	// differ only in the order of duplicates get different keys, which is
	// safe (a miss), never a wrong hit.
	slices.SortStableFunc(c.members[start:end], func(a, b member) int { return strings.Compare(a.key.Str, b.key.Str) })
	c.buf = append(c.buf, '{')
	for i := start; i < end; i++ {
		m := c.members[i] // by index: nested objects may grow c.members
		c.text(m.key)
		c.value(m.val, false)
	}
	c.buf = append(c.buf, '}')
	c.members = c.members[:start]
}

// appendNumber writes the JSON number raw in one spelling for its value:
// "-"? digits "e" exponent, where the value is 0.digits × 10^exponent, the
// digits have no leading or trailing zeros, and zero is "0". It is exact (no
// float rounding), so 0.1 and 0.10000000000000001 stay different numbers.
// An exponent too large for int64 keeps the raw text.
func appendNumber(dst []byte, raw string) []byte {
	s := raw
	neg := false
	if s != "" && s[0] == '-' {
		neg, s = true, s[1:]
	}
	mant, exp := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], s[i+1:]
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	e := int64(0)
	if exp != "" {
		n, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || n > 1<<60 || n < -(1<<60) {
			return append(append(dst, 'r'), raw...)
		}
		e = n
	}
	// value = 0.(intPart frac) × 10^(e + len(intPart)); strip leading zeros
	// (each lowers the exponent) and trailing zeros (no effect).
	e += int64(len(intPart))
	lead := 0
	for lead < len(intPart) && intPart[lead] == '0' {
		lead++
	}
	var head, tail string // the digits, split across intPart and frac
	if lead < len(intPart) {
		head, tail = intPart[lead:], frac
		e -= int64(lead)
	} else {
		e -= int64(len(intPart))
		z := 0
		for z < len(frac) && frac[z] == '0' {
			z++
		}
		e -= int64(z)
		tail = frac[z:]
	}
	if head == "" {
		tail = strings.TrimRight(tail, "0")
	} else if strings.Trim(tail, "0") == "" {
		head, tail = strings.TrimRight(head, "0"), ""
	} else {
		tail = strings.TrimRight(tail, "0")
	}
	if head == "" && tail == "" {
		return append(dst, '0')
	}
	if neg {
		dst = append(dst, '-')
	}
	dst = append(dst, head...)
	dst = append(dst, tail...)
	dst = append(dst, 'e')
	return strconv.AppendInt(dst, e, 10)
}
