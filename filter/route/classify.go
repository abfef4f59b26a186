package route

import (
	"bytes"
	"math"
	"slices"
	"strings"
)

// ClassifierConfig holds the classifier's weights and thresholds. A zero
// field takes its default (see DefaultClassifierConfig); a negative weight
// disables that signal.
type ClassifierConfig struct {
	// Kind picks the classifier: "model" (the default), the learned model
	// (model.go), or "keywords", the keyword cues below. The thresholds,
	// weights and keywords apply to kind keywords only.
	Kind string `yaml:"kind"`
	// Examples names a JSON-lines file of labelled requests (route-test
	// format, expect.class set) that adapts the model at config load; its
	// classes may include new ones. The config package loads it into Model.
	Examples string `yaml:"examples"`
	// Model is the model kind model uses; nil is the shipped one.
	Model *Model `yaml:"-"`

	CodeMinScore       float64 `yaml:"code_min_score"`       // score a request needs to be code
	ReasoningMinScore  float64 `yaml:"reasoning_min_score"`  // … to be reasoning
	ExtractionMinScore float64 `yaml:"extraction_min_score"` // … to be extraction
	CreativeMinScore   float64 `yaml:"creative_min_score"`   // … to be creative

	KeywordWeight        float64 `yaml:"keyword_weight"`         // multiplies every keyword's built-in weight
	FenceWeight          float64 `yaml:"fence_weight"`           // code score for a ``` fence
	ResponseFormatWeight float64 `yaml:"response_format_weight"` // extraction score for a JSON response_format
	ToolsWeight          float64 `yaml:"tools_weight"`           // extraction score for a tools array
	LongInputTokens      int     `yaml:"long_input_tokens"`      // estimated input tokens from which the input counts as long
	LongInputWeight      float64 `yaml:"long_input_weight"`      // reasoning score for a long input
	MaxHitsPerKeyword    int     `yaml:"max_hits_per_keyword"`   // a keyword counts at most this many times
	// MaxClassifyBytes bounds the text the keyword scan reads: a longer text
	// is scanned at its first and last MaxClassifyBytes/2 bytes (the
	// instructions usually sit at either end), which bounds the cost on big
	// bodies. Token estimation always covers the whole text.
	MaxClassifyBytes int `yaml:"max_classify_bytes"`
	// Keywords adds cues of your own per class (code, reasoning, extraction,
	// creative), weight 1 each (times KeywordWeight): a single word matches
	// as a whole word, a phrase at a word start, case-insensitively.
	Keywords map[Class][]string `yaml:"keywords"`
}

// The classifier kinds.
const (
	KindModel    = "model"
	KindKeywords = "keywords"
)

// ClassNames returns the classes the classifier can choose.
func (c *Classifier) ClassNames() []Class {
	if c.model != nil {
		return c.model.classes
	}
	return Classes
}

// Model returns the model the classifier uses, nil for kind keywords.
func (c *Classifier) Model() *Model { return c.model }

// DefaultClassifierConfig returns the defaults used for zero fields.
func DefaultClassifierConfig() ClassifierConfig {
	return ClassifierConfig{
		CodeMinScore:         1,
		ReasoningMinScore:    1,
		ExtractionMinScore:   1,
		CreativeMinScore:     1,
		KeywordWeight:        1,
		FenceWeight:          3,
		ResponseFormatWeight: 3,
		ToolsWeight:          0.5,
		LongInputTokens:      4000,
		LongInputWeight:      1,
		MaxHitsPerKeyword:    3,
		MaxClassifyBytes:     8 << 10,
	}
}

// Classifier computes Features and the task class. It is safe for
// concurrent use.
type Classifier struct {
	cfg    ClassifierConfig
	model  *Model       // kind model; nil for keywords
	tables [4][]keyword // the built-in keywords plus ClassifierConfig.Keywords
	nkw    int          // keyword slots, one per entry of the keyword tables
	slots  []slotInfo   // by slot
	// One pass over the text (scan) counts the keywords. At a word it looks
	// up the word's first three bytes (all of a shorter word) in an
	// open-addressing table of heads: the single-word keywords the word may
	// equal and the other keywords that may start there. At any other byte
	// it tries the symbols anchored on that byte. Keywords that fit neither
	// (none of the built-in ones) are searched for separately (count).
	table   []uint64 // key<<32 | 1+index into heads; 0 is an empty cell
	shift   uint     // 32 - log2(len(table)): a key hashes to its top bits
	heads   []head
	anchors []anchorSet
	nsym    int
	kinds   [256]byteKind // what scan does at each byte value
}

