package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
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
	// Body is the client's request body, in its schema. The Doc methods
	// ignore it: the Doc is the body.
	Body []byte
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
// JSON object. A caller that needs more than one key of a body parses it
// once (Parse) and asks the Doc.
func KeyOf(in KeyInput) (Key, error) {
	d, err := Parse(in.Body)
	if err != nil {
		return Key{}, err
	}
	defer d.Release()
	return d.Key(in), nil
}

// Key is KeyOf(in) for the body d was parsed from.
func (d *Doc) Key(in KeyInput) Key { return d.key(in, keyVersion, nil) }

// Sub replaces a value of the body, for a key (KeyWith): the value At
// counts as the JSON string Text.
type Sub struct {
	At   Value
	Text string
}

// KeyWith is Key over the body with the subs' values replaced by their
// texts: the key KeyOf gives the body rewritten so (with sjson, say),
// computed without rewriting or parsing it again. A Sub whose value the
// canonical form leaves out (the top-level "stream"), or that lies inside
// another Sub's, changes nothing.
func (d *Doc) KeyWith(in KeyInput, subs ...Sub) Key { return d.key(in, keyVersion, subs) }

func (d *Doc) key(in KeyInput, version string, subs []Sub) Key {
	d.write()
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
	p := d.scratch[:0]
	for _, s := range [...]string{version, scope, in.ClientSchema, in.Endpoint, in.Pool, in.Model} {
		p = appendStr(p, s)
	}
	if d.h == nil {
		d.h = sha256.New()
	}
	h := d.h
	h.Reset()
	_, _ = h.Write(p)
	if len(subs) > 1 {
		subs = slices.Clone(subs)
		slices.SortFunc(subs, func(a, b Sub) int { return int(a.At.node().out0) - int(b.At.node().out0) })
	}
	pos := int32(0)
	for _, s := range subs {
		if s.At.d != d || s.At.n < 0 {
			continue
		}
		nd := s.At.node()
		if nd.out1 == 0 || nd.out0 < pos {
			continue
		}
		_, _ = h.Write(d.canon[pos:nd.out0])
		p = appendSubText(append(p[:0], 's'), s.Text)
		_, _ = h.Write(p)
		pos = nd.out1
	}
	_, _ = h.Write(d.canon[pos:])
	d.scratch = p[:0]
	var k Key
	h.Sum(k[:0])
	return k
}

// write writes the canonical form of the body into d.canon, once: a type
// byte per value, strings and keys length-prefixed (so no two different
// documents share a form), object members in key order.
func (d *Doc) write() {
	if d.written {
		return
	}
	d.written = true
	if cap(d.canon) < len(d.body)+64 {
		d.canon = make([]byte, 0, len(d.body)+64)
	}
	d.emit(0, true)
}

func (d *Doc) emit(n int32, top bool) {
	nd := &d.nodes[n]
	start := int32(len(d.canon))
	switch nd.kind {
	case 'z', 'f', 't':
		d.canon = append(d.canon, nd.kind)
	case 'n':
		d.canon = append(d.canon, 'n')
		d.canon = appendNumber(d.canon, unsafeString(d.raw(n)))
		d.canon = append(d.canon, ';')
	case 's':
		d.canon = append(d.canon, 's')
		d.text(n)
	case '[':
		d.canon = append(d.canon, '[')
		for c, end := n+1, nd.skip; c < end; c = d.nodes[c].skip {
			d.emit(c, false)
		}
		d.canon = append(d.canon, ']')
	case '{':
		d.object(n, top)
	}
	nd.out0, nd.out1 = start, int32(len(d.canon))
}

func (d *Doc) object(n int32, top bool) {
	start := len(d.members)
	for c, end := n+1, d.nodes[n].skip; c < end; {
		k := c
		c = d.nodes[k+1].skip
		key := d.keyString(k)
		if top && (key == "stream" || key == "stream_options") {
			continue
		}
		d.members = append(d.members, member{key: key, k: k, v: k + 1})
	}
	end := len(d.members)
	// A stable sort keeps duplicate keys in document order: two bodies that
	// differ only in the order of duplicates get different keys, which is
	// safe (a miss), never a wrong hit.
	slices.SortStableFunc(d.members[start:end], func(a, b member) int { return strings.Compare(a.key, b.key) })
	d.canon = append(d.canon, '{')
	for i := start; i < end; i++ {
		m := d.members[i] // by index: nested objects may grow d.members
		d.text(m.k)
		d.emit(m.v, false)
	}
	d.canon = append(d.canon, '}')
	d.members = d.members[:start]
}

// keyString is string node n's value; a view of the body when it has no
// escapes.
func (d *Doc) keyString(n int32) string {
	if !d.nodes[n].esc {
		r := d.raw(n)
		return unsafeString(r[1 : len(r)-1])
	}
	return d.str(n)
}

// text writes string node n by its value, so escapes do not matter; but a
// string whose escapes decode to U+FFFD (a lone surrogate such as \ud800) is
// written as sent, so it never shares a key with one that spells U+FFFD
// itself.
func (d *Doc) text(n int32) {
	raw := d.raw(n)
	if !d.nodes[n].esc {
		d.canon = appendStr(d.canon, unsafeString(raw[1:len(raw)-1]))
		return
	}
	d.scratch = unescape(d.scratch[:0], raw[1:len(raw)-1])
	d.canon = appendText(d.canon, raw, d.scratch)
}

// appendText writes a string from its raw JSON (quotes included) and its
// decoded value.
func appendText(dst, raw, decoded []byte) []byte {
	if bytes.Contains(raw, []byte(`\u`)) && bytes.ContainsRune(decoded, utf8.RuneError) {
		return appendStr(append(dst, 'r'), unsafeString(raw))
	}
	return appendStr(dst, unsafeString(decoded))
}

// appendSubText writes a substituted string as the canonical form of the
// JSON string sjson would have written for it.
func appendSubText(dst []byte, s string) []byte {
	if strings.ContainsRune(s, utf8.RuneError) { // also true of invalid UTF-8
		raw, _ := json.Marshal(s) // sjson's escaping
		return appendText(dst, raw, unescape(nil, raw[1:len(raw)-1]))
	}
	// Any other string decodes from sjson's JSON to itself, and is written
	// by its value whatever its escapes.
	return appendStr(dst, s)
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

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
