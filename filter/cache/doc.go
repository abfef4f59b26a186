package cache

import (
	"bytes"
	"hash"
	"math"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/llmproc/llmproc/filter/apierr"
)

// Doc is a request body parsed once for every key computed from it: one
// pass over the bytes validates the JSON (exactly as gjson.Valid does) and
// records each value's place, and a second pass, over that record and not
// the bytes, writes the canonical form. Every key of the request (the exact
// key, the normalized tier's, the semantic tier's bucket) is a hash over
// that one canonical form, with some values substituted (KeyWith), so no
// key parses the body again or re-scans nested JSON per level.
//
// Values reads the parsed body (Root, Value.Get, Value.Index), so the tiers
// find the latest user turn in the same record. A Doc is not safe for
// concurrent use; Release returns its buffers once nothing reads it.
type Doc struct {
	body  []byte
	nodes []node
	// canon is the canonical form of the body (no scope fields), written on
	// first use; node out spans point into it.
	canon   []byte
	written bool
	members []member // the object-member stack of the canonical walk
	scratch []byte   // decoded strings, the scope prefix
	h       hash.Hash
}

// node is one JSON value (or object key) in document order: a container is
// followed by its children (an object's as key, value, key, value …).
type node struct {
	kind  byte  // 'z' null, 'f', 't', 'n' number, 's' string, '{', '['
	esc   bool  // a string with a backslash escape
	start int32 // the raw value's first byte (a string's opening quote)
	end   int32 // one past its last byte
	skip  int32 // the index of the node after this one's subtree
	count int32 // a container's children: array elements or object members
	// out0, out1 are the value's span in canon (set when canon is written;
	// out1 == 0 for a value the canonical form leaves out).
	out0, out1 int32
}

type member struct {
	key  string // decoded
	k, v int32  // node indexes
}

var docPool = sync.Pool{New: func() any { return new(Doc) }}

// Parse parses body for keys. It returns a 400 apierr.Error if body is not a
// JSON object. The Doc reads body (no copy): body must not change while the
// Doc is in use.
func Parse(body []byte) (*Doc, error) {
	d := docPool.Get().(*Doc)
	if len(body) >= math.MaxInt32 || !d.parse(body) {
		d.Release()
		return nil, apierr.BadRequest("invalid_json", "We could not parse the JSON body of your request. The request body must be valid JSON.")
	}
	if d.nodes[0].kind != '{' {
		d.Release()
		return nil, apierr.BadRequest("invalid_json", "The request body must be a JSON object.")
	}
	return d, nil
}

// Release returns d's buffers for reuse; neither d nor its Values may be
// used after. Calling it is optional (the garbage collector frees a Doc
// that is dropped).
func (d *Doc) Release() {
	if d == nil {
		return
	}
	if cap(d.canon) > 1<<20 || cap(d.nodes) > 1<<16 {
		return // let an outsized one go
	}
	*d = Doc{nodes: d.nodes[:0], canon: d.canon[:0], members: d.members[:0], scratch: d.scratch[:0], h: d.h}
	docPool.Put(d)
}

// parse records body's values; it accepts exactly what gjson.Valid accepts
// (whose validator it follows: strings are not checked for UTF-8, control
// bytes in them are refused).
func (d *Doc) parse(body []byte) bool {
	d.body = body
	if d.nodes == nil {
		d.nodes = make([]node, 0, 16+len(body)/24)
	}
	p := parser{b: body, d: d}
	i := p.ws(0)
	if i >= len(body) {
		return false
	}
	i, ok := p.value(i)
	if !ok {
		return false
	}
	return p.ws(i) == len(body)
}

type parser struct {
	b []byte
	d *Doc
}