// byteKind says what scan does at a byte of the text: nothing, go through a
// word, or, from kindAnchor up, try the symbols of anchors[kind-kindAnchor].
type byteKind uint8

const (
	kindPlain byteKind = iota
	kindWord
	kindAnchor
)

// slotInfo describes one keyword slot.
type slotInfo struct {
	signal string // "class:keyword", as Features.Signals names it
	search bool   // counted by searching the text (count), not by scan
}

// head lists the keywords that start with one key.
type head struct {
	words    []slotKW // single-word keywords: a word must equal one
	prefixes []slotKW // other keywords: the text at a word start must begin with one
}

// slotKW is a keyword and its slot.
type slotKW struct {
	slot int
	k    keyword
}

// anchorSet holds the symbols anchored on one byte, and the bytes that can
// sit just before and just after that byte in one of their matches: a
// quick test that spares most places (most spaces, for "ad copy") the
// comparisons.
type anchorSet struct {
	syms          []symbol
	before, after byteSet
}

// byteSet is a set of byte values.
type byteSet [4]uint64

func (s *byteSet) add(b byte)      { s[b>>6] |= 1 << (b & 63) }
func (s *byteSet) has(b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }

// symbol is a keyword that does not start with three word bytes (".py",
// "=>", "c++"), which can match anywhere. scan tries it where its anchor
// byte, its first byte that cannot be in a word (one other than a space when
// it has one), sits in the text.
type symbol struct {
	slotKW
	at int // the anchor's offset in k.s
	id int // index of its state in scan
}

// NewClassifier returns a Classifier; zero fields of c take their defaults.
func NewClassifier(c ClassifierConfig) *Classifier {
	d := DefaultClassifierConfig()
	def := func(v *float64, dv float64) {
		if *v == 0 {
			*v = dv
		} else if *v < 0 {
			*v = 0
		}
	}
	def(&c.CodeMinScore, d.CodeMinScore)
	def(&c.ReasoningMinScore, d.ReasoningMinScore)
	def(&c.ExtractionMinScore, d.ExtractionMinScore)
	def(&c.CreativeMinScore, d.CreativeMinScore)
	def(&c.KeywordWeight, d.KeywordWeight)
	def(&c.FenceWeight, d.FenceWeight)
	def(&c.ResponseFormatWeight, d.ResponseFormatWeight)
	def(&c.ToolsWeight, d.ToolsWeight)
	def(&c.LongInputWeight, d.LongInputWeight)
	if c.LongInputTokens <= 0 {
		c.LongInputTokens = d.LongInputTokens
	}
	if c.MaxClassifyBytes <= 0 {
		c.MaxClassifyBytes = d.MaxClassifyBytes
	}
	if c.MaxHitsPerKeyword <= 0 {
		c.MaxHitsPerKeyword = d.MaxHitsPerKeyword
	}
	cl := &Classifier{cfg: c}
	if c.Kind != KindKeywords {
		cl.model = c.Model
		if cl.model == nil {
			cl.model = ShippedModel()
		}
	}
	for b := range 256 {
		if wordByte(byte(b)) {
			cl.kinds[b] = kindWord
		}
	}
	for i, table := range keywords {
		cl.tables[i] = slices.Clone(table)
		for _, s := range c.Keywords[Classes[i]] {
			if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
				cl.tables[i] = append(cl.tables[i], keyword{s, 1, true})
			}
		}
	}
	headOf := map[uint32]int{} // key → index into cl.heads
	headFor := func(s string) *head {
		key := headKey([]byte(s))
		i, ok := headOf[key]
		if !ok {
			i = len(cl.heads)
			headOf[key] = i
			cl.heads = append(cl.heads, head{})
		}
		return &cl.heads[i]
	}
	for class, table := range cl.tables {
		for _, k := range table {
			kw := slotKW{cl.nkw, k}
			cl.slots = append(cl.slots, slotInfo{signal: string(Classes[class]) + ":" + k.s})
			cl.nkw++
			switch {
			case k.word && isWord(k.s):
				// A later keyword of the same word takes it over: only the
				// last one's slot counts.
				h := headFor(k.s)
				if i := slices.IndexFunc(h.words, func(w slotKW) bool { return w.k.s == k.s }); i >= 0 {
					h.words[i] = kw
				} else {
					h.words = append(h.words, kw)
				}
			case len(k.s) >= 3 && isWord(k.s[:3]):
				h := headFor(k.s[:3])
				h.prefixes = append(h.prefixes, kw)
			default:
				if at := anchor(k.s); at >= 0 {
					if cl.kinds[k.s[at]] == kindPlain {
						cl.kinds[k.s[at]] = kindAnchor + byteKind(len(cl.anchors))
						cl.anchors = append(cl.anchors, anchorSet{})
					}
					a := &cl.anchors[cl.kinds[k.s[at]]-kindAnchor]
					a.syms = append(a.syms, symbol{kw, at, cl.nsym})
					cl.nsym++
					for b := range 256 {
						if at == 0 || k.s[at-1] == byte(b) {
							a.before.add(byte(b))
						}
						if at == len(k.s)-1 || k.s[at+1] == byte(b) {
							a.after.add(byte(b))
						}
					}
				} else {
					cl.slots[kw.slot].search = true
				}
			}
		}
	}
	// At most a quarter full, so a lookup (most are misses) probes one or
	// two cells.
	bits := uint(3)
	for 1<<bits < 4*len(cl.heads) {
		bits++
	}
	cl.table, cl.shift = make([]uint64, 1<<bits), 32-bits
	for key, i := range headOf {
		h := cl.cell(key)
		for cl.table[h] != 0 {
			h = (h + 1) & uint32(len(cl.table)-1)
		}
		cl.table[h] = uint64(key)<<32 | uint64(i+1)
	}
	return cl
}

