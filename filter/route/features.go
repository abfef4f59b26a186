// Package route computes request features from the buffered OpenAI
// chat-completions body and classifies the task, so routing rules can pick a
// pool from what the request is about rather than only the model it names.
//
// # Token estimate
//
// EstimatedInputTokens is a quarter token per character (Unicode code point)
// of message text, plus three more quarters for each CJK character and one
// more for each digit, plus a quarter per byte of the tools JSON, rounded up.
// Against o200k_base (GPT-4o's BPE encoding) on the classifier fixtures it
// overcounts English by about 10% on average (short prompts round up) and
// stays within 10% for Chinese and Japanese; it undercounts JSON and
// number-heavy text by 25–30%, and ignores the few tokens of per-message
// framing each provider adds. estimate_test.go measures it and guards those
// bounds. It is for routing thresholds, never for billing.
//
// # Classifier
//
// The classifier is deterministic and explainable: it lowercases the system
// and user text once, counts weighted keyword and notation hits per class
// (code, reasoning, extraction, creative), adds structural signals (code
// fences, response_format, tools, input length), and picks the class with the
// highest score that reaches its threshold; otherwise the request is chat.
// Features.Signals names the hits that decided the class.
package route

import (
	"bytes"
	"encoding/binary"
	"iter"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// Class is a task class chosen by the classifier.
type Class string

// The task classes.
const (
	ClassCode       Class = "code"
	ClassReasoning  Class = "reasoning"
	ClassExtraction Class = "extraction"
	ClassCreative   Class = "creative"
	ClassChat       Class = "chat"
)

// Classes lists every class, in tie-break order (earlier wins a tie).
var Classes = []Class{ClassCode, ClassReasoning, ClassExtraction, ClassCreative, ClassChat}

// MaxSignals bounds Features.Signals.
const MaxSignals = 8

// Features are computed once per request from the buffered OpenAI body.
type Features struct {
	Model                string // the "model" field as sent
	EstimatedInputTokens int    // see the package doc for the estimator
	Messages             int    // number of messages
	SystemChars          int    // characters of system (and developer) message text
	Tools                bool   // a non-empty tools (or functions) array
	Images               bool   // some message content part is an image
	Stream               bool   // "stream": true
	ResponseFormat       string // "", "json_object" or "json_schema"
	MaxTokens            int    // max_completion_tokens, else max_tokens, else 0
	User                 string // OpenAI "user", or Anthropic "metadata.user_id"
	Class                Class
	Signals              []string // why Class was chosen, at most MaxSignals
	// Confidence is the model's probability for Class (kind model); the
	// keyword classifier, which has none, reports 1.
	Confidence float64
	RunnerUp   Class // the model's second most likely class ("" for keywords)

	// Set by the caller, not by Features: they come from the request's
	// headers and the registry.
	Explicit bool              // Model names a registry model
	Client   string            // the client's API: "openai" or "anthropic"
	Tenant   string            // the tenant header's value
	Headers  map[string]string // the configured headers, "" when absent
	Caller   map[string]string `json:"-"` // CallerOf: who is calling; nil for nobody known (set per request, not a feature of the body)
}

// Features parses body once and returns its features and class. A body that
// is not a JSON object is a 400 invalid_request_error.
func (c *Classifier) Features(body []byte) (Features, error) {
	if !gjson.ValidBytes(body) {
		return Features{}, apierr.BadRequest("invalid_json", "the request body is not valid JSON")
	}
	if i := skipSpace(body, 0); i == len(body) || body[i] != '{' {
		return Features{}, apierr.BadRequest("invalid_json", "the request body must be a JSON object")
	}
	return c.FeaturesOfValid(body), nil
}

// FeaturesOfValid is Features for a body the caller has already checked is a
// valid JSON object (the router has), saving a validation pass.
//
// It walks the body itself (members, elements, get) rather than with
// gjson.Result.ForEach, which would copy the body into a string and unescape
// every string it passes: here a string is read in place unless it has
// escapes, and then unescaped once (message texts into one buffer). The
// values are the ones gjson gives (Result.Str, Result.String, Result.Int).
// Given a body that is not valid JSON it returns something, but does not
// panic.
func (c *Classifier) FeaturesOfValid(body []byte) Features {
	return c.features(body, nil, false)
}

// InputTokensOfValid is FeaturesOfValid's EstimatedInputTokens without the
// rest of its work (the classification): what the upstream role needs on
// every attempt.
func (c *Classifier) InputTokensOfValid(body []byte) int {
	return c.features(body, nil, true).EstimatedInputTokens
}

// features is FeaturesOfValid; given want, it stores there what the model
// reads of the body instead of classifying it (for training); with
// noClass it does not classify.
func (c *Classifier) features(body []byte, want *modelInput, noClass bool) Features {
	var f Features
	var inline [8][]byte
	text := scratch{parts: inline[:0]}
	chars := 0
	toolBytes := 0
	// addText counts a message text for the token estimate and keeps it for
	// the classifier when it is a system or user text.
	var in modelInput
	addText := func(t []byte, system, keep bool) {
		n, units := measure(t)
		chars += units
		if system {
			f.SystemChars += n
			if i := len(text.parts); i < 64 {
				in.system |= 1 << i
			}
		}
		if keep {
			text = text.push(t)
		}
	}
	// textOf returns what gjson's Result.String returns for the raw JSON
	// value v: a string's value, a literal or number as written (numbers
	// with a fraction or exponent reformatted), an object or array as its
	// raw JSON, and nothing for no value. A string without escapes is read
	// in place; one with escapes is unescaped into dec.
	var dec []byte
	textOf := func(v []byte) []byte {
		switch {
		case len(v) == 0:
			return nil
		case v[0] != '"':
			return []byte(gjson.ParseBytes(v).String())
		}
		t := v[1:max(len(v)-1, 1)]
		if bytes.IndexByte(t, '\\') < 0 {
			return t
		}
		if dec == nil {
			// Unescaping never lengthens a string, so this is the one
			// allocation for all the texts.
			dec = make([]byte, 0, len(body))
		}
		start := len(dec)
		dec = appendUnescaped(dec, t)
		return dec[start:len(dec):len(dec)]
	}
	// message counts one chat message, or a Responses API message item.
	message := func(m []byte) {
		f.Messages++
		var role, content []byte // the last of each counts
		for k, v := range members(m) {
			switch string(str(k)) {
			case "role":
				role = v
			case "content":
				content = v
			}
		}
		r := string(str(role))
		system := r == "system" || r == "developer"
		keep := system || r == "user" || r == ""
		if keep && !system { // a user turn: the latest so far
			in.userTurns++
			in.latestLo = len(text.parts)
			defer func() { in.latestHi = len(text.parts) }()
		}
		switch {
		case isString(content):
			addText(textOf(content), system, keep)
		case isArray(content):
			for p := range elements(content) {
				switch string(str(get(p, "type"))) {
				case "text", "input_text", "output_text":
					addText(textOf(get(p, "text")), system, keep)
				case "image_url", "input_image", "image":
					f.Images = true
				}
			}
		}
	}
	for k, v := range members(body) {
		switch string(str(k)) {
		case "model":
			f.Model = stringOf(v)
		case "user":
			f.User = stringOf(v)
		case "metadata":
			if f.User == "" {
				f.User = stringOf(get(v, "user_id"))
			}
		case "system":
			// Anthropic's Messages API keeps the system prompt out of messages.
			if isString(v) {
				addText(textOf(v), true, true)
			} else if isArray(v) {
				for p := range elements(v) {
					addText(textOf(get(p, "text")), true, true)
				}
			}
		case "stream":
			f.Stream = string(v) == "true"
		case "max_tokens":
			if f.MaxTokens == 0 {
				f.MaxTokens = int(gjson.ParseBytes(v).Int())
			}
		case "max_completion_tokens":
			if n := int(gjson.ParseBytes(v).Int()); n > 0 {
				f.MaxTokens = n
			}
		case "response_format":
			switch string(str(get(v, "type"))) {
			case "json_object":
				f.ResponseFormat = "json_object"
			case "json_schema":
				f.ResponseFormat = "json_schema"
			}
		case "tools", "functions":
			if isArray(v) && skipSpace(v, 1) < len(v)-1 { // at least one element
				f.Tools = true
				toolBytes += len(v)
			}
		case "messages":
			if !isArray(v) {
				continue
			}
			for m := range elements(v) {
				message(m)
			}
		case "instructions": // the Responses API's system prompt
			if isString(v) {
				addText(textOf(v), true, true)
			}
		case "input": // the Responses API's messages and tool results
			switch {
			case isString(v):
				in.userTurns++
				in.latestLo = len(text.parts)
				addText(textOf(v), false, true)
				in.latestHi = len(text.parts)
			case isArray(v):
				for it := range elements(v) {
					switch string(str(get(it, "type"))) {
					case "", "message":
						message(it)
					case "function_call_output", "custom_tool_call_output":
						out := get(it, "output")
						if isArray(out) {
							for p := range elements(out) {
								addText(textOf(get(p, "text")), false, false)
							}
						} else {
							addText(textOf(out), false, false)
						}
					case "function_call":
						addText(textOf(get(it, "arguments")), false, false)
					case "custom_tool_call":
						addText(textOf(get(it, "input")), false, false)
					}
				}
			}
		}
	}
	f.EstimatedInputTokens = (chars + toolBytes + 3) / 4
	if want != nil {
		*want = in
		want.parts = append([][]byte(nil), text.parts...)
		return f
	}
	if noClass {
		return f
	}
	if c.model != nil {
		in.parts = text.parts
		var probs [MaxModelClasses]float64
		p := c.model.predict(&in, &probs)
		f.Class, f.Confidence, f.RunnerUp = p.Class, p.Confidence, p.RunnerUp
		return f
	}
	f.Class, f.Signals = c.classify(text.lower(c.cfg.MaxClassifyBytes), &f)
	f.Confidence = 1
	return f
}

// measureWeights holds, for each byte value, what the byte adds to
// measure's two sums, packed into one word: 1<<32 when it starts a character
// (is not a UTF-8 continuation byte), plus its quarter-tokens in the low
// bits. It is never written after initialisation.
var measureWeights = func() (w [256]uint64) {
	for c := range w {
		if c&0xC0 == 0x80 {
			continue // a continuation byte: nothing
		}
		w[c] = 1<<32 | 1
		switch {
		case c >= 0xE3 && c <= 0xED:
			w[c] += 2
		case c >= '0' && c <= '9':
			w[c]++
		}
	}
	return w
}()

// measure returns a text's characters (code points) and its quarter-tokens:
// one per character, plus two for each character of a CJK script (kana, CJK
// ideographs, Hangul: U+3000–U+D7FF, whose UTF-8 lead bytes are 0xE3–0xED;
// BPE takes about 0.7 tokens for one), plus one for each digit (numbers split
// into groups of up to three digits, and their separators are tokens of their
// own: about half a token a digit). One pass over the bytes, a table lookup
// each, summed in two interleaved words (the low halves would carry into the
// high ones only past a gigabyte of text).
func measure(s []byte) (chars, units int) {
	var a, b uint64
	i := 0
	for ; i+1 < len(s); i += 2 {
		a += measureWeights[s[i]]
		b += measureWeights[s[i+1]]
	}
	if i < len(s) {
		a += measureWeights[s[i]]
	}
	a += b
	return int(a >> 32), int(uint32(a))
}

// scratch collects the message texts the classifier reads, without copying
// them, and lowers only the part it will scan.
type scratch struct {
	parts [][]byte
	n     int // bytes of the texts joined with newlines
}

// push returns s with a text added. (A value, not a pointer receiver:
// appending through a pointer would send parts' first backing array, on the
// caller's stack, to the heap.)
func (s scratch) push(t []byte) scratch {
	if len(s.parts) > 0 {
		s.n++
	}
	s.parts = append(s.parts, t)
	s.n += len(t)
	return s
}

// str returns the value of the raw JSON string v, unescaped (gjson's
// Result.Str): in place when it has no escapes, else in a new slice. For any
// other value, or none, it returns nil.
func str(v []byte) []byte {
	if len(v) < 2 || v[0] != '"' {
		return nil
	}
	v = v[1 : len(v)-1]
	if bytes.IndexByte(v, '\\') < 0 {
		return v
	}
	return appendUnescaped(nil, v)
}

// stringOf returns gjson's Result.String for the raw JSON value v.
func stringOf(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	return gjson.ParseBytes(v).String()
}

// lower returns the texts joined with newlines and lowercased (ASCII). When
// they are longer than max bytes, it returns the first max/2 bytes, a
// newline and the last max/2 bytes: instructions usually sit at either end,
// and the classifier's cost stays bounded on big bodies.
func (s *scratch) lower(max int) []byte {
	if s.n <= max {
		return s.appendRange(make([]byte, 0, s.n), 0, s.n)
	}
	b := make([]byte, 0, max+1)
	b = s.appendRange(b, 0, max/2)
	b = append(b, '\n')
	return s.appendRange(b, s.n-max/2, s.n)
}

// appendRange appends bytes [from, to) of the joined text, lowercased.
func (s *scratch) appendRange(b []byte, from, to int) []byte {
	pos := 0 // offset of the current part in the joined text
	for i, t := range s.parts {
		if i > 0 {
			if pos >= from && pos < to {
				b = append(b, '\n')
			}
			pos++
		}
		if lo, hi := max(from-pos, 0), min(to-pos, len(t)); lo < hi {
			b = appendLower(b, t[lo:hi])
		}
		pos += len(t)
		if pos >= to {
			break
		}
	}
	return b
}

// appendLower appends t with ASCII letters lowercased.
func appendLower(b, t []byte) []byte {
	start := len(b)
	b = append(b, t...)
	lowerASCII(b[start:])
	return b
}

// lowerASCII lowercases the ASCII letters of b in place, eight bytes at a
// time: in each byte of x below 0x80, adding 0x80-'A' to its low seven bits
// sets its top bit when it is 'A' or more, adding 0x80-'Z'-1 when it is
// past 'Z'; a letter's top bit, moved down two places, is the 0x20 that
// lowercases it. The additions cannot carry from one byte into the next.
func lowerASCII(b []byte) {
	const ones, top = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		low := x &^ top
		upper := (low + (0x80-'A')*ones) &^ (low + (0x80-'Z'-1)*ones) &^ x & top
		binary.LittleEndian.PutUint64(b[i:], x|upper>>2)
	}
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
}

