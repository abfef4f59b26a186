package route

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// The model's features (see extract): what it reads of a request and how
// each feature becomes a hash. The same code serves scoring, training and
// explanations, so they cannot disagree. model_ref_test.go keeps the
// unoptimised version it must agree with, feature for feature.

// modelInput is what the model reads of a request: the message texts the
// features pass kept (system and user texts, in order), which of them are
// the latest user message, which are system texts, and the user turns.
type modelInput struct {
	parts              [][]byte
	latestLo, latestHi int    // parts[latestLo:latestHi] are the latest user message
	system             uint64 // bit i: parts[i] is a system text (first 64 parts)
	userTurns          int
}

func (in *modelInput) isSystem(i int) bool { return i < 64 && in.system&(1<<i) != 0 }

// featRef names a feature, for explanations.
type featRef struct {
	group int
	hash  uint32
	name  string
}

// extractor walks a modelInput and emits its features.
type extractor struct {
	// Where the features go, in batches of at most len(buf) (the scorer
	// relies on that bound): a scorer, else a collector. (Concrete types,
	// not an interface, so nothing escapes to the heap.)
	score  *scorer
	coll   *collector
	buf    [256]uint32
	n      int
	group  int
	counts [numGroups]int
	refs   *[]featRef // explanations only
}

func (x *extractor) setGroup(g int) {
	x.flush()
	x.group = g
}

func (x *extractor) emit(h uint32) {
	x.buf[x.n&(len(x.buf)-1)] = h
	x.n++
	if x.n == len(x.buf) {
		x.flush()
	}
}

func (x *extractor) flush() {
	if x.n > 0 {
		x.counts[x.group] += x.n
		if x.score != nil {
			x.score.add(x.group, x.buf[:x.n])
		} else {
			x.coll.add(x.group, x.buf[:x.n])
		}
		x.n = 0
	}
}

// bucket maps a feature hash to one of 1<<bits rows (Fibonacci hashing:
// the top bits of the product).
func bucket(h uint32, bits uint8) int {
	return int(h * 0x9E3779B1 >> (32 - bits))
}

// Hash seeds per feature kind.
const (
	seedWord    = 0x9747b28c
	seedBigram  = 0x85ebca6b
	seedChar    = 0xc2b2ae35
	seedSystem  = 0x27d4eb2f
	seedShape   = 0x165667b1
	seedHead    = 0x5bd1e995
	headBytes   = 200
	fnvPrime    = 0x01000193
	maxSysBytes = 2 << 10 // system text read for its words
)