// headKey packs a word's first three bytes (all of a shorter word) into a
// key. Word bytes are never 0, so a shorter word's key differs from every
// longer word's.
func headKey(w []byte) uint32 {
	key := uint32(w[0])
	if len(w) > 1 {
		key |= uint32(w[1]) << 8
	}
	if len(w) > 2 {
		key |= uint32(w[2]) << 16
	}
	return key
}

// cell returns the table cell where the search for key starts (Fibonacci
// hashing).
func (c *Classifier) cell(key uint32) uint32 {
	return key * 0x9E3779B1 >> c.shift
}

// anchor returns the offset of the byte where scan tries the symbol keyword
// s: its first byte that cannot be in a word and is not a space, else its
// first space; -1 when it has neither.
func anchor(s string) int {
	at := -1
	for i := 0; i < len(s); i++ {
		if !wordByte(s[i]) {
			if s[i] != ' ' {
				return i
			}
			if at < 0 {
				at = i
			}
		}
	}
	return at
}

// keyword is one lowercase cue. word keywords must stand alone (no letter,
// digit or underscore on either side where the keyword has one); others
// match anywhere a word starts, or anywhere at all when they start with a
// symbol.
type keyword struct {
	s      string
	weight float64
	word   bool
}

// The keyword tables, one per scored class (index = class index in Classes).
var keywords = [4][]keyword{
	// code
	{
		{"func ", 1.5, false}, {"def ", 1.5, false}, {"class ", 0.5, false}, {"import ", 1, false},
		{"#include", 2, false}, {"};", 1, false}, {"();", 1, false}, {"=>", 1, false}, {"->", 0.5, false},
		{"return ", 1, false}, {"console.log", 2, false}, {"printf", 1.5, false}, {"select ", 0.5, false},
		{"traceback", 2, true}, {"stack trace", 2, false}, {"exception", 1, true}, {"segfault", 2, true},
		{"nullpointer", 2, false}, {"undefined is not", 2, false}, {"panic:", 2, false}, {"error:", 0.5, false},
		{".py", 1, true}, {".go", 1, true}, {".js", 1, true}, {".ts", 1, true}, {".java", 1, true},
		{".rs", 1, true}, {".cpp", 1, true}, {".sql", 1, true}, {".yaml", 0.5, true}, {".tsx", 1, true},
		{"function", 1, true}, {"code", 0.5, true}, {"bug", 1, true}, {"compile", 1, false}, {"regex", 2, true},
		{"refactor", 2, false}, {"unit test", 2, false}, {"debug", 1.5, false}, {"python", 1.5, true},
		{"golang", 1.5, true}, {"javascript", 1.5, true}, {"typescript", 1.5, true}, {"rust", 1, true},
		{"java", 1, true}, {"c++", 1.5, false}, {"sql", 1, true}, {"bash", 1, true}, {"dockerfile", 2, true},
		{"kubernetes", 0.5, true}, {"terraform", 1.5, true}, {"nginx", 1, true}, {"swiftui", 2, true},
		{"kotlin", 1.5, true}, {"powershell", 1.5, true}, {"std::", 2, false}, {"list<", 1, false}, {"mock", 1, true},
		{"html", 1, true}, {"css", 1, true}, {"react", 1, true}, {"workflow", 0.5, true}, {"yaml", 0.5, true}, {"api", 0.5, true}, {"endpoint", 0.5, true}, {"script", 1, true},
		{"variable", 1, true}, {"null", 0.5, true}, {"npm", 1.5, true}, {"git ", 1, false}, {"implement", 1, false},
		{"algorithm", 0.5, true}, {"query", 0.5, true}, {"programmer", 1, true}, {"coding", 1.5, true},
		{"repository", 0.5, true}, {"linter", 1.5, true}, {"stdout", 1.5, true}, {"lambda", 1, true},
	},
	// reasoning
	{
		{"prove", 2, true}, {"proof", 2, true}, {"derive", 2, true}, {"step by step", 2, false},
		{"step-by-step", 2, false}, {"calculate", 1.5, true}, {"compute", 1, true}, {"solve", 1.5, true},
		{"equation", 2, false}, {"theorem", 2, true}, {"integral", 2, false}, {"derivative", 2, true},
		{"probability", 2, true}, {"expected value", 2, false}, {"how many", 0.5, false}, {"∑", 2, false},
		{"≤", 1.5, false}, {"≥", 1.5, false}, {"∫", 2, false}, {"√", 1.5, false}, {"^2", 1, false},
		{"x =", 0.5, false}, {"trade-off", 1.5, false}, {"tradeoff", 1.5, false}, {"analyze", 1, false},
		{"analyse", 1, false}, {"compare", 1, true}, {"reason", 0.5, false}, {"logic", 1, false},
		{"puzzle", 1.5, true}, {"riddle", 1, true}, {"percent", 1, false}, {"math", 1, false},
		{"minimize", 1, true}, {"maximize", 1, true}, {"optimal", 1, true}, {"estimate", 1, true},
		{"why does", 1, false}, {"pros and cons", 1, false}, {"evaluate", 1, true}, {"implications", 1, true},
		{"strategy", 0.5, true}, {"if a train", 2, false}, {"matrix", 1, true}, {"eigen", 2, false},
		{"lemma", 2, true}, {"inequality", 2, true}, {"converge", 1.5, false}, {"recurrence", 1.5, true},
		{"complexity", 0.5, true}, {"o(n", 1.5, false}, {"angle", 1, true}, {"margin of error", 1, false},
		{"conclude", 1, true}, {"p(", 1, false}, {"when will", 0.5, false}, {"walk me through", 1, false}, {"think through", 1.5, false},
	},
	// extraction
	{
		{"extract", 2, false}, {"classify", 2, true}, {"categorize", 2, true}, {"categorise", 2, true},
		{"convert", 1, true}, {"json", 1.5, true}, {"csv", 1, true}, {"summarize", 2, false},
		{"summarise", 2, false}, {"summary", 1.5, true}, {"tl;dr", 2, false}, {"tldr", 2, true},
		{"translate", 2, true}, {"rewrite", 1, true}, {"paraphrase", 2, true}, {"proofread", 2, true},
		{"fix the grammar", 2, false}, {"grammar", 1, true}, {"sentiment", 2, true}, {"label", 1, false},
		{"list all", 1.5, false}, {"parse", 1.5, true}, {"fields", 1, true}, {"entities", 2, true},
		{"named entity", 2, false}, {"key points", 1.5, false}, {"bullet points", 1, false},
		{"in one sentence", 1.5, false}, {"in one word", 1.5, false}, {"words or less", 1.5, false},
		{"reformat", 1.5, true}, {"normalize", 1, true}, {"table", 0.5, true}, {"tag", 1, true},
		{"keywords", 1.5, true}, {"spam", 1, true}, {"detect the language", 2, false}, {"condense", 1.5, true},
		{"schema", 1, true}, {"yes or no", 1, false}, {"only output", 1.5, false}, {"respond only with", 1.5, false},
		{"return only", 1.5, false}, {"the following text", 1, false}, {"this text", 0.5, false},
		{"email address", 1, false}, {"phone number", 1, false}, {"dates", 1, true}, {"invoice", 1, true}, {"toxicity", 1.5, true}, {"rate the", 1, false}, {"comma-separated", 1.5, false},
		{"list only", 1, false},
	},
	// creative
	{
		{"story", 2, false}, {"poem", 2, false}, {"lyrics", 2, true}, {"song", 1.5, true}, {"haiku", 2, true},
		{"limerick", 2, true}, {"sonnet", 2, true}, {"imagine", 1.5, true}, {"fiction", 1.5, false},
		{"fantasy", 1, true}, {"character", 1, true}, {"screenplay", 2, true}, {"script for a", 1, false},
		{"slogan", 2, true}, {"tagline", 2, true}, {"creative", 1.5, true}, {"rhyme", 2, false},
		{"verse", 1, true}, {"novel", 1, true}, {"fairy tale", 2, false}, {"bedtime", 1.5, true},
		{"once upon", 2, false}, {"plot", 1, true}, {"dialogue", 1, true}, {"villain", 1.5, true},
		{"dragon", 1, true}, {"brainstorm", 1.5, true}, {"names for", 1, false}, {"toast", 1, true},
		{"wedding speech", 2, false}, {"joke", 1.5, false}, {"pun", 1, false}, {"fable", 2, true},
		{"narrative", 1, true}, {"world-building", 2, false}, {"worldbuilding", 2, true}, {"metaphor", 1, true},
		{"write a scene", 2, false}, {"birthday message", 1.5, false}, {"ad copy", 1.5, false}, {"blog post", 1, false}, {"rap", 1.5, true}, {"love letter", 2, false}, {"invent", 1, false},
		{"tribute", 1.5, true}, {"eulogy", 2, true}, {"myth", 2, false}, {"comedy", 1.5, true}, {"sketch", 1, true},
	},
}