// The JSON walk. Its helpers take raw JSON values (a string with its quotes)
// from a body gjson has validated; on anything else they stop early rather
// than fail.

// members yields the raw keys and values of the JSON object v, in order,
// duplicates included; nothing when v is not an object.
func members(v []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func(key, val []byte) bool) {
		i := skipSpace(v, 0)
		if i == len(v) || v[i] != '{' {
			return
		}
		for i++; ; i++ { // i is just past the '{' or a ','
			i = skipSpace(v, i)
			if i == len(v) || v[i] != '"' {
				return // '}'
			}
			end := valueEnd(v, i)
			key := v[i:end]
			i = skipSpace(v, end)
			if i == len(v) || v[i] != ':' {
				return
			}
			i = skipSpace(v, i+1)
			end = valueEnd(v, i)
			if !yield(key, v[i:end]) {
				return
			}
			i = skipSpace(v, end)
			if i == len(v) || v[i] != ',' {
				return
			}
		}
	}
}

// elements yields the raw elements of the JSON array v; nothing when v is
// not an array.
func elements(v []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		if !isArray(v) {
			return
		}
		for i := 1; ; i++ { // i is just past the '[' or a ','
			i = skipSpace(v, i)
			if i == len(v) || v[i] == ']' {
				return
			}
			end := valueEnd(v, i)
			if !yield(v[i:end]) {
				return
			}
			i = skipSpace(v, end)
			if i == len(v) || v[i] != ',' {
				return
			}
		}
	}
}