// fmix is MurmurHash3's finaliser: spreads a hash over all bits.
func fmix(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// norm folds a rune for features: lowercase, every digit '0', every space
// ' '.
func norm(r rune) rune {
	if r < utf8.RuneSelf {
		switch {
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		case '0' <= r && r <= '9':
			return '0'
		case r == '\n' || r == '\t' || r == '\r' || r == '\f' || r == '\v':
			return ' '
		}
		return r
	}
	if unicode.IsDigit(r) {
		return '0'
	}
	if unicode.IsSpace(r) {
		return ' '
	}
	return unicode.ToLower(r)
}

// asciiNorm is norm for ASCII bytes; asciiWord is norm for the ASCII bytes
// that belong in a word (isWordRune) and 0 for the others.
var asciiNorm, asciiWord = func() (n, w [utf8.RuneSelf]byte) {
	for c := range n {
		n[c] = byte(norm(rune(c)))
		if word, _ := isWordRune(rune(c)); word {
			w[c] = n[c]
		}
	}
	return n, w
}()

// isWordRune reports whether r belongs in a word; cjk runes are words of
// their own (Chinese and Japanese put no spaces between words).
func isWordRune(r rune) (word, cjk bool) {
	if r < utf8.RuneSelf {
		return r == '_' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z', false
	}
	if r >= 0x3040 && r <= 0x30FF || r >= 0x3400 && r <= 0x9FFF || r >= 0xF900 && r <= 0xFAFF {
		return true, true
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r), false
}

// textWalk holds the state of the word and character passes over one text,
// which may come in several pieces (message parts, head and tail). A word
// never spans pieces; a word pair and a character n-gram may.
type textWalk struct {
	x       *extractor
	ring    [4]rune // the last normalised runes of the character pass, ring[3] the newest
	nr      int     // runes in ring (1 to 4)
	seed    uint32  // word hash seed (0: seedWord)
	prev    uint32  // the previous word's hash
	hasPrev bool
	// explanations only
	prevName string
}

func (t *textWalk) reset() {
	// Field by field: assigning a whole textWalk through t would make its
	// x pointer escape.
	t.ring, t.nr = [4]rune{3: ' '}, 1
	t.seed, t.prev, t.hasPrev, t.prevName = 0, 0, false, ""
}

// word emits the word s[lo:end], whose running hash is wh, and the pair it
// makes with the previous word.
func (t *textWalk) word(wh uint32, s []byte, lo, end int) {
	h := fmix(wh)
	t.x.emit(h)
	var name string
	if t.x.refs != nil {
		name = normString(s[lo:end])
		*t.x.refs = append(*t.x.refs, featRef{t.x.group, h, name}) // groupWord or groupHead
	}
	if t.hasPrev {
		b := fmix(t.prev*31 ^ h ^ seedBigram)
		t.x.emit(b)
		if t.x.refs != nil {
			*t.x.refs = append(*t.x.refs, featRef{t.x.group, b, t.prevName + " " + name})
		}
	}
	t.prev, t.hasPrev, t.prevName = h, true, name
}

func (t *textWalk) wordSeed() uint32 {
	if t.seed != 0 {
		return t.seed
	}
	return seedWord
}

// scanWords emits the word unigrams and bigrams of s. A word's hash is
// FNV-1a over its normalised runes from the kind's seed (wordEnd); a CJK
// character is a word of its own.
func (t *textWalk) scanWords(s []byte) {
	seed := t.wordSeed()
	for i := 0; i < len(s); {
		// To the start of a word.
		if c := s[i]; c < utf8.RuneSelf {
			if asciiWord[c] == 0 {
				i++
				continue
			}
		} else {
			r, size := utf8.DecodeRune(s[i:])
			word, cjk := isWordRune(r)
			if cjk {
				t.word((seed^uint32(norm(r)))*fnvPrime, s, i, i+size)
			}
			if !word || cjk {
				i += size
				continue
			}
		}
		lo := i
		var wh uint32
		i, wh = wordEnd(s, i, seed)
		t.word(wh, s, lo, i)
	}
}

// wordEnd reads the word that starts at s[i] and returns where it ends
// and its hash, FNV-1a from h. ASCII bytes take a table lookup each, in a
// loop without calls.
func wordEnd(s []byte, i int, h uint32) (int, uint32) {
	for i < len(s) {
		for i < len(s) {
			c := s[i]
			n := asciiWord[c&0x7F]
			if c >= utf8.RuneSelf || n == 0 {
				break
			}
			h = (h ^ uint32(n)) * fnvPrime
			i++
		}
		if i == len(s) || s[i] < utf8.RuneSelf {
			break // the end, or an ASCII byte that is not in a word
		}
		r, size := utf8.DecodeRune(s[i:])
		if word, cjk := isWordRune(r); !word || cjk {
			break
		}
		h = (h ^ uint32(norm(r))) * fnvPrime
		i += size
	}
	return i, h
}

// scanChars emits the character 3-5-grams of s (groupChar must be set):
// the n-grams of normalised runes, runs of spaces read as one, that end at
// each rune; an n-gram's hash is FNV-1a over its runes from the newest back
// (so the 3-gram's hash continues into the 4- and 5-gram's), plus n.
func (t *textWalk) scanChars(s []byte) {
	x := t.x
	i := 0
	// The first runes of the text, which end fewer n-grams, and every rune
	// when explaining: one by one.
	for i < len(s) && (t.nr < 4 || x.refs != nil) {
		r, size := normRune(s[i:])
		i += size
		t.char(r)
	}
	if i == len(s) {
		return
	}
	// The rest, with the last runes (p1 the newest) and the batch count
	// in registers: x.emit's work, flushed when a batch has no room for
	// three more (so x.n < len(x.buf) holds between calls).
	p1, p2, p3, p4 := t.ring[3], t.ring[2], t.ring[1], t.ring[0]
	buf, n := &x.buf, x.n
	const room = len(x.buf) - 3
	for i < len(s) {
		var r rune
		if c := s[i]; c < utf8.RuneSelf {
			r = rune(asciiNorm[c])
			i++
		} else {
			var size int
			r, size = utf8.DecodeRune(s[i:])
			r = norm(r)
			i += size
		}
		if r == ' ' && p1 == ' ' {
			continue
		}
		g := (seedChar ^ uint32(r)) * fnvPrime
		g = (g ^ uint32(p1)) * fnvPrime
		g = (g ^ uint32(p2)) * fnvPrime
		buf[n&(len(buf)-1)] = g + 3
		g = (g ^ uint32(p3)) * fnvPrime
		buf[(n+1)&(len(buf)-1)] = g + 4
		g = (g ^ uint32(p4)) * fnvPrime
		buf[(n+2)&(len(buf)-1)] = g + 5
		n += 3
		if n > room {
			x.n = n
			x.flush()
			n = 0
		}
		p4, p3, p2, p1 = p3, p2, p1, r
	}
	x.n = n
	t.ring = [4]rune{p4, p3, p2, p1}
}

// normRune returns the first rune of s, normalised, and its size.
func normRune(s []byte) (rune, int) {
	if c := s[0]; c < utf8.RuneSelf {
		return rune(asciiNorm[c]), 1
	}
	r, size := utf8.DecodeRune(s)
	return norm(r), size
}

// char emits the n-grams that end at rune r: scanChars rune by rune.
func (t *textWalk) char(r rune) {
	p := &t.ring
	if r == ' ' && p[3] == ' ' {
		return
	}
	g := (seedChar ^ uint32(r)) * fnvPrime
	g = (g ^ uint32(p[3])) * fnvPrime
	for n := 3; n <= t.nr+1; n++ {
		g = (g ^ uint32(p[5-n])) * fnvPrime
		t.x.emit(g + uint32(n))
		if t.x.refs != nil {
			name := append(make([]rune, 0, n), p[5-n:]...)
			*t.x.refs = append(*t.x.refs, featRef{groupChar, g + uint32(n), "'" + string(append(name, r)) + "'"})
		}
	}
	*p = [4]rune{p[1], p[2], p[3], r}
	t.nr = min(t.nr+1, 4)
}

// window calls f with the pieces of the latest user turn the model reads:
// every part, or, past size bytes, the head and tail of the joined
// parts (a part boundary reads as a newline).
func (in *modelInput) window(size int, f func(s []byte)) {
	total := 0
	for i := in.latestLo; i < in.latestHi; i++ {
		total += len(in.parts[i]) + 1
	}
	if total <= size {
		for i := in.latestLo; i < in.latestHi; i++ {
			f(in.parts[i])
		}
		return
	}
	// Head: the first size/2 bytes; tail: the last size/2.
	head := size / 2
	for i := in.latestLo; i < in.latestHi && head > 0; i++ {
		p := in.parts[i]
		n := min(head, len(p))
		f(p[:n])
		head -= n + 1
	}
	tail := size / 2
	start := in.latestHi
	for start > in.latestLo && tail > 0 {
		start--
		tail -= len(in.parts[start]) + 1
	}
	for i := start; i < in.latestHi; i++ {
		p := in.parts[i]
		if i == start && tail < 0 {
			p = p[-tail:]
		}
		f(p)
	}
}

// shape holds the structural measures of the latest user turn, counted
// over its bytes: characters (runes: bytes that are not UTF-8 continuation
// bytes), lines, the longest line (in bytes), code fences (the two
// backticks after a fence's first are not counted at all) and kinds of
// ASCII byte (shapeDigit…).
type shape struct {
	runes, lines, fences, longLine, lineLen int
	colonBreak                              bool
	kinds                                   [4]int
}

// The kinds of ASCII byte the shape counts, as lanes of asciiKinds.
const (
	shapeDigit = iota // 0-9
	shapeCode         // { } ; ( ) [ ] < > _
	shapeMath         // = + * / ^ %
	shapeQuote        // " '
)

// asciiKinds holds, for each ASCII byte, 1 in the 16-bit lane of its kind.
var asciiKinds = func() (t [utf8.RuneSelf]uint64) {
	for c := range t {
		k := -1
		switch {
		case '0' <= c && c <= '9':
			k = shapeDigit
		case bytes.IndexByte([]byte("{};()[]<>_"), byte(c)) >= 0:
			k = shapeCode
		case bytes.IndexByte([]byte("=+*/^%"), byte(c)) >= 0:
			k = shapeMath
		case c == '"' || c == '\'':
			k = shapeQuote
		}
		if k >= 0 {
			t[c] = 1 << (16 * k)
		}
	}
	return t
}()

// scan measures the shape of b. The counts are kept in registers; kinds
// packs four 16-bit counts (asciiKinds), which a piece (at most charWindow
// bytes) cannot overflow.
func (sh *shape) scan(b []byte) {
	runes, lineLen, longLine := sh.runes, sh.lineLen, sh.longLine
	var kinds uint64
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= utf8.RuneSelf {
			if c&0xC0 != 0x80 { // a lead byte
				runes++
			}
			lineLen++
			continue
		}
		runes++
		switch c {
		case '\n':
			sh.lines++
			longLine = max(longLine, lineLen)
			lineLen = 0
			if i > 0 && b[i-1] == ':' {
				sh.colonBreak = true
			}
			continue
		case '`':
			if i+2 < len(b) && b[i+1] == '`' && b[i+2] == '`' {
				sh.fences++
				i += 2 // the fence counts as one character
			}
		}
		kinds += asciiKinds[c]
		lineLen++
	}
	sh.runes, sh.lineLen, sh.longLine = runes, lineLen, longLine
	for k := range sh.kinds {
		sh.kinds[k] += int(uint16(kinds >> (16 * k)))
	}
}