// hit is one signal that contributed to a class score.
type hit struct {
	class  int
	signal string
	score  float64
}

// classify scores text, the lowercased head and tail of the message text
// (scratch.lower), and the structural features.
func (c *Classifier) classify(text []byte, f *Features) (Class, []string) {
	var scores [4]float64
	var hits [32]hit
	nh := 0
	add := func(class int, signal string, s float64) {
		if s <= 0 {
			return
		}
		scores[class] += s
		if nh < len(hits) {
			hits[nh] = hit{class, signal, s}
			nh++
		}
	}
	if n := bytes.Count(text, []byte("```")); n > 0 {
		add(0, "code:fence", c.cfg.FenceWeight*float64(min((n+1)/2, c.cfg.MaxHitsPerKeyword)))
	}
	var countsBuf [384]int32
	var counts []int32
	if c.nkw <= len(countsBuf) {
		counts = countsBuf[:c.nkw]
	} else {
		counts = make([]int32, c.nkw)
	}
	c.scan(text, counts)
	slot := 0
	for class, table := range c.tables {
		for _, k := range table {
			n := int(counts[slot])
			if c.slots[slot].search {
				n = count(text, k.s, k.word, c.cfg.MaxHitsPerKeyword)
			}
			if n > 0 {
				add(class, c.slots[slot].signal, k.weight*c.cfg.KeywordWeight*float64(n))
			}
			slot++
		}
	}
	if f.ResponseFormat != "" {
		add(2, "extraction:response_format", c.cfg.ResponseFormatWeight)
	}
	if f.Tools {
		add(2, "extraction:tools", c.cfg.ToolsWeight)
	}
	if f.EstimatedInputTokens >= c.cfg.LongInputTokens {
		add(1, "reasoning:long_input", c.cfg.LongInputWeight)
	}

	mins := [4]float64{c.cfg.CodeMinScore, c.cfg.ReasoningMinScore, c.cfg.ExtractionMinScore, c.cfg.CreativeMinScore}
	best := -1
	for i := range scores {
		if scores[i] >= mins[i] && (best < 0 || scores[i] > scores[best]) {
			best = i
		}
	}
	if best < 0 {
		return ClassChat, []string{"chat:no_class_reached_threshold"}
	}
	// Strongest hits of the winning class first, bounded.
	sig := make([]string, 0, MaxSignals)
	for len(sig) < MaxSignals {
		top := -1
		for i := 0; i < nh; i++ {
			if hits[i].class == best && hits[i].score > 0 && (top < 0 || hits[i].score > hits[top].score) {
				top = i
			}
		}
		if top < 0 {
			break
		}
		sig = append(sig, hits[top].signal)
		hits[top].score = 0
	}
	return Classes[best], sig
}

