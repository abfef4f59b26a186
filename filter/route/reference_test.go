package route

// This file keeps the classifier and the features pass as they were before
// they were optimised (commit 74be072, renamed with a ref prefix), as the
// reference that FuzzSameFeatures and TestSameFeatures hold the current code
// to: the optimisations must not change a single result.

import (
	"bytes"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
)

func (c *refClassifier) features(body []byte) Features {
	var f Features
	root := gjson.ParseBytes(body)
	var text refScratch
	chars := 0
	toolBytes := 0
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			f.Model = v.String()
		case "user":
			f.User = v.String()
		case "metadata":
			if f.User == "" {
				f.User = v.Get("user_id").String()
			}
		case "system":
			// Anthropic's Messages API keeps the system prompt out of messages.
			system := func(s string) {
				n, units := refMeasure(s)
				chars += units
				f.SystemChars += n
				text.add(s)
			}
			if v.Type == gjson.String {
				system(v.Str)
			} else if v.IsArray() {
				v.ForEach(func(_, p gjson.Result) bool {
					system(p.Get("text").String())
					return true
				})
			}
		case "stream":
			f.Stream = v.Type == gjson.True
		case "max_tokens":
			if f.MaxTokens == 0 {
				f.MaxTokens = int(v.Int())
			}
		case "max_completion_tokens":
			if n := int(v.Int()); n > 0 {
				f.MaxTokens = n
			}
		case "response_format":
			switch t := v.Get("type").Str; t {
			case "json_object", "json_schema":
				f.ResponseFormat = t
			}
		case "tools", "functions":
			if v.IsArray() && len(v.Raw) > 2 && v.Get("#").Int() > 0 {
				f.Tools = true
				toolBytes += len(v.Raw)
			}
		case "messages":
			if !v.IsArray() {
				return true
			}
			v.ForEach(func(_, m gjson.Result) bool {
				f.Messages++
				var role string
				var content gjson.Result
				m.ForEach(func(k, v gjson.Result) bool {
					switch k.Str {
					case "role":
						role = v.Str
					case "content":
						content = v
					}
					return true
				})
				system := role == "system" || role == "developer"
				keep := system || role == "user" || role == ""
				addText := func(s string) {
					n, units := refMeasure(s)
					chars += units
					if system {
						f.SystemChars += n
					}
					if keep {
						text.add(s)
					}
				}
				switch {
				case content.Type == gjson.String:
					addText(content.Str)
				case content.IsArray():
					content.ForEach(func(_, p gjson.Result) bool {
						switch p.Get("type").Str {
						case "text", "input_text":
							addText(p.Get("text").String())
						case "image_url", "input_image", "image":
							f.Images = true
						}
						return true
					})
				}
				return true
			})
		}
		return true
	})
	f.EstimatedInputTokens = (chars + toolBytes + 3) / 4
	f.Class, f.Signals = c.classify(text.lower(c.cfg.MaxClassifyBytes), &f)
	f.Confidence = 1
	return f
}

// measure returns a text's characters (code points) and its quarter-tokens:
// one per character, plus two for each character of a CJK script (kana, CJK
// ideographs, Hangul: U+3000–U+D7FF, whose UTF-8 lead bytes are 0xE3–0xED;
// BPE takes about 0.7 tokens for one), plus one for each digit (numbers split
// into groups of up to three digits, and their separators are tokens of their
// own: about half a token a digit). One pass over the bytes.
func refMeasure(s string) (chars, units int) {
	wide, digits := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c&0xC0 != 0x80 { // not a continuation byte: a character starts
			chars++
		}
		switch {
		case c >= 0xE3 && c <= 0xED:
			wide++
		case c >= '0' && c <= '9':
			digits++
		}
	}
	return chars, chars + 2*wide + digits
}

// refScratch collects the message texts the classifier reads, without copying
// them, and lowers only the part it will scan.
type refScratch struct {
	parts []string
	n     int // bytes of the texts joined with newlines
}

func (s *refScratch) add(t string) {
	if len(s.parts) > 0 {
		s.n++
	}
	s.parts = append(s.parts, t)
	s.n += len(t)
}

// lower returns the texts joined with newlines and lowercased (ASCII). When
// they are longer than max bytes, it returns the first max/2 bytes, a
// newline and the last max/2 bytes: instructions usually sit at either end,
// and the classifier's cost stays bounded on big bodies.
func (s *refScratch) lower(max int) []byte {
	if s.n <= max {
		return s.appendRange(make([]byte, 0, s.n), 0, s.n)
	}
	b := make([]byte, 0, max+1)
	b = s.appendRange(b, 0, max/2)
	b = append(b, '\n')
	return s.appendRange(b, s.n-max/2, s.n)
}

