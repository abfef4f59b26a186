package route

// This file keeps the model's feature extractor as it was before it was
// optimised (renamed with a ref prefix; the one change since: character
// n-grams read charWindow bytes and the shape shapeWindow, where both read
// one window), as the reference that TestSameModelFeatures and
// FuzzSameModelFeatures hold the current code to: the optimisations must
// not change a single feature.

import (
	"bytes"
	"unicode/utf8"
)

// refExtractor walks a modelInput and emits its features. The same code serves
// scoring, training and explanations, so they cannot disagree.
type refExtractor struct {
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

func (x *refExtractor) setGroup(g int) {
	x.flush()
	x.group = g
}

func (x *refExtractor) emit(h uint32) {
	x.buf[x.n&(len(x.buf)-1)] = h
	x.n++
	if x.n == len(x.buf) {
		x.flush()
	}
}

func (x *refExtractor) flush() {
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

// refTextWalk holds the state of the word and character passes over one text,
// which may come in several pieces (message parts, head and tail).
type refTextWalk struct {
	x         *refExtractor
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

func (t *refTextWalk) reset() {
	// Field by field: assigning a whole refTextWalk through t would make its
	// x pointer escape.
	t.ring, t.eRing = [5]rune{}, [4]rune{}
	t.ring[4], t.nr, t.prevSpace, t.eRing[3] = ' ', 1, true, ' '
	t.seed, t.wh, t.inWord, t.prev, t.hasPrev, t.wlo, t.prevName = 0, 0, false, 0, false, 0, ""
}

// words emits word unigrams and bigrams (groupWord must be set).
func (t *refTextWalk) endWord(s []byte, end int) {
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

func (t *refTextWalk) wordSeed() uint32 {
	if t.seed != 0 {
		return t.seed
	}
	return seedWord
}

// scanWords emits the words of s.
func (t *refTextWalk) scanWords(s []byte) {
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
func (t *refTextWalk) scanChars(s []byte) {
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
func (t *refTextWalk) explainChars(r rune, nr int) {
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

// shape holds the structural measures of the latest user turn.
type refShape struct {
	runes, letters, digits, code, math, lines, fences, longLine, quote int
	colonBreak                                                         bool
	lineLen                                                            int
}

func (s *refShape) scan(b []byte) {
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

func (x *refExtractor) shapeFeat(name string) {
	h := shapeHashes[name]
	x.emit(h)
	if x.refs != nil {
		*x.refs = append(*x.refs, featRef{groupShape, h, "#" + name})
	}
}

// extract emits every feature of in.
func (x *refExtractor) extract(in *modelInput) {
	t := refTextWalk{x: x}
	// Words of the latest turn.
	x.setGroup(groupWord)
	t.reset()
	in.window(wordWindow, func(s []byte) { t.scanWords(s) })
	// Character n-grams of the latest turn.
	x.setGroup(groupChar)
	t.reset()
	in.window(charWindow, func(s []byte) {
		t.scanChars(s)
		t.scanChars(space)
	})
	var sh refShape
	in.window(shapeWindow, func(s []byte) {
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

// scanSystem emits the system text's word unigrams.
func (t *refTextWalk) scanSystem(s []byte) {
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

var newline = []byte("\n")
