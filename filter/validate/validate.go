// Package validate checks a client's request body against the request schema
// of the API it speaks (OpenAI Chat Completions, Anthropic Messages) before
// llmproc routes it, reserves budget for it or looks it up in the cache: a
// request that reaches a provider, or a translator, has the shape that API
// documents. Validation is uniform across backends, so a translated backend
// never receives a half-understood request.
//
// It is one pass over the body that also checks the JSON syntax (so the
// router needs no other validation pass), bounds the nesting depth, and
// refuses numbers a provider would read as infinity. It recurses once per
// nesting level and stops at the depth limit, so a 100,000-deep array costs
// 64 frames. The known fields of each API are checked for type, value and
// range; unknown fields pass through (providers add fields often). Errors
// are *apierr.Error, 400, naming the JSON path of the value at fault:
// messages[2].content[0].type: ….
package validate

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unsafe"

	"github.com/llmproc/llmproc/filter/apierr"
)

// DefaultMaxDepth is the nesting bound when the caller gives none.
const DefaultMaxDepth = 64

// MaxMaxDepth bounds the configurable depth (the parser recurses once per
// level).
const MaxMaxDepth = 1024

// Options for Chat and Messages.
type Options struct {
	// MaxDepth bounds the nesting of arrays and objects (DefaultMaxDepth
	// when 0; at most MaxMaxDepth).
	MaxDepth int
	// Member, when set, is called with each member of the body's top-level
	// object, in order, duplicates included, and its raw JSON value (which
	// points into the body), so the caller reads the fields it needs
	// without a pass of its own. Members after an error are not reported.
	Member func(key string, value []byte)
}

// Chat validates an OpenAI Chat Completions request body.
func Chat(body []byte, o Options) error {
	return run(body, o, false)
}

// Messages validates an Anthropic Messages request body.
func Messages(body []byte, o Options) error {
	return run(body, o, true)
}

// CountTokens validates the body of Anthropic's POST
// /v1/messages/count_tokens: a Messages request without max_tokens.
func CountTokens(body []byte, o Options) error {
	return runWith(body, o, true, true)
}

func run(body []byte, o Options, anthropic bool) error {
	return runWith(body, o, anthropic, false)
}

func runWith(body []byte, o Options, anthropic, countTokens bool) error {
	read := (*parser).chat
	if anthropic {
		read = (*parser).messages
	}
	return runBody(body, o, countTokens, read)
}

// runBody checks that body is one JSON object, reads it with read and
// checks that nothing follows it.
func runBody(body []byte, o Options, countTokens bool, read func(*parser, func(string, []byte))) error {
	maxDepth := o.MaxDepth
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	p := parser{b: body, maxDepth: min(maxDepth, MaxMaxDepth), countTokens: countTokens}
	p.ws()
	if p.i == len(p.b) || p.b[p.i] != '{' {
		if p.i < len(p.b) && p.syntaxOK() {
			return apierr.BadRequest("invalid_json", "The request body must be a JSON object.")
		}
		return invalidJSON(p.i)
	}
	read(&p, o.Member)
	if p.err == nil {
		p.ws()
		if p.i != len(p.b) {
			p.syntax()
		}
	}
	if p.err != nil {
		return p.err
	}
	return nil
}

func invalidJSON(at int) *apierr.Error {
	return apierr.BadRequest("invalid_json",
		"We could not parse the JSON body of your request (byte %d). The request body must be valid JSON.", at)
}

// parser walks one body. Every method consumes exactly one value (or sets
// err); once err is set, every method returns at once.
type parser struct {
	b        []byte
	i        int
	depth    int
	maxDepth int
	err      *apierr.Error
	path     [maxSegs]seg // where the parser is, for errors: the first segments
	segs     int          // how deep the path is (it may go past the array)
	// countTokens: an Anthropic count_tokens body, which has no max_tokens.
	countTokens bool
}

// maxSegs bounds the path kept for errors; a deeper one is cut ("…").
// An array, not a slice: it stays on the stack with the parser.
const maxSegs = 40

// seg is one step of a JSON path: a member name, or an index when key is
// not set.
type seg struct {
	key   string
	index int
	isKey bool
}

// jtype is a set of JSON value types.
type jtype uint8

