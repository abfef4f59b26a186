package semantic

import (
	"strings"
	"unicode"
)

// StandIn is a deterministic stand-in for an embedding model, for tests and
// the fake providers: a bag of hashed features of text in dims numbers
// (signed feature hashing, FNV-1a), each an integer count, not normalized.
// The features are the character trigrams of the case-folded text with
// punctuation dropped and spaces collapsed (padded with a space at each
// end), and each word once more.
//
// What it can do: texts that share most of their characters get a high
// cosine — a changed case, punctuation, a typo, a contraction, a reordered
// clause, a politeness word added. What it cannot do: it knows no
// synonyms ("buy" and "purchase" share nothing), no languages (a
// translation shares almost nothing, which is the right answer here by
// accident), and no meaning: "refund in 30 days" and "refund in 60 days"
// score as near as any paraphrase. It is no model; the guard, not the
// embedding, keeps such pairs apart.
func StandIn(text string, dims int) []float32 {
	if dims <= 0 {
		dims = 256
	}
	out := make([]float32, dims)
	var b strings.Builder
	b.WriteByte(' ')
	space := true
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r) || unicode.IsNumber(r):
			b.WriteRune(r)
			space = false
		case !space:
			b.WriteByte(' ')
			space = true
		}
	}
	if !space {
		b.WriteByte(' ')
	}
	s := []rune(b.String())
	add := func(feature []rune, salt uint64) {
		h := uint64(14695981039346656037) ^ salt
		for _, r := range feature {
			h ^= uint64(r)
			h *= 1099511628211
		}
		i := int(h % uint64(dims))
		if h>>63 == 0 {
			out[i]++
		} else {
			out[i]--
		}
	}
	for i := 0; i+3 <= len(s); i++ {
		add(s[i:i+3], 0)
	}
	start := -1
	for i, r := range s {
		switch {
		case r != ' ' && start < 0:
			start = i
		case r == ' ' && start >= 0:
			add(s[start:i], 0x9e3779b97f4a7c15)
			start = -1
		}
	}
	return out
}
