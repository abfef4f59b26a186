// Package meaning decides when two user turns ask the same thing, without a
// model and without ever calling two different questions the same.
//
// Normalize rewrites a turn into a form in which spelling variants that do
// not change the question coincide: Unicode NFKC (except superscripts and
// subscripts: x² is not x2), whitespace, sentence punctuation, the case of
// common words at a sentence start (or of a text typed all in capitals),
// English contractions, and fillers from small per-language lists (a greeting
// followed by a comma, "please" at either end, "thanks" after a comma, "um"
// in English). Everything that can carry meaning is kept exactly as typed:
// numbers and number words, negations, comparison and before/after words,
// units, quoted strings, code, URLs and any word typed with a capital letter
// that is not a common word at a sentence start (a name: "Apple" is not
// "apple"). Text that looks like code is not rewritten at all.
//
// SameMeaningTokens is the guard a fuzzier matcher (the semantic cache tier)
// must pass: the language and the ordered list of meaning-bearing tokens of
// both texts are equal. It is necessary, not sufficient: two texts with the
// same tokens may still differ in meaning; two with different tokens never
// get each other's answer.
package meaning

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Version names the normalization rules. Keys built from Normalize include
// it; change it whenever Normalize's output can change for some input.
const Version = "meaning/1"

// Normalize returns the normalized form of a user turn (see the package
// documentation). It is deterministic and idempotent.
func Normalize(text string) string {
	a := analyze(text)
	if a.code {
		return a.raw
	}
	return a.join()
}

// SameMeaningTokens reports whether a and b are in the same language and
// carry the same meaning-bearing tokens in the same order.
func SameMeaningTokens(a, b string) bool {
	return slices.Equal(Tokens(a), Tokens(b))
}

// Tokens returns the language of text and its meaning-bearing tokens, each
// with a kind prefix: "lang:en", "n:5km" (numbers, number words), "neg:not",
// "cmp:before", "u:kg", "e:Paris" (a word kept as typed), "v:…" (a quoted
// string, code span or URL, verbatim), "op:-" (an operator), "nl" (a line
// break), "c:…" (a run of Chinese, Japanese or Korean text, whole: names
// cannot be told from words there), "code:…" (the whole text, when it is
// code).
func Tokens(text string) []string {
	a := analyze(text)
	out := []string{"lang:" + a.lang}
	if a.code {
		return append(out, "code:"+a.raw)
	}
	for _, t := range a.toks {
		out = t.meaning(out, a.allCaps)
	}
	return out
}

// tok is one token of a prose text.
type tok struct {
	text     string
	lower    string // strings.ToLower(text), for prose words
	verbatim bool   // quoted string, code span, URL or e-mail address
	nl       bool   // a line break
	space    bool   // whitespace came before it
	sep      bool   // sentence punctuation (, ; : . ! ? …) followed it
	end      bool   // a sentence end (. ! ? …) followed it
}

type analysis struct {
	raw     string // the NFKC text, trailing whitespace trimmed (for code)
	code    bool
	lang    string
	allCaps bool
	toks    []tok
}

func analyze(text string) analysis {
	s := nfkc(text)
	a := analysis{raw: strings.TrimRightFunc(s, unicode.IsSpace)}
	spans := split(s)
	p := s // the prose: s itself unless something is verbatim
	for _, sp := range spans {
		if sp.verbatim {
			var prose strings.Builder
			prose.Grow(len(s))
			for _, sp := range spans {
				if !sp.verbatim {
					prose.WriteString(sp.text)
				}
			}
			p = prose.String()
			break
		}
	}
	a.lang = lang(p)
	if looksLikeCode(p) {
		a.code = true
		return a
	}
	a.toks = trimLines(tokenize(spans))
	a.allCaps = allCaps(a.toks)
	a.toks = expand(a.toks, a.lang)
	a.toks = dropFillers(a.toks, a.lang)
	fold(a.toks, a.lang, a.allCaps)
	return a
}

// trimLines drops line breaks at either end and spaces before a line break.
func trimLines(toks []tok) []tok {
	for len(toks) > 0 && toks[0].nl {
		toks = toks[1:]
	}
	for len(toks) > 0 && toks[len(toks)-1].nl {
		toks = toks[:len(toks)-1]
	}
	return toks
}