const (
	tNull jtype = 1 << iota
	tBool
	tNum
	tStr
	tArr
	tObj
)

// typeNames names the types in the order messages list them.
var typeNames = [...]struct {
	t    jtype
	name string
}{{tStr, "a string"}, {tNum, "a number"}, {tBool, "a boolean"}, {tArr, "an array"}, {tObj, "an object"}, {tNull, "null"}}

func (t jtype) String() string {
	var parts []string
	for _, n := range typeNames {
		if t&n.t != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, " or ")
}

// peek returns the type of the value at p.i (0 at the end or on a byte no
// value starts with).
func (p *parser) peek() jtype {
	if p.i >= len(p.b) {
		return 0
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return tObj
	case c == '[':
		return tArr
	case c == '"':
		return tStr
	case c == 't' || c == 'f':
		return tBool
	case c == 'n':
		return tNull
	case c == '-' || c >= '0' && c <= '9':
		return tNum
	}
	return 0
}

// want reports whether the next value is one of the types in t; otherwise
// it sets an invalid_type error (or a syntax error when no value starts).
func (p *parser) want(t jtype) bool {
	if p.err != nil {
		return false
	}
	got := p.peek()
	if got == 0 {
		p.syntax()
		return false
	}
	if got&t == 0 {
		p.fail("invalid_type", "expected %s, got %s", t, got)
		return false
	}
	return true
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) syntax() {
	if p.err == nil {
		p.err = invalidJSON(p.i)
	}
}

// syntaxOK reports whether the body from p.i is one valid JSON value, for
// telling "not an object" from "not JSON". It does not move the parser.
func (p *parser) syntaxOK() bool {
	q := parser{b: p.b, i: p.i, maxDepth: p.maxDepth}
	q.any()
	q.ws()
	return q.err == nil && q.i == len(q.b)
}

// fail sets a 400 naming the current path.
func (p *parser) fail(code, format string, args ...any) {
	if p.err != nil {
		return
	}
	param := p.pathString()
	msg := fmt.Sprintf(format, args...)
	if param != "" {
		msg = param + ": " + msg
	}
	p.err = &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: code, Param: param, Message: msg}
}

// failAt sets a 400 naming member key of the current path.
func (p *parser) failAt(key, code, format string, args ...any) {
	p.push(seg{key: key, isKey: true})
	p.fail(code, format, args...)
	p.pop()
}

func (p *parser) push(s seg) {
	if p.segs < maxSegs {
		p.path[p.segs] = s
	}
	p.segs++
}

func (p *parser) pop() { p.segs-- }

// missing reports a required member key of the current object as absent.
func (p *parser) missing(key string) {
	p.failAt(key, "missing_required_parameter", "required")
}

// missingModelMsg is OpenAI's own wording for a request without a model.
const missingModelMsg = "you must provide a model parameter"

func (p *parser) missingModel() { p.failAt("model", "missing_required_parameter", missingModelMsg) }

const maxPathLen = 256

func (p *parser) pathString() string {
	var b strings.Builder
	for _, s := range p.path[:min(p.segs, maxSegs)] {
		if s.isKey {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		} else {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		}
		if b.Len() > maxPathLen {
			return b.String()[:maxPathLen] + "…"
		}
	}
	if p.segs > maxSegs {
		b.WriteString("…")
	}
	return b.String()
}

func (p *parser) enter() bool {
	if p.depth++; p.depth > p.maxDepth {
		p.fail("nesting_too_deep", "the request nests deeper than %d levels of arrays and objects", p.maxDepth)
		return false
	}
	return true
}

// object parses an object, calling member for each member with the parser
// at its value; member must consume the value.
func (p *parser) object(member func(key string)) {
	if !p.want(tObj) || !p.enter() {
		return
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		return
	}
	for {
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			p.syntax()
			return
		}
		key, ok := p.stringValue()
		if !ok {
			return
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			p.syntax()
			return
		}
		p.i++
		p.ws()
		p.push(seg{key: key, isKey: true})
		member(key)
		p.pop()
		if p.err != nil {
			return
		}
		p.ws()
		if p.i >= len(p.b) {
			p.syntax()
			return
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			p.depth--
			return
		default:
			p.syntax()
			return
		}
	}
}