// count counts occurrences of kw in text, up to limit. With word set, a match
// must not touch a letter, digit or underscore on a side where kw itself ends
// in one (so ".py" matches in "main.py" but "class" does not in "classify").
// A match that fails that test still hides the occurrences it overlaps.
func count(text []byte, kw string, word bool, limit int) int {
	n := 0
	for off := 0; n < limit; {
		i := bytes.Index(text[off:], []byte(kw))
		if i < 0 {
			break
		}
		i += off
		end := i + len(kw)
		off = end
		if word && touches(text, i, end, kw) {
			continue
		}
		n++
	}
	return n
}

// touches reports whether the match text[i:end] of kw has a word byte on a
// side where kw ends in one.
func touches(text []byte, i, end int, kw string) bool {
	return i > 0 && wordByte(kw[0]) && wordByte(text[i-1]) ||
		end < len(text) && wordByte(kw[len(kw)-1]) && wordByte(text[end])
}

// scan counts the keyword hits in text, by slot, in one pass: single-word
// keywords where a whole word equals them, other word keywords at word
// starts (with count's trailing boundary rule), both up to
// MaxHitsPerKeyword but at most 255 times, and symbols anywhere, up to
// MaxHitsPerKeyword, exactly as count finds them.
func (c *Classifier) scan(text []byte, counts []int32) {
	wordLimit := int32(min(c.cfg.MaxHitsPerKeyword, 255))
	symLimit := int32(min(c.cfg.MaxHitsPerKeyword, math.MaxInt32))
	// next holds, by symbol, where its next match may start: like count,
	// a match hides the occurrences it overlaps, even one that failed the
	// boundary test.
	var nextBuf [32]int
	var next []int
	if c.nsym <= len(nextBuf) {
		next = nextBuf[:c.nsym]
	} else {
		next = make([]int, c.nsym)
	}
	mask := uint32(len(c.table) - 1)
	for i := 0; i < len(text); {
		switch kind := c.kinds[text[i]]; kind {
		case kindPlain:
			i++
		case kindWord: // a word starts
			j := i + 1
			for j < len(text) && c.kinds[text[j]] == kindWord {
				j++
			}
			key := headKey(text[i:j])
			for h := c.cell(key); c.table[h] != 0; h = (h + 1) & mask {
				if uint32(c.table[h]>>32) != key {
					continue
				}
				hd := &c.heads[uint32(c.table[h])-1]
				for _, w := range hd.words {
					if w.k.s == string(text[i:j]) && counts[w.slot] < wordLimit {
						counts[w.slot]++
					}
				}
				// (A word shorter than three bytes has no prefixes: its
				// key matches no three-byte one.)
				for _, p := range hd.prefixes {
					end := i + len(p.k.s)
					if counts[p.slot] < wordLimit && end <= len(text) && string(text[i:end]) == p.k.s &&
						!(p.k.word && end < len(text) && wordByte(p.k.s[len(p.k.s)-1]) && wordByte(text[end])) {
						counts[p.slot]++
					}
				}
				break
			}
			i = j
		default: // kindAnchor and up
			// A symbol is tried once for each place it could start, in
			// order, so this finds what count's successive searches find.
			a := &c.anchors[kind-kindAnchor]
			if i > 0 && !a.before.has(text[i-1]) || i+1 < len(text) && !a.after.has(text[i+1]) {
				i++
				continue
			}
			syms := a.syms
			for k := range syms {
				s := &syms[k]
				start := i - s.at
				end := start + len(s.k.s)
				if end > len(text) || start < next[s.id] || text[end-1] != s.k.s[len(s.k.s)-1] ||
					counts[s.slot] >= symLimit || string(text[start:end]) != s.k.s {
					continue
				}
				next[s.id] = end
				if !s.k.word || !touches(text, start, end, s.k.s) {
					counts[s.slot]++
				}
			}
			i++
		}
	}
}

// isWord reports whether s is made only of word bytes.
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if !wordByte(s[i]) {
			return false
		}
	}
	return s != ""
}

func wordByte(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || b >= 0x80
}