func (a analysis) join() string {
	var b strings.Builder
	b.Grow(len(a.raw))
	for i, t := range a.toks {
		switch {
		case t.nl:
			b.WriteByte('\n')
			continue
		case i > 0 && !a.toks[i-1].nl && t.space:
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}

// keepRune reports runes NFKC would rewrite into something of another
// meaning: superscripts and subscripts (x² → x2, 2³ → 23) and the ordinal
// indicators (1ª, 1º).
func keepRune(r rune) bool {
	switch {
	case r == 0xAA || r == 0xB2 || r == 0xB3 || r == 0xB9 || r == 0xBA:
		return true
	case r >= 0x2070 && r <= 0x209F, r >= 0x1D2C && r <= 0x1D6A, r >= 0x1D9B && r <= 0x1DBF, r >= 0x02B0 && r <= 0x02B8:
		return true
	}
	return false
}

// nfkc applies NFKC around the runes keepRune protects and spells every
// apostrophe as U+0027.
func nfkc(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ReplaceAll(s, "\r\n", "\n")
	}
	var b strings.Builder
	b.Grow(len(s))
	start := 0
	for i, r := range s {
		if keepRune(r) {
			b.WriteString(norm.NFKC.String(s[start:i]))
			b.WriteRune(r)
			start = i + utf8.RuneLen(r)
		}
	}
	b.WriteString(norm.NFKC.String(s[start:]))
	return apostrophes.Replace(b.String())
}

var apostrophes = strings.NewReplacer("\u2019", "'", "\u2018", "'", "\u02BC", "'", "\r\n", "\n")

// span is a piece of the text: verbatim (quoted, code, URL) or prose.
type span struct {
	text     string
	verbatim bool
}

var (
	closeQuote, closeCurly, closeLow = []rune{'"'}, []rune{'\u201D', '\u201C'}, []rune{'\u201C', '\u201D'}
	closeGuillemet, closeCorner      = []rune{'\u00BB'}, []rune{'\u300D'}
	closeWhiteCorner                 = []rune{'\u300F'}
)

// closerOf returns the quotes that close one opened by r (nil: r opens
// none).
func closerOf(r rune) []rune {
	switch r {
	case '"':
		return closeQuote
	case '\u201C':
		return closeCurly
	case '\u201E':
		return closeLow
	case '\u00AB':
		return closeGuillemet
	case '\u300C':
		return closeCorner
	case '\u300E':
		return closeWhiteCorner
	}
	return nil
}

// split cuts out fenced and inline code, quoted strings (double, curly,
// guillemets, corner brackets; single quotes when they open after a space
// and close before one) and leaves the rest as prose.
func split(s string) []span {
	var out []span
	start := 0
	emit := func(end, vend int) {
		if end > start {
			out = append(out, span{text: s[start:end]})
		}
		out = append(out, span{text: s[end:vend], verbatim: true})
		start = vend
	}
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf && c != '`' && c != '\'' && c != '"' {
			i++ // nothing opens here
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case strings.HasPrefix(s[i:], "```"):
			j := strings.Index(s[i+3:], "```")
			end := len(s)
			if j >= 0 {
				end = i + 3 + j + 3
			}
			emit(i, end)
			i = end
			continue
		case r == '`':
			if j := strings.IndexByte(s[i+1:], '`'); j >= 0 {
				emit(i, i+1+j+1)
				i += j + 2
				continue
			}
		case r == '\'' && (i == 0 || opensAfter(s[:i])):
			if j := singleClose(s, i+1); j > 0 {
				emit(i, j)
				i = j
				continue
			}
		case closerOf(r) != nil:
			if j := indexAny(s[i+n:], closerOf(r)); j >= 0 {
				_, cn := utf8.DecodeRuneInString(s[i+n+j:])
				emit(i, i+n+j+cn)
				i += n + j + cn
				continue
			}
		}
		i += n
	}
	if start < len(s) {
		out = append(out, span{text: s[start:]})
	}
	return out
}

func opensAfter(before string) bool {
	r, _ := utf8.DecodeLastRuneInString(before)
	return unicode.IsSpace(r) || r == '(' || r == '['
}