// body parses the body's object like object, then calls top, when set,
// with each member's raw value. (top is a parameter, not a parser field, so
// that what it captures can stay on the caller's stack.)
func (p *parser) body(top func(key string, value []byte), member func(key string)) {
	p.object(func(k string) {
		start := p.i
		member(k)
		if top != nil && p.err == nil {
			top(k, p.b[start:p.i])
		}
	})
}

// array parses an array of at least minItems elements, calling elem for
// each with the parser at it; elem must consume the element.
func (p *parser) array(minItems int, elem func(i int)) {
	if !p.want(tArr) || !p.enter() {
		return
	}
	p.i++
	p.ws()
	n := 0
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
	} else {
		for {
			p.push(seg{index: n})
			elem(n)
			p.pop()
			n++
			if p.err != nil {
				return
			}
			p.ws()
			if p.i >= len(p.b) {
				p.syntax()
				return
			}
			if p.b[p.i] == ']' {
				p.i++
				break
			}
			if p.b[p.i] != ',' {
				p.syntax()
				return
			}
			p.i++
			p.ws()
		}
	}
	p.depth--
	if n < minItems {
		p.fail("empty_array", "expected an array with at least %d element(s)", minItems)
	}
}

// any parses any value, checking only its syntax, depth and numbers.
func (p *parser) any() {
	switch p.peek() {
	case tObj:
		p.object(func(string) { p.any() })
	case tArr:
		p.array(0, func(int) { p.any() })
	case tStr:
		p.rawString()
	case tNum:
		p.number()
	case tBool, tNull:
		p.literal()
	default:
		p.syntax()
	}
}

func (p *parser) literal() string {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
			p.i += len(lit)
			return lit
		}
	}
	p.syntax()
	return ""
}

// strStop marks the bytes that end a run of plain string bytes: the quote,
// the backslash and the control characters JSON forbids in strings.
var strStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// rawString parses a string and returns its bytes between the quotes, as
// written, and whether it has escapes.
func (p *parser) rawString() (raw []byte, escaped bool) {
	if p.err != nil {
		return nil, false
	}
	start := p.i + 1
	i := start
	b := p.b
	for {
		for i < len(b) && !strStop[b[i]] {
			i++
		}
		if i >= len(b) || b[i] < 0x20 {
			p.i = i
			p.syntax()
			return nil, false
		}
		if b[i] == '"' {
			p.i = i + 1
			return b[start:i], escaped
		}
		// a backslash
		escaped = true
		if i+1 >= len(b) {
			p.i = i
			p.syntax()
			return nil, false
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
				p.i = i
				p.syntax()
				return nil, false
			}
			i += 6
		default:
			p.i = i
			p.syntax()
			return nil, false
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// stringValue parses a string and returns its value. The value points into
// the body when the string has no escapes.
func (p *parser) stringValue() (string, bool) {
	start := p.i
	raw, escaped := p.rawString()
	if p.err != nil {
		return "", false
	}
	if !escaped {
		return unsafe.String(unsafe.SliceData(raw), len(raw)), true
	}
	var s string
	if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
		p.i = start
		p.syntax()
		return "", false
	}
	return s, true
}

// number parses a number and returns it as written. A number beyond
// float64's range (1e400) is refused wherever it is: providers parse JSON
// numbers as doubles and would read infinity.
func (p *parser) number() []byte {
	if p.err != nil {
		return nil
	}
	b, start := p.b, p.i
	i := start
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		p.i = i
		p.syntax()
		return nil
	}
	// digits moves i past one or more digits, or reports that none follow.
	digits := func() bool {
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > d
	}
	plain := true
	if i < len(b) && b[i] == '.' {
		plain = false
		i++
		if !digits() {
			p.i = i
			p.syntax()
			return nil
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		plain = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			p.i = i
			p.syntax()
			return nil
		}
	}
	if i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r', ',', ']', '}':
		default: // 01, 1x, 1.5.2
			p.i = i
			p.syntax()
			return nil
		}
	}
	p.i = i
	raw := b[start:i]
	if !plain || len(raw) > 15 {
		if f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw)), 64); err != nil || math.IsInf(f, 0) {
			p.fail("invalid_value", "the number %.40s is out of range", raw)
			return nil
		}
	}
	return raw
}

// opt flags for the typed readers.
type opt uint8