// pieceEnd is what the shape reads between two pieces of the latest turn:
// a newline.
func (sh *shape) pieceEnd() {
	sh.runes++
	sh.lines++
	sh.longLine = max(sh.longLine, sh.lineLen)
	sh.lineLen = 0
}

// shapeNames lists the structural features; shapeHashes their hashes.
var shapeNames = []string{
	"system", "turns=1", "turns=2", "turns=3+",
	"fence", "colon_break", "question", "quotes",
	"lines=0", "lines=1-3", "lines=4-10", "lines=11+",
	"block", "digits=0", "digits=low", "digits=mid", "digits=high",
	"code=0", "code=low", "code=mid", "code=high",
	"math=0", "math=low", "math=high",
	"len<16", "len<32", "len<64", "len<128", "len<256", "len<512", "len<1k", "len<4k", "len>=4k",
}

var shapeHashes = func() map[string]uint32 {
	m := map[string]uint32{}
	for _, n := range shapeNames {
		h := uint32(seedShape)
		for i := 0; i < len(n); i++ {
			h = (h ^ uint32(n[i])) * fnvPrime
		}
		m[n] = fmix(h)
	}
	return m
}()

func (x *extractor) shapeFeat(name string) {
	h := shapeHashes[name]
	x.emit(h)
	if x.refs != nil {
		*x.refs = append(*x.refs, featRef{groupShape, h, "#" + name})
	}
}