// singleClose finds the end of a single-quoted string starting at from: a
// quote after a non-space, before a space, punctuation or the end, on the
// same line.
func singleClose(s string, from int) int {
	for j := from; j < len(s); j++ {
		switch s[j] {
		case '\n':
			return -1
		case '\'':
			if j == from || s[j-1] == ' ' {
				continue
			}
			if j+1 == len(s) || strings.IndexByte(" \t\n.,!?;:)]", s[j+1]) >= 0 {
				return j + 1
			}
		}
	}
	return -1
}

func indexAny(s string, rs []rune) int {
	best := -1
	for _, r := range rs {
		if j := strings.IndexRune(s, r); j >= 0 && (best < 0 || j < best) {
			best = j
		}
	}
	return best
}

// looksLikeCode: code is never rewritten (indentation, semicolons and case
// are its meaning).
func looksLikeCode(p string) bool {
	for _, m := range []string{"{", "}", ";", "=", "</", "/>", "->", "#include", "def ", "func ", "\n ", "\n\t"} {
		if strings.Contains(p, m) {
			return true
		}
	}
	return false
}

func isCJK(r rune) bool {
	return r >= 0x1100 && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// trailing punctuation is sentence punctuation stripped from the end of a
// word; ends are the ones that end a sentence.
const (
	trailing = ".,!?…;:。、"
	ends     = ".!?…。"
)

// tokenize splits prose into words and line breaks; verbatim spans become
// one token each. Sentence punctuation at a word's end is removed and noted
// (sep, end); Chinese and Japanese text is also cut at its punctuation.
func tokenize(spans []span) []tok {
	n := 0
	for _, sp := range spans {
		n += len(sp.text)
	}
	toks := make([]tok, 0, 8+n/5) // words average more than four bytes
	space := false
	for _, sp := range spans {
		if sp.verbatim {
			toks = append(toks, tok{text: sp.text, verbatim: true, space: space})
			space = false
			continue
		}
		s := sp.text
		for len(s) > 0 {
			r, n := utf8.DecodeRuneInString(s)
			if r == '\n' {
				toks = append(toks, tok{nl: true})
				s, space = s[n:], false
				continue
			}
			if unicode.IsSpace(r) {
				s, space = s[n:], true
				continue
			}
			j := indexSpace(s)
			toks = word(toks, s[:j], space)
			s, space = s[j:], false
		}
	}
	return toks
}

// indexSpace is the index of the first white space in s (unicode.IsSpace),
// len(s) when there is none.
func indexSpace(s string) int {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c >= '\t' && c <= '\r':
			return i
		case c >= utf8.RuneSelf:
			if j := strings.IndexFunc(s[i:], unicode.IsSpace); j >= 0 {
				return i + j
			}
			return len(s)
		}
	}
	return len(s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// word adds one whitespace-delimited word, cut at CJK punctuation.
func word(toks []tok, w string, space bool) []tok {
	if isURL(w) {
		return append(toks, tok{text: w, verbatim: true, space: space})
	}
	if isASCII(w) { // no CJK punctuation to cut at
		return piece(toks, w, space)
	}
	for w != "" {
		cut := len(w)
		prev := rune(0)
		for i, r := range w {
			if (r == '。' || r == '、' || (strings.ContainsRune(",!?;:", r) && isCJK(prev))) && i+utf8.RuneLen(r) < len(w) {
				cut = i + utf8.RuneLen(r)
				break
			}
			prev = r
		}
		toks = piece(toks, w[:cut], space)
		w, space = w[cut:], true
	}
	return toks
}

func piece(toks []tok, w string, space bool) []tok {
	if w != "" && w[0] >= utf8.RuneSelf {
		w = strings.TrimLeft(w, "¿¡")
	}
	core := strings.TrimRightFunc(w, func(r rune) bool { return strings.ContainsRune(trailing, r) })
	// ";" and ":" stay on one-letter words ("C:").
	for utf8.RuneCountInString(core) == 1 && len(core) < len(w) && (w[len(core)] == ':' || w[len(core)] == ';') {
		core = w[:len(core)+1]
	}
	tail := w[len(core):]
	sep, end := tail != "", strings.ContainsAny(tail, ends)
	if core == "" {
		if len(toks) > 0 && !toks[len(toks)-1].nl {
			toks[len(toks)-1].sep = toks[len(toks)-1].sep || sep
			toks[len(toks)-1].end = toks[len(toks)-1].end || end
		}
		return toks
	}
	return append(toks, tok{text: core, lower: strings.ToLower(core), space: space, sep: sep, end: end})
}

func isURL(w string) bool {
	// No rune but W and w lowers to "w", none but "." to ".".
	return strings.Contains(w, "://") || len(w) >= 4 && w[0]|0x20 == 'w' && w[1]|0x20 == 'w' && w[2]|0x20 == 'w' && w[3] == '.' ||
		(strings.Contains(w, "@") && strings.Contains(w, "."))
}

// allCaps: a text of at least two words typed without a lowercase letter.
func allCaps(toks []tok) bool {
	words, upper := 0, 0
	for _, t := range toks {
		if t.verbatim || t.nl {
			continue
		}
		hasUpper := false
		for _, r := range t.text {
			if unicode.IsLower(r) {
				return false
			}
			if unicode.IsUpper(r) {
				hasUpper = true
			}
		}
		if hasUpper {
			words++
			upper += utf8.RuneCountInString(t.text)
		}
	}
	return words >= 2 && upper >= 4
}

// expand spells out English contractions; the negative ones keep "not".
func expand(toks []tok, lang string) []tok {
	// First what expands, then the tokens moved in place from the right
	// when toks has room (tokenize leaves some), else into a new slice.
	var found [16]expansion
	exps := found[:0]
	extra := 0
	for i, t := range toks {
		if t.verbatim || t.nl {
			continue
		}
		if exp, ok := expansionOf(t, lang); ok {
			exps = append(exps, expansion{i, exp})
			for range strings.FieldsSeq(exp) {
				extra++
			}
			extra-- // the token's own place
		}
	}
	if len(exps) == 0 {
		return toks
	}
	n := len(toks) + extra
	out := toks[:cap(toks)]
	if n > cap(toks) {
		out = make([]tok, n)
	}
	out = out[:n]
	j, e := n-1, len(exps)-1
	for i := len(toks) - 1; i >= 0; i-- {
		if e < 0 || exps[e].i != i {
			out[j] = toks[i]
			j--
			continue
		}
		t := toks[i]
		parts := strings.Fields(exps[e].exp)
		e--
		for k := len(parts) - 1; k >= 0; k-- {
			nt := tok{text: parts[k], lower: strings.ToLower(parts[k]), space: true}
			if k == 0 {
				nt.space = t.space
			}
			if k == len(parts)-1 {
				nt.sep, nt.end = t.sep, t.end
			}
			out[j] = nt
			j--
		}
	}
	return out
}

// expansion is a token to spell out: its index and its words.
type expansion struct {
	i   int
	exp string
}

// expansionOf is the spelled-out form of a contraction, ok false for any
// other token.
func expansionOf(t tok, lang string) (string, bool) {
	lower := t.lower
	exp, ok := contractions[lower]
	if !ok && lang == "en" {
		exp, ok = bareContractions[lower]
	}
	if !ok && len(lower) > 3 && strings.HasSuffix(lower, "n't") && lower != "ain't" {
		stem := t.text[:len(t.text)-3]
		if sl := strings.ToLower(stem); common[sl] {
			stem = sl
		}
		exp, ok = stem+" not", true
	}
	return exp, ok
}

func lowerAt(toks []tok, i int) string {
	if i < 0 || i >= len(toks) || toks[i].verbatim || toks[i].nl {
		return ""
	}
	return toks[i].lower
}

// phrase matches lowercase words joined by "_" at toks[i:], in set m, of up
// to three words; it returns how many words matched (0: none).
func phrase(toks []tok, i int, m map[string]bool) int {
	var buf [64]byte
	k := buf[:0]
	best := 0
	for n := 0; n < 3 && i+n < len(toks); n++ {
		w := lowerAt(toks, i+n)
		if w == "" {
			break
		}
		if n > 0 {
			k = append(k, '_')
			if toks[i+n-1].sep {
				break
			}
		}
		k = append(k, w...)
		if m[string(k)] {
			best = n + 1
		}
	}
	return best
}

// dropFillers removes greetings, politeness, thanks and hesitations where
// they cannot be content; if nothing would be left it removes nothing.
func dropFillers(toks []tok, lang string) []tok {
	out := slices.Clone(toks)
	del := func(i, n int) {
		if i+n < len(out) && out[i].space {
			out[i+n].space = true
		}
		if i > 0 && i+n == len(out) { // a closer: the word before now ends the text
			out[i-1].sep = out[i-1].sep || out[i+n-1].sep
		}
		out = slices.Delete(out, i, i+n)
	}
	first := func() int {
		for i, t := range out {
			if !t.nl {
				return i
			}
		}
		return -1
	}
	for changed := true; changed; {
		changed = false
		i := first()
		if i < 0 {
			break
		}
		w := lowerAt(out, i)
		switch {
		case greetings[w] && out[i].sep:
			del(i, 1)
			changed = true
		case greetings[w] && lowerAt(out, i+1) == "there" && out[i+1].sep:
			del(i, 2)
			changed = true
		case politeness[w] && i+1 < len(out):
			del(i, 1)
			changed = true
		case i+1 < len(out):
			if n := phrase(out, i, politePhrases); n > 0 && i+n < len(out) {
				del(i, n)
				changed = true
			}
		}
		if !changed && !out[i].verbatim {
			for _, p := range cjkPrefixes {
				if rest, ok := strings.CutPrefix(out[i].text, p); ok && rest != "" {
					out[i].text, out[i].lower = rest, strings.ToLower(rest)
					changed = true
					break
				}
			}
		}
	}
	for removed := true; removed; {
		removed = false
		last := len(out) - 1
		for last > 0 && out[last].nl {
			last--
		}
		for n := 3; n >= 1 && !removed; n-- { // the longest closer first
			i := last - n + 1
			if i < 1 {
				continue
			}
			w := lowerAt(out, i)
			switch {
			case (n == 1 && thanks[w]) || (n > 1 && phrase(out, i, thanksPhrases) == n):
				if out[i-1].sep {
					del(i, n)
					removed = true
				}
			case (n == 1 && politeness[w]) || (n > 1 && phrase(out, i, politePhrases) == n):
				del(i, n)
				removed = true
			}
		}
	}
	for i := 2; i < len(out); i++ {
		w := lowerAt(out, i)
		if politeness[w] && ((modals[lowerAt(out, i-2)] && lowerAt(out, i-1) == "you") ||
			(w == "bitte" && germanModal[lowerAt(out, i-2)] && germanYou[lowerAt(out, i-1)])) {
			del(i, 1)
		}
	}
	if h := hesitations[lang]; h != nil {
		for i := 0; i < len(out); i++ {
			if h[lowerAt(out, i)] {
				del(i, 1)
				i--
			}
		}
	}
	for _, t := range out {
		if !t.nl {
			return out
		}
	}
	return toks
}

var (
	germanModal = set(`kannst können könnten könntest würden würdest`)
	germanYou   = set(`du sie ihr`)
)

// fold lowercases what cannot be a name: every word of an all-capitals text,
// common words at a sentence start, English "I", elisions at a sentence
// start.
func fold(toks []tok, lang string, caps bool) {
	start := true
	for i := range toks {
		t := &toks[i]
		if t.nl {
			start = true
			continue
		}
		if !t.verbatim {
			lower := t.lower
			switch {
			case caps:
				t.text = lower
			case lower == t.text:
			case start && common[lower] && capitalized(t.text):
				t.text = lower
			case lang == "en" && t.text == "I":
				t.text = "i"
			case start && capitalized(t.text):
				for _, e := range elisions {
					if strings.HasPrefix(lower, e) {
						t.text = lower[:len(e)] + t.text[len(e):]
						break
					}
				}
			}
		}
		start = t.end
	}
}

// capitalized: an upper-case first letter and no other upper-case letter.
func capitalized(w string) bool {
	for i, r := range w {
		if unicode.IsUpper(r) != (i == 0) && (i == 0 || unicode.IsUpper(r)) {
			return false
		}
	}
	return true
}

// lang guesses the language: by script, then for Latin text by stopwords
// ("latn" when no language wins).
func lang(p string) string {
	var han, kana, hangul, cyr, latin, other int
	for _, r := range p {
		switch {
		case r < utf8.RuneSelf:
			if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
				latin++
			}
		case unicode.Is(unicode.Hangul, r):
			hangul++
		case unicode.In(r, unicode.Hiragana, unicode.Katakana):
			kana++
		case unicode.Is(unicode.Han, r):
			han++
		case unicode.Is(unicode.Cyrillic, r):
			cyr++
		case unicode.Is(unicode.Latin, r):
			latin++
		case unicode.IsLetter(r):
			other++
		}
	}
	switch {
	case hangul > 0:
		return "ko"
	case kana > 0:
		return "ja"
	case han > 0:
		return "zh"
	case cyr > latin:
		return "ru"
	case other > latin:
		return "other"
	case latin == 0:
		return "none"
	}
	var score [len(langOrder)]int
	for w := range strings.FieldsSeq(p) {
		w = strings.ToLower(trimWord(w))
		m := stopLangs[w]
		for i := range langOrder {
			if m&(1<<i) != 0 {
				score[i]++
			}
		}
	}
	best, n, tie := "latn", 0, false
	for i, l := range langOrder {
		switch {
		case score[i] > n:
			best, n, tie = l, score[i], false
		case score[i] == n && n > 0:
			tie = true
		}
	}
	if tie {
		return "latn"
	}
	return best
}