const (
	nullable opt = 1 << iota // null is accepted
	nonEmpty                 // strings: "" is refused
)

func (o opt) types(t jtype) jtype {
	if o&nullable != 0 {
		return t | tNull
	}
	return t
}

// null consumes a null if it is next.
func (p *parser) null() bool {
	if p.err == nil && p.peek() == tNull {
		p.literal()
		return true
	}
	return false
}

// str reads a string (or null with nullable) without decoding it.
func (p *parser) str(o opt) {
	if !p.want(o.types(tStr)) || p.null() {
		return
	}
	if raw, _ := p.rawString(); p.err == nil && o&nonEmpty != 0 && len(raw) == 0 {
		p.fail("invalid_value", "expected a non-empty string")
	}
}

// strv reads a string (or null with nullable) and returns its value.
func (p *parser) strv(o opt) string {
	if !p.want(o.types(tStr)) || p.null() {
		return ""
	}
	s, _ := p.stringValue()
	return s
}

// enum reads a string that must be one of values.
func (p *parser) enum(o opt, values ...string) string {
	if !p.want(o.types(tStr)) || p.null() {
		return ""
	}
	s, ok := p.stringValue()
	if !ok {
		return ""
	}
	for _, v := range values {
		if s == v {
			return s
		}
	}
	p.badEnum(s, values)
	return ""
}

func (p *parser) badEnum(s string, values []string) {
	p.fail("invalid_value", "%s is not one of %s", quote(s), quoteAll(values))
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

func quoteAll(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = "'" + v + "'"
	}
	return strings.Join(q, ", ")
}

func (p *parser) boolean(o opt) {
	if p.want(o.types(tBool)) {
		p.literal()
	}
}

// num reads a number in [lo, hi].
func (p *parser) num(o opt, lo, hi float64) {
	if !p.want(o.types(tNum)) || p.null() {
		return
	}
	raw := p.number()
	if raw == nil {
		return
	}
	f, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw)), 64)
	switch {
	case f < lo:
		p.fail("decimal_below_min_value", "expected a number of at least %g, got %s", lo, raw)
	case f > hi:
		p.fail("decimal_above_max_value", "expected a number of at most %g, got %s", hi, raw)
	}
}

// integer reads an integer in [lo, hi]: a number without a fraction that an
// int64 holds exactly (2.0 and 1e3 are integers; 1.5 and 1e30 are not).
func (p *parser) integer(o opt, lo, hi int64) {
	if !p.want(o.types(tNum)) || p.null() {
		return
	}
	raw := p.number()
	if raw == nil {
		return
	}
	s := unsafe.String(unsafe.SliceData(raw), len(raw))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			p.fail("invalid_type", "expected an integer, got %.40s", raw)
			return
		}
		n = int64(f)
	}
	switch {
	case n < lo:
		p.fail("integer_below_min_value", "expected an integer of at least %d, got %s", lo, raw)
	case n > hi:
		p.fail("integer_above_max_value", "expected an integer of at most %d, got %s", hi, raw)
	}
}

// is reports whether the next value is of type t (or null, with nullable),
// consuming a null: the caller reads the value when it returns true.
func (p *parser) is(o opt, t jtype) bool {
	return p.want(o.types(t)) && !p.null()
}

// strings reads an array of strings.
func (p *parser) strings(o opt) {
	if p.is(o, tArr) {
		p.array(0, func(int) { p.str(0) })
	}
}

// stringMap reads an object whose values are strings.
func (p *parser) stringMap(o opt) {
	if p.is(o, tObj) {
		p.object(func(string) { p.str(0) })
	}
}

// stringFields reads an object whose members named in names are strings
// (read with o), with the required ones present; other members pass.
func (p *parser) stringFields(o opt, required []string, names ...string) {
	p.objectWith(func(k string) bool {
		for _, n := range names {
			if k == n {
				p.str(o)
				return true
			}
		}
		return false
	}, required...)
}

// anyObject reads an object of any members.
func (p *parser) anyObject(o opt) {
	if p.is(o, tObj) {
		p.any()
	}
}

// seen records, for the members of one object, which were present.
type seen uint32

func (s *seen) add(bit seen)     { *s |= bit }
func (s seen) has(bit seen) bool { return s&bit != 0 }