// get returns the raw value of the first member of the JSON object v named
// key (what gjson's Result.Get(key) finds), or nil.
func get(v []byte, key string) []byte {
	for k, val := range members(v) {
		if string(str(k)) == key {
			return val
		}
	}
	return nil
}

func isString(v []byte) bool { return len(v) > 0 && v[0] == '"' }

func isArray(v []byte) bool { return len(v) > 0 && v[0] == '[' }

// skipSpace returns the index of the first byte of b at or after i that is
// not whitespace, or len(b).
func skipSpace(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value that starts at b[i].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		// The first quote ends the string unless an odd number of
		// backslashes precede it. A string with an escaped quote (often
		// JSON inside a string, full of them) is walked byte by byte from
		// there.
		j := bytes.IndexByte(b[i+1:], '"') + i + 1
		if j == i {
			return len(b)
		}
		k := j
		for k > i+1 && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j + 1
		}
		for j++; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = valueEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default: // a number, true, false or null
		j := i
		for j < len(b) && b[j] > ' ' && b[j] != ',' && b[j] != '}' && b[j] != ']' {
			j++
		}
		return j
	}
}

// appendUnescaped appends the JSON string contents s (between the quotes)
// with its escapes decoded, as gjson decodes them: a surrogate pair makes
// one character, a lone surrogate U+FFFD, and a malformed escape ends the
// string. It copies the runs between escapes whole.
func appendUnescaped(b, s []byte) []byte {
	for {
		i := backslash(s)
		if i < 0 {
			return append(b, s...)
		}
		b = append(b, s[:i]...)
		for s = s[i:]; len(s) > 0 && s[0] == '\\'; {
			if len(s) == 1 {
				return b
			}
			c, size := s[1], 2
			switch c {
			case '"', '\\', '/':
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				if len(s) < 6 {
					return b
				}
				r := hex4(s[2:])
				size = 6
				if r >= 0xD800 && r < 0xDC00 && len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
					if r2 := hex4(s[8:]); r2 >= 0xDC00 && r2 < 0xE000 {
						r = utf16.DecodeRune(r, r2)
						size = 12
					}
				}
				b = utf8.AppendRune(b, r)
				s = s[size:]
				continue
			default:
				return b
			}
			b = append(b, c)
			s = s[size:]
		}
	}
}

// backslash returns the index of the first backslash in s, or -1. It looks
// at a few bytes itself (escapes often come close together) before it calls
// bytes.IndexByte.
func backslash(s []byte) int {
	const near = 16
	for i := 0; i < len(s) && i < near; i++ {
		if s[i] == '\\' {
			return i
		}
	}
	if len(s) <= near {
		return -1
	}
	if i := bytes.IndexByte(s[near:], '\\'); i >= 0 {
		return near + i
	}
	return -1
}

// hex4 returns the value of the four hex digits s starts with, or 0 when
// one is not a hex digit (as strconv.ParseUint fails, which gjson uses).
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0
		}
		r = r<<4 | rune(c)
	}
	return r
}