// appendRange appends bytes [from, to) of the joined text, lowercased.
func (s *refScratch) appendRange(b []byte, from, to int) []byte {
	pos := 0 // offset of the current part in the joined text
	for i, t := range s.parts {
		if i > 0 {
			if pos >= from && pos < to {
				b = append(b, '\n')
			}
			pos++
		}
		lo, hi := max(from-pos, 0), min(to-pos, len(t))
		for j := lo; j < hi; j++ {
			ch := t[j]
			if 'A' <= ch && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			b = append(b, ch)
		}
		pos += len(t)
		if pos >= to {
			break
		}
	}
	return b
}

// refClassifier is Classifier as it was.
type refClassifier struct {
	cfg ClassifierConfig
	// One pass over the words of the text counts most keywords: words maps
	// each single-word keyword to its slot; prefixes maps the first three
	// bytes of every other keyword that starts with three word bytes to the
	// keywords to try at a word start. The rest (symbols) are searched.
	words    map[string]int
	prefixes map[string][]refPrefixKW
	scanned  []bool       // by slot: counted by searching the whole text
	nkw      int          // keyword slots, one per entry of the keyword tables
	tables   [4][]keyword // the built-in keywords plus ClassifierConfig.Keywords
}

// refPrefixKW is a keyword matched at word starts.
type refPrefixKW struct {
	slot int
	k    keyword
}

// newRefClassifier returns a refClassifier; zero fields of c take their defaults.
func newRefClassifier(c ClassifierConfig) *refClassifier {
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
	cl := &refClassifier{cfg: c, words: map[string]int{}, prefixes: map[string][]refPrefixKW{}}
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
			case k.word && refIsWord(k.s):
				cl.words[k.s] = cl.nkw
				cl.scanned = append(cl.scanned, false)
			case len(k.s) >= 3 && refIsWord(k.s[:3]):
				cl.prefixes[k.s[:3]] = append(cl.prefixes[k.s[:3]], refPrefixKW{cl.nkw, k})
				cl.scanned = append(cl.scanned, false)
			default:
				cl.scanned = append(cl.scanned, true)
			}
			cl.nkw++
		}
	}
	return cl
}

// refHit is one signal that contributed to a class score.
type refHit struct {
	class int
	name  string
	score float64
}

// classify scores text, the lowercased head and tail of the message text
// (refScratch.lower), and the structural features.
func (c *refClassifier) classify(text []byte, f *Features) (Class, []string) {
	var scores [4]float64
	var hits [32]refHit
	nh := 0
	add := func(class int, name string, s float64) {
		if s <= 0 {
			return
		}
		scores[class] += s
		if nh < len(hits) {
			hits[nh] = refHit{class, name, s}
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
				n = refCount(text, k.s, k.word, c.cfg.MaxHitsPerKeyword)
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
func refCount(text []byte, kw string, word bool, limit int) int {
	n := 0
	for off := 0; n < limit; {
		i := bytes.Index(text[off:], []byte(kw))
		if i < 0 {
			break
		}
		i += off
		end := i + len(kw)
		off = end
		if word && ((i > 0 && refWordByte(kw[0]) && refWordByte(text[i-1])) ||
			(end < len(text) && refWordByte(kw[len(kw)-1]) && refWordByte(text[end]))) {
			continue
		}
		n++
	}
	return n
}

// countWords counts, per keyword slot, the keywords found at word starts:
// single-word keywords as whole words, the others as prefixes (with the
// trailing boundary rule of count), each up to MaxHitsPerKeyword.
func (c *refClassifier) countWords(text []byte) []uint8 {
	counts := make([]uint8, c.nkw)
	limit := uint8(min(c.cfg.MaxHitsPerKeyword, 255))
	for i := 0; i < len(text); {
		if !refWordByte(text[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(text) && refWordByte(text[j]) {
			j++
		}
		if slot, ok := c.words[string(text[i:j])]; ok && counts[slot] < limit {
			counts[slot]++
		}
		if i+3 <= len(text) {
			for _, p := range c.prefixes[string(text[i:i+3])] {
				end := i + len(p.k.s)
				if counts[p.slot] < limit && bytes.HasPrefix(text[i:], []byte(p.k.s)) &&
					!(p.k.word && end < len(text) && refWordByte(p.k.s[len(p.k.s)-1]) && refWordByte(text[end])) {
					counts[p.slot]++
				}
			}
		}
		i = j
	}
	return counts
}

func refIsWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if !refWordByte(s[i]) {
			return false
		}
	}
	return s != ""
}

func refWordByte(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || b >= 0x80
}