// wordTrim is what lang trims from a word's ends.
const wordTrim = trailing + "¿¡\"'()"

// trimWord is strings.Trim(w, wordTrim), with ASCII ends checked without
// decoding.
func trimWord(w string) string {
	for w != "" {
		if c := w[0]; c < utf8.RuneSelf {
			if !asciiTrim[c] {
				break
			}
			w = w[1:]
			continue
		}
		r, n := utf8.DecodeRuneInString(w)
		if !strings.ContainsRune(wordTrim, r) {
			break
		}
		w = w[n:]
	}
	for w != "" {
		if c := w[len(w)-1]; c < utf8.RuneSelf {
			if !asciiTrim[c] {
				break
			}
			w = w[:len(w)-1]
			continue
		}
		r, n := utf8.DecodeLastRuneInString(w)
		if !strings.ContainsRune(wordTrim, r) {
			break
		}
		w = w[:len(w)-n]
	}
	return w
}

var asciiTrim = func() (t [utf8.RuneSelf]bool) {
	for _, r := range wordTrim {
		if r < utf8.RuneSelf {
			t[r] = true
		}
	}
	return t
}()

// langOrder are the languages lang tells apart by stopwords; stopLangs maps
// a lowercase word to the bit set of those whose stopword it is (English
// also counts its contractions).
var (
	langOrder = [...]string{"en", "de", "fr", "es", "it", "pt"}
	stopLangs = func() map[string]uint8 {
		m := map[string]uint8{}
		for i, l := range langOrder {
			for w := range stopwords[l] {
				m[w] |= 1 << i
			}
		}
		for w := range contractions {
			m[w] |= 1
		}
		for w := range bareContractions {
			m[w] |= 1
		}
		return m
	}()
)