func (p *parser) ws(i int) int {
	for i < len(p.b) {
		switch p.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func (p *parser) push(kind byte, start int) int {
	p.d.nodes = append(p.d.nodes, node{kind: kind, start: int32(start)})
	return len(p.d.nodes) - 1
}

// value parses the value at b[i] (not whitespace) and returns the index
// after it.
func (p *parser) value(i int) (int, bool) {
	b := p.b
	switch c := b[i]; c {
	case '{':
		return p.object(i)
	case '[':
		return p.array(i)
	case '"':
		n := p.push('s', i)
		j, esc, ok := p.str(i + 1)
		nd := &p.d.nodes[n]
		nd.end, nd.skip, nd.esc = int32(j), int32(n+1), esc
		return j, ok
	case 't', 'f', 'n':
		lit := "true"
		if c == 'f' {
			lit = "false"
		} else if c == 'n' {
			lit = "null"
		}
		if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
			return i, false
		}
		n := p.push(c, i)
		if c == 'n' {
			p.d.nodes[n].kind = 'z'
		}
		p.d.nodes[n].end, p.d.nodes[n].skip = int32(i+len(lit)), int32(n+1)
		return i + len(lit), true
	default:
		if c != '-' && (c < '0' || c > '9') {
			return i, false
		}
		j, ok := p.number(i)
		if !ok {
			return j, false
		}
		n := p.push('n', i)
		p.d.nodes[n].end, p.d.nodes[n].skip = int32(j), int32(n+1)
		return j, true
	}
}

func (p *parser) object(i int) (int, bool) {
	n := p.push('{', i)
	count := int32(0)
	i = p.ws(i + 1)
	if i < len(p.b) && p.b[i] == '}' {
		return p.close(n, i, count), true
	}
	for {
		if i >= len(p.b) || p.b[i] != '"' {
			return i, false
		}
		k := p.push('s', i)
		j, esc, ok := p.str(i + 1)
		if !ok {
			return j, false
		}
		kn := &p.d.nodes[k]
		kn.end, kn.skip, kn.esc = int32(j), int32(k+1), esc
		i = p.ws(j)
		if i >= len(p.b) || p.b[i] != ':' {
			return i, false
		}
		if i = p.ws(i + 1); i >= len(p.b) {
			return i, false
		}
		if i, ok = p.value(i); !ok {
			return i, false
		}
		count++
		if i = p.ws(i); i >= len(p.b) {
			return i, false
		}
		switch p.b[i] {
		case '}':
			return p.close(n, i, count), true
		case ',':
			i = p.ws(i + 1)
		default:
			return i, false
		}
	}
}

func (p *parser) array(i int) (int, bool) {
	n := p.push('[', i)
	count := int32(0)
	i = p.ws(i + 1)
	if i < len(p.b) && p.b[i] == ']' {
		return p.close(n, i, count), true
	}
	for {
		if i >= len(p.b) {
			return i, false
		}
		var ok bool
		if i, ok = p.value(i); !ok {
			return i, false
		}
		count++
		if i = p.ws(i); i >= len(p.b) {
			return i, false
		}
		switch p.b[i] {
		case ']':
			return p.close(n, i, count), true
		case ',':
			i = p.ws(i + 1)
		default:
			return i, false
		}
	}
}

// close ends the container n at its closing byte b[i].
func (p *parser) close(n, i int, count int32) int {
	nd := &p.d.nodes[n]
	nd.end, nd.skip, nd.count = int32(i+1), int32(len(p.d.nodes)), count
	return i + 1
}

// str scans a string from just after its opening quote; it returns the
// index after the closing quote and whether the string has escapes.
func (p *parser) str(i int) (int, bool, bool) {
	b := p.b
	esc := false
	for i < len(b) {
		for i < len(b) && !strStop[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, esc, true
		case c < ' ':
			return i, esc, false
		case c == '\\':
			esc = true
			i++
			if i >= len(b) {
				return i, esc, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return i, esc, false
				}
				i += 5
			default:
				return i, esc, false
			}
		default:
			i++
		}
	}
	return i, esc, false
}

// strStop marks the bytes that end a run of plain string bytes: the quote,
// the backslash and control bytes.
var strStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number scans a JSON number from its first byte, as gjson's validator
// does; the caller checks what follows it.
func (p *parser) number(i int) (int, bool) {
	b := p.b
	digit := func(i int) bool { return i < len(b) && b[i] >= '0' && b[i] <= '9' }
	if b[i] == '-' {
		i++
		if !digit(i) {
			return i, false
		}
	}
	if b[i] == '0' {
		i++
	} else {
		for digit(i) {
			i++
		}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digit(i) {
			return i, false
		}
		for digit(i) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digit(i) {
			return i, false
		}
		for digit(i) {
			i++
		}
	}
	return i, true
}

