package route

import (
	"bytes"
	"cmp"
	_ "embed"
	"math"
	"slices"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The learned classifier: a multinomial logistic regression over hashed
// features of the request (see extract), trained offline by Train from
// testdata/corpus and shipped as classifier.model (model_format.go).
//
// Scoring a request is a pass over the latest user turn (at most
// wordWindow bytes of it for words, charWindow for characters: its head and
// tail) and the system prompt: each
// feature hashes to a row of int8 weights, one per class, summed per feature
// group in int32. A class's logit is its bias plus, per group, the group's
// sum times the model's scale over the square root of the group's feature
// count (so long and short texts weigh alike). Softmax gives the
// probabilities. Nothing on that path allocates.

//go:embed classifier.model
var shippedModel []byte

var shipped struct {
	once sync.Once
	m    *Model
}

// ShippedModel returns the model embedded in llmproc (classifier.model).
// It panics if that file does not parse, which TestShippedModel rules out.
func ShippedModel() *Model {
	shipped.once.Do(func() {
		m, err := ParseModel(shippedModel)
		if err != nil {
			panic("route: the embedded classifier.model: " + err.Error())
		}
		shipped.m = m
	})
	return shipped.m
}

// MaxModelClasses bounds the classes of a model (the built-in five plus
// custom ones from routing.classifier.examples).
const MaxModelClasses = 16

// wordWindow bounds the bytes of the latest user turn the model reads for
// words, charWindow for character n-grams and shape: a longer turn is read
// at its first and last window/2 bytes (instructions sit at either end; the
// cost stays bounded on big bodies).
const (
	wordWindow = 4 << 10
	charWindow = 1 << 10
)

// Feature groups, each normalised on its own.
const (
	groupWord   = iota // word unigrams and bigrams of the latest user turn
	groupChar          // character 3-, 4- and 5-grams of the latest user turn
	groupSystem        // word unigrams of the system prompt
	groupShape         // structural features (value 1 each, not normalised)
	groupHead          // word unigrams and bigrams of the latest turn's first line (the instruction)
	numGroups
)

var groupNames = [numGroups]string{"word", "char", "system", "shape", "head"}

// Model is a trained linear classifier. It is immutable and safe for
// concurrent use.
type Model struct {
	classes []Class
	bits    uint8
	scale   float32   // weight = int8 × scale
	bias    []float32 // by class
	w       []int8    // row-major: bucket × len(classes)
}

// Classes returns the model's classes, in its order.
func (m *Model) Classes() []Class { return m.classes }

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

// extractor walks a modelInput and emits its features. The same code serves
// scoring, training and explanations, so they cannot disagree.
type extractor struct {
	// Where the features go, in batches: a scorer, else a collector.
	// (Concrete types, not an interface, so nothing escapes to the heap.)
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

// asciiNorm is norm for ASCII bytes.
var asciiNorm = func() (t [utf8.RuneSelf]byte) {
	for c := range t {
		t[c] = byte(norm(rune(c)))
	}
	return t
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
// which may come in several pieces (message parts, head and tail).
type textWalk struct {
	x         *extractor
	ring      [5]rune // the last normalised runes, ring[4] the newest
	nr        int     // runes in ring (up to 5)
	prevSpace bool
	seed      uint32 // word hash seed (0: seedWord)
	wh        uint32 // hash of the word being read
	inWord    bool
	prev      uint32 // the previous word's hash
	hasPrev   bool
	// explanations only
	wlo      int // where the current word starts in its piece
	prevName string
	eRing    [4]rune // scanChars' earlier runes, for explanations
}

func (t *textWalk) reset() {
	// Field by field: assigning a whole textWalk through t would make its
	// x pointer escape.
	t.ring, t.eRing = [5]rune{}, [4]rune{}
	t.ring[4], t.nr, t.prevSpace, t.eRing[3] = ' ', 1, true, ' '
	t.seed, t.wh, t.inWord, t.prev, t.hasPrev, t.wlo, t.prevName = 0, 0, false, 0, false, 0, ""
}

// words emits word unigrams and bigrams (groupWord must be set).
func (t *textWalk) endWord(s []byte, end int) {
	if !t.inWord {
		return
	}
	t.inWord = false
	h := fmix(t.wh)
	t.x.emit(h)
	var name string
	if t.x.refs != nil {
		name = normString(s[t.wlo:end])
		*t.x.refs = append(*t.x.refs, featRef{groupWord, h, name})
	}
	if t.hasPrev {
		b := fmix(t.prev*31 ^ h ^ seedBigram)
		t.x.emit(b)
		if t.x.refs != nil {
			*t.x.refs = append(*t.x.refs, featRef{groupWord, b, t.prevName + " " + name})
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

// scanWords emits the words of s.
func (t *textWalk) scanWords(s []byte) {
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(s[i:])
		}
		word, cjk := isWordRune(r)
		switch {
		case cjk:
			t.endWord(s, i)
			t.inWord, t.wh, t.wlo = true, (t.wordSeed()^uint32(norm(r)))*fnvPrime, i
			t.endWord(s, i+size)
		case word:
			if !t.inWord {
				t.inWord, t.wh, t.wlo = true, t.wordSeed(), i
			}
			t.wh = (t.wh ^ uint32(norm(r))) * fnvPrime
		default:
			t.endWord(s, i)
		}
		i += size
	}
	t.endWord(s, len(s))
}

// scanChars emits the character 3-5-grams of s (groupChar must be set).
func (t *textWalk) scanChars(s []byte) {
	// The last four runes, p1 the newest, in registers; t.ring keeps them
	// between pieces.
	p1, p2, p3, p4 := t.ring[4], t.ring[3], t.ring[2], t.ring[1]
	_ = t.ring[0]
	nr, prevSpace, x := t.nr, t.prevSpace, t.x
	explain := x.refs != nil
	for i := 0; i < len(s); {
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
		if r == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		// The n-grams ending here, hashed from the newest rune back, so
		// the 3-gram's hash continues into the 4- and 5-gram's.
		g := (seedChar ^ uint32(r)) * fnvPrime
		g = (g ^ uint32(p1)) * fnvPrime
		if nr >= 2 {
			g = (g ^ uint32(p2)) * fnvPrime
			x.emit(g + 3)
			if nr >= 3 {
				g = (g ^ uint32(p3)) * fnvPrime
				x.emit(g + 4)
				if nr >= 4 {
					g = (g ^ uint32(p4)) * fnvPrime
					x.emit(g + 5)
				}
			}
		}
		if explain {
			t.explainChars(r, nr)
		}
		p4, p3, p2, p1 = p3, p2, p1, r
		nr = min(nr+1, 4)
	}
	t.ring[4], t.ring[3], t.ring[2], t.ring[1] = p1, p2, p3, p4
	t.nr, t.prevSpace = nr, prevSpace
}

// explainChars records the n-grams scanChars emitted for rune r after nr
// earlier runes. eRing holds the earlier runes (eRing[3] the newest).
func (t *textWalk) explainChars(r rune, nr int) {
	h := (seedChar ^ uint32(r)) * fnvPrime
	h = (h ^ uint32(t.eRing[3])) * fnvPrime
	name := string(t.eRing[3]) + string(r)
	for n := 3; n <= min(nr+1, 5); n++ {
		prev := t.eRing[5-n]
		h = (h ^ uint32(prev)) * fnvPrime
		name = string(prev) + name
		*t.x.refs = append(*t.x.refs, featRef{groupChar, h + uint32(n), "'" + name + "'"})
	}
	copy(t.eRing[:3], t.eRing[1:])
	t.eRing[3] = r
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

// shape holds the structural measures of the latest user turn.
type shape struct {
	runes, letters, digits, code, math, lines, fences, longLine, quote int
	colonBreak                                                         bool
	lineLen                                                            int
}

func (s *shape) scan(b []byte) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c&0xC0 != 0x80 {
			s.runes++
		}
		switch {
		case c == '\n':
			s.lines++
			s.longLine = max(s.longLine, s.lineLen)
			s.lineLen = 0
			if i > 0 && b[i-1] == ':' {
				s.colonBreak = true
			}
			continue
		case c == '`':
			if i+2 < len(b) && b[i+1] == '`' && b[i+2] == '`' {
				s.fences++
				i += 2
			}
		case '0' <= c && c <= '9':
			s.digits++
		case c == '{' || c == '}' || c == ';' || c == '(' || c == ')' || c == '[' || c == ']' || c == '<' || c == '>' || c == '_':
			s.code++
		case c == '=' || c == '+' || c == '*' || c == '/' || c == '^' || c == '%':
			s.math++
		case c == '"' || c == '\'':
			s.quote++
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80 && c&0xC0 != 0x80:
			s.letters++
		}
		s.lineLen++
	}
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
	// Character n-grams of the latest turn.
	x.setGroup(groupChar)
	t.reset()
	var sh shape
	in.window(charWindow, func(s []byte) {
		t.scanChars(s)
		t.scanChars(space)
		sh.scan(s)
		sh.scan(newline)
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
	sh.lines-- // the newline scan added after the last piece
	sh.longLine = max(sh.longLine, sh.lineLen)
	if sh.fences > 0 {
		x.shapeFeat("fence")
	}
	if sh.colonBreak {
		x.shapeFeat("colon_break")
	}
	if sh.quote >= 2 {
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
	x.shapeFeat(digitNames[density(sh.digits, sh.runes)])
	x.shapeFeat(codeNames[density(sh.code, sh.runes)])
	x.shapeFeat(mathNames[min(density(sh.math, sh.runes), 2)])
	n := 0
	for i := in.latestLo; i < in.latestHi; i++ {
		n += len(in.parts[i])
	}
	x.shapeFeat(lenName(n)) // bytes of the whole turn, past the window too
	x.flush()
}

var (
	space      = []byte(" ")
	newline    = []byte("\n")
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
	start, inWord := 0, false
	h := uint32(0)
	end := func(i int) {
		if inWord {
			fh := fmix(h)
			t.x.emit(fh)
			if t.x.refs != nil {
				*t.x.refs = append(*t.x.refs, featRef{groupSystem, fh, "system:" + normString(s[start:i])})
			}
			inWord = false
		}
	}
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(s[i:])
		}
		word, cjk := isWordRune(r)
		switch {
		case cjk:
			end(i)
			h, start, inWord = (seedSystem^uint32(norm(r)))*fnvPrime, i, true
			end(i + size)
		case word:
			if !inWord {
				h, start, inWord = seedSystem, i, true
			}
			h = (h ^ uint32(norm(r))) * fnvPrime
		default:
			end(i)
		}
		i += size
	}
	end(len(s))
}

// normString returns s folded as the features see it.
func normString(s []byte) string {
	out := make([]rune, 0, len(s))
	for _, r := range string(s) {
		out = append(out, norm(r))
	}
	return string(out)
}

// scorer sums a model's weights per group and class.
type scorer struct {
	m    *Model
	sums [numGroups][MaxModelClasses]int32
}

func (s *scorer) add(group int, hs []uint32) {
	m := s.m
	k := len(m.classes)
	sums := &s.sums[group]
	if k == 5 { // the built-in classes: unrolled
		var a0, a1, a2, a3, a4 int32
		w, bits := m.w, m.bits
		for _, h := range hs {
			i := bucket(h, bits) * 5
			row := w[i : i+5 : i+5]
			a0 += int32(row[0])
			a1 += int32(row[1])
			a2 += int32(row[2])
			a3 += int32(row[3])
			a4 += int32(row[4])
		}
		sums[0] += a0
		sums[1] += a1
		sums[2] += a2
		sums[3] += a3
		sums[4] += a4
		return
	}
	for _, h := range hs {
		row := m.w[bucket(h, m.bits)*k:][:k]
		for c, v := range row {
			sums[c] += int32(v)
		}
	}
}

// Prediction is what the model made of a request.
type Prediction struct {
	Class      Class
	Confidence float64 // the class's probability
	RunnerUp   Class
	RunnerUpP  float64
}

// predict scores in; probs receives the probabilities by class.
func (m *Model) predict(in *modelInput, probs *[MaxModelClasses]float64) Prediction {
	s := scorer{m: m}
	x := extractor{score: &s}
	x.extract(in)
	return m.finish(&s.sums, &x.counts, probs)
}

func (m *Model) finish(sums *[numGroups][MaxModelClasses]int32, counts *[numGroups]int, probs *[MaxModelClasses]float64) Prediction {
	k := len(m.classes)
	var z [MaxModelClasses]float64
	for c := 0; c < k; c++ {
		v := float64(m.bias[c])
		for g := 0; g < numGroups; g++ {
			if counts[g] == 0 {
				continue
			}
			v += float64(sums[g][c]) * float64(m.scale) * groupScale(g, counts[g])
		}
		z[c] = v
	}
	best, second := 0, -1
	for c := 1; c < k; c++ {
		if z[c] > z[best] {
			second, best = best, c
		} else if second < 0 || z[c] > z[second] {
			second = c
		}
	}
	var total float64
	for c := 0; c < k; c++ {
		probs[c] = math.Exp(z[c] - z[best])
		total += probs[c]
	}
	for c := 0; c < k; c++ {
		probs[c] /= total
	}
	p := Prediction{Class: m.classes[best], Confidence: probs[best]}
	if second >= 0 {
		p.RunnerUp, p.RunnerUpP = m.classes[second], probs[second]
	}
	return p
}

// groupScale is the factor a group's sum is multiplied by: one over the
// square root of its feature count, except for the shape features.
func groupScale(g, n int) float64 {
	if g == groupShape {
		return groupWeight[g]
	}
	return groupWeight[g] / math.Sqrt(float64(n))
}

// groupWeight weighs the groups against each other (chosen on the dev
// split).
var groupWeight = [numGroups]float64{3, 3, 1, 0.5, 3}

// Contribution is one feature's part in a decision: what it adds to the
// winning class's logit minus what it adds to the runner-up's (summed over
// its occurrences).
type Contribution struct {
	Feature string  `json:"feature"` // 'n-gram', word, word pair, system:word or #shape
	Group   string  `json:"group"`
	Weight  float64 `json:"weight"`
}

// Explanation is a prediction with the features that decided it.
type Explanation struct {
	Prediction
	Probabilities map[Class]float64 `json:"probabilities"`
	Top           []Contribution    `json:"top"`
}

// explain scores in like predict and lists the n features that pushed the
// class furthest past the runner-up. It allocates; route-test uses it, the
// router does not.
func (m *Model) explain(in *modelInput, n int) Explanation {
	var refs []featRef
	s := scorer{m: m}
	x := extractor{score: &s, refs: &refs}
	x.extract(in)
	var probs [MaxModelClasses]float64
	p := m.finish(&s.sums, &x.counts, &probs)
	e := Explanation{Prediction: p, Probabilities: map[Class]float64{}}
	k := len(m.classes)
	for c := 0; c < k; c++ {
		e.Probabilities[m.classes[c]] = probs[c]
	}
	win, run := indexOf(m.classes, p.Class), indexOf(m.classes, p.RunnerUp)
	byName := map[string]int{}
	for _, r := range refs {
		row := m.w[bucket(r.hash, m.bits)*k:][:k]
		d := float64(row[win])
		if run >= 0 {
			d -= float64(row[run])
		}
		d *= float64(m.scale) * groupScale(r.group, x.counts[r.group])
		key := groupNames[r.group] + "\x00" + r.name
		if i, ok := byName[key]; ok {
			e.Top[i].Weight += d
			continue
		}
		byName[key] = len(e.Top)
		e.Top = append(e.Top, Contribution{r.name, groupNames[r.group], d})
	}
	slices.SortStableFunc(e.Top, func(a, b Contribution) int { return cmp.Compare(b.Weight, a.Weight) })
	e.Top = e.Top[:min(n, len(e.Top))]
	return e
}

func indexOf(cs []Class, c Class) int {
	for i, x := range cs {
		if x == c {
			return i
		}
	}
	return -1
}

// Explain classifies body with the classifier's model and explains the
// decision (n top features); for kind keywords it returns the keyword
// signals as the contributions. body must be a valid request.
func (c *Classifier) Explain(body []byte, n int) (Explanation, error) {
	f, err := c.Features(body)
	if err != nil {
		return Explanation{}, err
	}
	if c.model == nil {
		e := Explanation{Prediction: Prediction{Class: f.Class, Confidence: 1}}
		for _, s := range f.Signals {
			e.Top = append(e.Top, Contribution{Feature: s, Group: "keyword"})
		}
		return e, nil
	}
	var in modelInput
	c.features(body, &in)
	return c.model.explain(&in, n), nil
}