func density(n, of int) int { // 0 none, 1 low, 2 mid, 3 high
	switch {
	case n == 0:
		return 0
	case n*50 < of: // < 2%
		return 1
	case n*10 < of: // < 10%
		return 2
	}
	return 3
}

// extract emits every feature of in.
func (x *extractor) extract(in *modelInput) {
	t := textWalk{x: x}
	// Words of the latest turn.
	x.setGroup(groupWord)
	t.reset()
	in.window(wordWindow, func(s []byte) { t.scanWords(s) })
	// Character n-grams and shape of the latest turn.
	x.setGroup(groupChar)
	t.reset()
	in.window(charWindow, func(s []byte) {
		t.scanChars(s)
		t.scanChars(space) // between pieces
	})
	var sh shape
	in.window(shapeWindow, func(s []byte) {
		sh.scan(s)
		sh.pieceEnd()
	})
	// Words of the system prompt (its first maxSysBytes).
	x.setGroup(groupSystem)
	t.reset()
	sysLeft, sys := maxSysBytes, false
	for i := range in.parts {
		if !in.isSystem(i) {
			continue
		}
		sys = true
		if sysLeft <= 0 {
			continue
		}
		p := in.parts[i]
		if len(p) > sysLeft {
			p = p[:sysLeft]
		}
		sysLeft -= len(p)
		t.scanSystem(p)
	}
	// Words of the instruction: the first line of the latest turn (at
	// most headBytes), where a request says what it wants before any text
	// it provides.
	x.setGroup(groupHead)
	t.reset()
	t.seed = seedHead
	if in.latestLo < in.latestHi {
		p := in.parts[in.latestLo]
		p = p[:min(len(p), headBytes)]
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			p = p[:i]
		}
		t.scanWords(p)
	}
	t.seed = 0
	// Structure.
	x.setGroup(groupShape)
	if sys {
		x.shapeFeat("system")
	}
	switch {
	case in.userTurns <= 1:
		x.shapeFeat("turns=1")
	case in.userTurns == 2:
		x.shapeFeat("turns=2")
	default:
		x.shapeFeat("turns=3+")
	}
	sh.lines-- // the newline pieceEnd added after the last piece
	sh.longLine = max(sh.longLine, sh.lineLen)
	if sh.fences > 0 {
		x.shapeFeat("fence")
	}
	if sh.colonBreak {
		x.shapeFeat("colon_break")
	}
	if sh.kinds[shapeQuote] >= 2 {
		x.shapeFeat("quotes")
	}
	if q := lastNonSpace(in); q == '?' || q == 0xFF1F {
		x.shapeFeat("question")
	}
	switch {
	case sh.lines <= 0:
		x.shapeFeat("lines=0")
	case sh.lines <= 3:
		x.shapeFeat("lines=1-3")
	case sh.lines <= 10:
		x.shapeFeat("lines=4-10")
	default:
		x.shapeFeat("lines=11+")
	}
	if sh.lines > 0 && sh.longLine >= 160 || sh.runes >= 600 {
		x.shapeFeat("block") // a provided text: a long paragraph after the instruction
	}
	x.shapeFeat(digitNames[density(sh.kinds[shapeDigit], sh.runes)])
	x.shapeFeat(codeNames[density(sh.kinds[shapeCode], sh.runes)])
	x.shapeFeat(mathNames[min(density(sh.kinds[shapeMath], sh.runes), 2)])
	n := 0
	for i := in.latestLo; i < in.latestHi; i++ {
		n += len(in.parts[i])
	}
	x.shapeFeat(lenName(n)) // bytes of the whole turn, past the window too
	x.flush()
}

