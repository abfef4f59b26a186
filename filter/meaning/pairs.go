package meaning

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Pair is one labelled pair of the precision set (testdata/pairs.jsonl,
// written by testdata/pairgen): two latest user turns, Same when an answer to
// one is a correct answer to the other.
type Pair struct {
	A    string `json:"a"`
	B    string `json:"b"`
	Same bool   `json:"same"`
	Lang string `json:"lang"`
	Kind string `json:"kind"`
}

// LoadPairs reads a pair set in JSON lines.
func LoadPairs(path string) ([]Pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadPairs(f)
}

// ReadPairs reads pairs in JSON lines; every line must be a pair.
func ReadPairs(r io.Reader) ([]Pair, error) {
	var out []Pair
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var p Pair
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if p.A == "" || p.B == "" || p.Lang == "" || p.Kind == "" {
			return nil, fmt.Errorf("line %d: a, b, lang and kind are required", n)
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

// Stats counts one matcher's answers on labelled pairs.
type Stats struct {
	Hits, WrongHits, SamePairs, Pairs int
}

// Precision is the share of hits that were right (1 with no hits).
func (s Stats) Precision() float64 {
	if s.Hits == 0 {
		return 1
	}
	return float64(s.Hits-s.WrongHits) / float64(s.Hits)
}

// Recall is the share of same-meaning pairs that hit (1 with none).
func (s Stats) Recall() float64 {
	if s.SamePairs == 0 {
		return 1
	}
	return float64(s.Hits-s.WrongHits) / float64(s.SamePairs)
}

// Score runs match over pairs: per language and overall ("all"), plus the
// pairs it got wrong (a hit on a different-meaning pair).
func Score(pairs []Pair, match func(a, b string) bool) (byLang map[string]Stats, wrong []Pair) {
	byLang = map[string]Stats{}
	for _, p := range pairs {
		hit := match(p.A, p.B)
		for _, l := range []string{p.Lang, "all"} {
			s := byLang[l]
			s.Pairs++
			if p.Same {
				s.SamePairs++
			}
			if hit {
				s.Hits++
				if !p.Same {
					s.WrongHits++
				}
			}
			byLang[l] = s
		}
		if hit && !p.Same {
			wrong = append(wrong, p)
		}
	}
	return byLang, wrong
}

// Table formats per-language stats of named matchers as a text table.
func Table(tiers []string, stats []map[string]Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-5s %6s %6s %5s %10s %7s\n", "tier", "lang", "pairs", "same", "hits", "precision", "recall")
	for i, tier := range tiers {
		langs := make([]string, 0, len(stats[i]))
		for l := range stats[i] {
			if l != "all" {
				langs = append(langs, l)
			}
		}
		slices.Sort(langs)
		for _, l := range append(langs, "all") {
			s := stats[i][l]
			fmt.Fprintf(&b, "%-12s %-5s %6d %6d %5d %9.1f%% %6.1f%%\n", tier, l, s.Pairs, s.SamePairs, s.Hits, 100*s.Precision(), 100*s.Recall())
		}
	}
	return b.String()
}