// meaning appends t's meaning-bearing tokens to out.
func (t tok) meaning(out []string, caps bool) []string {
	switch {
	case t.nl:
		return append(out, "nl")
	case t.verbatim:
		return append(out, "v:"+t.text)
	case strings.IndexFunc(t.text, isCJK) >= 0:
		// Without spaces or capitals a name cannot be told from a word: the
		// whole of the Chinese or Japanese text must be equal.
		return append(out, "c:"+t.text)
	}
	lower := strings.ToLower(t.text)
	switch {
	case strings.IndexFunc(t.text, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }) < 0:
		return append(out, "op:"+t.text) // "-", "+", "/", "=", "&"
	case strings.IndexFunc(t.text, unicode.IsNumber) >= 0 || numberWords[lower]:
		return append(out, "n:"+t.text)
	case negations[lower]:
		return append(out, "neg:"+lower)
	case strings.HasPrefix(lower, "n'"):
		return append(out, "neg:ne")
	case comparisons[lower]:
		return append(out, "cmp:"+lower)
	case units[lower]:
		return append(out, "u:"+lower)
	case strings.IndexFunc(t.text, unicode.IsUpper) >= 0:
		return append(out, "e:"+t.text)
	case caps && !common[lower]:
		return append(out, "e:"+lower)
	}
	return out
}
