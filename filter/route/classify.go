package route

import (
	"bytes"
	"slices"
	"strings"
)

// ClassifierConfig holds the classifier's weights and thresholds. A zero
// field takes its default (see DefaultClassifierConfig); a negative weight
// disables that signal.
type ClassifierConfig struct {
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
	cfg ClassifierConfig
	// One pass over the words of the text counts most keywords: words maps
	// each single-word keyword to its slot; prefixes maps the first three
	// bytes of every other keyword that starts with three word bytes to the
	// keywords to try at a word start. The rest (symbols) are searched.
	words    map[string]int
	prefixes map[string][]prefixKW
	scanned  []bool       // by slot: counted by searching the whole text
	nkw      int          // keyword slots, one per entry of the keyword tables
	tables   [4][]keyword // the built-in keywords plus ClassifierConfig.Keywords
}

// prefixKW is a keyword matched at word starts.
type prefixKW struct {
	slot int
	k    keyword
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
	cl := &Classifier{cfg: c, words: map[string]int{}, prefixes: map[string][]prefixKW{}}
	for i, table := range keywords {
		cl.tables[i] = slices.Clone(table)
		for _, s := range c.Keywords[Classes[i]] {
			if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
				cl.tables[i] = append(cl.tables[i], keyword{s, 1, true})
			}
		}
	}
	for _, table := range cl.tables {
		for _, k := range table {
			switch {
			case k.word && isWord(k.s):
				cl.words[k.s] = cl.nkw
				cl.scanned = append(cl.scanned, false)
			case len(k.s) >= 3 && isWord(k.s[:3]):
				cl.prefixes[k.s[:3]] = append(cl.prefixes[k.s[:3]], prefixKW{cl.nkw, k})
				cl.scanned = append(cl.scanned, false)
			default:
				cl.scanned = append(cl.scanned, true)
			}
			cl.nkw++
		}
	}
	return cl
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
	class int
	name  string
	score float64
}

// classify scores text, the lowercased head and tail of the message text
// (scratch.lower), and the structural features.
func (c *Classifier) classify(text []byte, f *Features) (Class, []string) {
	var scores [4]float64
	var hits [32]hit
	nh := 0
	add := func(class int, name string, s float64) {
		if s <= 0 {
			return
		}
		scores[class] += s
		if nh < len(hits) {
			hits[nh] = hit{class, name, s}
			nh++
		}
	}
	if n := bytes.Count(text, []byte("```")); n > 0 {
		add(0, "fence", c.cfg.FenceWeight*float64(min((n+1)/2, c.cfg.MaxHitsPerKeyword)))
	}
	counts := c.countWords(text)
	slot := 0
	for class, table := range c.tables {
		for _, k := range table {
			n := int(counts[slot])
			if c.scanned[slot] {
				n = count(text, k.s, k.word, c.cfg.MaxHitsPerKeyword)
			}
			slot++
			if n > 0 {
				add(class, k.s, k.weight*c.cfg.KeywordWeight*float64(n))
			}
		}
	}
	if f.ResponseFormat != "" {
		add(2, "response_format", c.cfg.ResponseFormatWeight)
	}
	if f.Tools {
		add(2, "tools", c.cfg.ToolsWeight)
	}
	if f.EstimatedInputTokens >= c.cfg.LongInputTokens {
		add(1, "long_input", c.cfg.LongInputWeight)
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
		sig = append(sig, string(Classes[best])+":"+hits[top].name)
		hits[top].score = 0
	}
	return Classes[best], sig
}

// count counts occurrences of kw in text, up to limit. With word set, a match
// must not touch a letter, digit or underscore on a side where kw itself ends
// in one (so ".py" matches in "main.py" but "class" does not in "classify").
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
		if word && ((i > 0 && wordByte(kw[0]) && wordByte(text[i-1])) ||
			(end < len(text) && wordByte(kw[len(kw)-1]) && wordByte(text[end]))) {
			continue
		}
		n++
	}
	return n
}

// countWords counts, per keyword slot, the keywords found at word starts:
// single-word keywords as whole words, the others as prefixes (with the
// trailing boundary rule of count), each up to MaxHitsPerKeyword.
func (c *Classifier) countWords(text []byte) []uint8 {
	counts := make([]uint8, c.nkw)
	limit := uint8(min(c.cfg.MaxHitsPerKeyword, 255))
	for i := 0; i < len(text); {
		if !wordByte(text[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(text) && wordByte(text[j]) {
			j++
		}
		if slot, ok := c.words[string(text[i:j])]; ok && counts[slot] < limit {
			counts[slot]++
		}
		if i+3 <= len(text) {
			for _, p := range c.prefixes[string(text[i:i+3])] {
				end := i + len(p.k.s)
				if counts[p.slot] < limit && bytes.HasPrefix(text[i:], []byte(p.k.s)) &&
					!(p.k.word && end < len(text) && wordByte(p.k.s[len(p.k.s)-1]) && wordByte(text[end])) {
					counts[p.slot]++
				}
			}
		}
		i = j
	}
	return counts
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