var (
	space      = []byte(" ")
	digitNames = [4]string{"digits=0", "digits=low", "digits=mid", "digits=high"}
	codeNames  = [4]string{"code=0", "code=low", "code=mid", "code=high"}
	mathNames  = [3]string{"math=0", "math=low", "math=high"}
	lenBuckets = [...]int{16, 32, 64, 128, 256, 512, 1024, 4096}
	lenNames   = [...]string{"len<16", "len<32", "len<64", "len<128", "len<256", "len<512", "len<1k", "len<4k", "len>=4k"}
)

func lenName(n int) string {
	for i, b := range lenBuckets {
		if n < b {
			return lenNames[i]
		}
	}
	return lenNames[len(lenNames)-1]
}

// lastNonSpace returns the last non-space rune of the latest user turn.
func lastNonSpace(in *modelInput) rune {
	for i := in.latestHi - 1; i >= in.latestLo; i-- {
		p := in.parts[i]
		for len(p) > 0 {
			r, size := utf8.DecodeLastRune(p)
			if !unicode.IsSpace(r) {
				return r
			}
			p = p[:len(p)-size]
		}
	}
	return 0
}

// scanSystem emits the system text's word unigrams.
func (t *textWalk) scanSystem(s []byte) {
	x := t.x
	var h uint32
	inWord, start := false, 0
	end := func(i int) {
		fh := fmix(h)
		x.emit(fh)
		if x.refs != nil {
			*x.refs = append(*x.refs, featRef{groupSystem, fh, "system:" + normString(s[start:i])})
		}
		inWord = false
	}
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if n := asciiWord[c]; n != 0 {
				if !inWord {
					h, start, inWord = seedSystem, i, true
				}
				h = (h ^ uint32(n)) * fnvPrime
			} else if inWord {
				end(i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		word, cjk := isWordRune(r)
		switch {
		case cjk:
			if inWord {
				end(i)
			}
			h, start = (seedSystem^uint32(norm(r)))*fnvPrime, i
			end(i + size)
		case word:
			if !inWord {
				h, start, inWord = seedSystem, i, true
			}
			h = (h ^ uint32(norm(r))) * fnvPrime
		case inWord:
			end(i)
		}
		i += size
	}
	if inWord {
		end(len(s))
	}
}

// normString returns s folded as the features see it.
func normString(s []byte) string {
	out := make([]rune, 0, len(s))
	for _, r := range string(s) {
		out = append(out, norm(r))
	}
	return string(out)
}