// raw is node n's raw bytes.
func (d *Doc) raw(n int32) []byte { return d.body[d.nodes[n].start:d.nodes[n].end] }

// str is the decoded value of string node n: a view of the body when it
// has no escapes, else newly allocated (as gjson decodes it).
func (d *Doc) str(n int32) string {
	r := d.raw(n)
	if !d.nodes[n].esc {
		return string(r[1 : len(r)-1])
	}
	return string(unescape(nil, r[1:len(r)-1]))
}

// unescape appends the decoded JSON string s (without its quotes, already
// validated) to dst, decoding as gjson does: a \u surrogate pair is one
// rune, a lone surrogate is U+FFFD, other bytes are copied as they are.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' { // copy the run up to the next escape
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...)
			}
			dst = append(dst, s[i:i+j]...)
			i += j
		}
		i++
		switch s[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+1:])
			i += 4
			if r >= 0xD800 && r < 0xDC00 && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if r2 := hex4(s[i+3:]); r2 >= 0xDC00 && r2 < 0xE000 {
					r = utf16.DecodeRune(r, r2)
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, s[i])
		}
	}
	return dst
}

func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// Value is one value of a parsed body; the zero Value and one that does
// not exist (Get of a missing key) report false from Exists.
type Value struct {
	d *Doc
	n int32 // node index; -1 when missing
}

// Root is the body's top-level object.
func (d *Doc) Root() Value { return Value{d, 0} }

func (v Value) node() *node { return &v.d.nodes[v.n] }

func (v Value) kind() byte {
	if v.d == nil || v.n < 0 {
		return 0
	}
	return v.d.nodes[v.n].kind
}

// Exists reports whether v is a value of the body.
func (v Value) Exists() bool { return v.kind() != 0 }

// IsObject, IsArray and IsString report v's JSON type.
func (v Value) IsObject() bool { return v.kind() == '{' }
func (v Value) IsArray() bool  { return v.kind() == '[' }
func (v Value) IsString() bool { return v.kind() == 's' }

// Str is a string's decoded value ("" for any other type), as gjson's
// Result.Str. It views the body when the string has no escapes.
func (v Value) Str() string {
	if v.kind() != 's' {
		return ""
	}
	return v.d.keyString(v.n)
}

// Raw is v's JSON text as sent (nil when v does not exist).
func (v Value) Raw() []byte {
	if !v.Exists() {
		return nil
	}
	return v.d.raw(v.n)
}

// Len is the number of an array's elements or an object's members.
func (v Value) Len() int {
	if k := v.kind(); k != '[' && k != '{' {
		return 0
	}
	return int(v.node().count)
}

// Index is an array's element i (missing when out of range).
func (v Value) Index(i int) Value {
	if v.kind() != '[' || i < 0 || i >= v.Len() {
		return Value{v.d, -1}
	}
	c := v.n + 1
	for ; i > 0; i-- {
		c = v.d.nodes[c].skip
	}
	return Value{v.d, c}
}

// Get is an object's first member named key (as gjson.Get of a one-key
// path), missing when there is none.
func (v Value) Get(key string) Value {
	if v.kind() != '{' {
		return Value{v.d, -1}
	}
	for c, end := v.n+1, v.node().skip; c < end; c = v.d.nodes[c+1].skip {
		if v.d.keyString(c) == key {
			return Value{v.d, c + 1}
		}
	}
	return Value{v.d, -1}
}

// Each calls f with an array's elements, or an object's members (key and
// value), in document order, until f returns false.
func (v Value) Each(f func(key string, e Value) bool) {
	switch v.kind() {
	case '[':
		for c, end := v.n+1, v.node().skip; c < end; c = v.d.nodes[c].skip {
			if !f("", Value{v.d, c}) {
				return
			}
		}
	case '{':
		for c, end := v.n+1, v.node().skip; c < end; c = v.d.nodes[c+1].skip {
			if !f(v.d.keyString(c), Value{v.d, c + 1}) {
				return
			}
		}
	}
}
