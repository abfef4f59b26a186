// Command pairgen writes the labelled pair set (testdata/pairs.jsonl) that
// the cache tiers' precision test scores: pairs of latest user turns, each
// labelled same (an answer to one is a correct answer to the other) or not.
// Pairs are made by construction, so each label is known: a base question per
// template and language, then variants that keep its meaning (casing,
// punctuation, whitespace, politeness, fillers, contractions, a typo, a
// hand-written paraphrase or reordering) and variants that change it on
// purpose (one number, a negation, the entity, the unit, before/after, a
// comparison, the same question in another language), plus hand-written
// adversarial pairs. It is deterministic:
//
//	go run ./filter/meaning/testdata/pairgen
//
// rewrites the same file (TestPairsReproducible checks it).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/llmproc/llmproc/filter/meaning"
)

// Pair is one line of pairs.jsonl, as the precision test reads it.
type Pair = meaning.Pair

// tmpl is a question with slots {num} {ent} {unit} {cmp} {when}; neg is the
// same question negated, para a paraphrase, reorder the same words in
// another order (both with the same slots).
type tmpl struct {
	base, neg, para, reorder string
	num                      int
	units, cmp, when         [2]string
}

type language struct {
	code                  string
	greet, thanks, please string // "Hi, ", ", thanks", "Please " (with their spacing)
	filler                string // a hesitation prefix, "" when none
	cased                 bool   // the script has letter case
	ents                  []string
	tmpls                 []tmpl
	fixed                 []Pair // hand-written pairs
}

func fill(s string, t tmpl, num int, ent, unit, cmp, when string) string {
	return strings.NewReplacer("{num}", strconv.Itoa(num), "{ent}", ent, "{unit}", unit, "{cmp}", cmp, "{when}", when).Replace(s)
}

// typo swaps two letters in the middle of the longest word.
func typo(s string) string {
	words := strings.Fields(s)
	best := -1
	for i, w := range words {
		if utf8.RuneCountInString(w) >= 5 && (best < 0 || utf8.RuneCountInString(w) > utf8.RuneCountInString(words[best])) {
			if r, _ := utf8.DecodeRuneInString(w); !unicode.IsUpper(r) {
				best = i
			}
		}
	}
	if best < 0 {
		r := []rune(s)
		if len(r) < 4 {
			return s + s
		}
		k := len(r) / 2
		r[k], r[k+1] = r[k+1], r[k]
		return string(r)
	}
	r := []rune(words[best])
	k := len(r) / 2
	for k < len(r)-1 && r[k-1] == r[k] { // a swap must change the word
		k++
	}
	r[k-1], r[k] = r[k], r[k-1]
	words[best] = string(r)
	return strings.Join(words, " ")
}

// lowerFirst lowercases the first letter ("¿Cuál" → "¿cuál").
func lowerFirst(s string) string {
	for i, r := range s {
		if unicode.IsLetter(r) {
			return s[:i] + string(unicode.ToLower(r)) + s[i+utf8.RuneLen(r):]
		}
	}
	return s
}

func main() {
	out := flag.String("o", "filter/meaning/testdata/pairs.jsonl", "output file")
	flag.Parse()
	var pairs []Pair
	add := func(a, b string, same bool, lang, kind string) {
		if a == b {
			panic(fmt.Sprintf("%s %s: identical pair %q", lang, kind, a))
		}
		pairs = append(pairs, Pair{A: a, B: b, Same: same, Lang: lang, Kind: kind})
	}
	for li, l := range languages {
		for ti, t := range l.tmpls {
			ent, ent2 := l.ents[ti%len(l.ents)], l.ents[(ti+1)%len(l.ents)]
			f := func(s string) string { return fill(s, t, t.num, ent, t.units[0], t.cmp[0], t.when[0]) }
			base := f(t.base)
			// Same meaning.
			if l.cased {
				add(base, lowerFirst(base), true, l.code, "casing")
				add(base, strings.ToUpper(base), true, l.code, "casing")
				add(base, strings.ToLower(base), true, l.code, "casing")
			}
			trimmed := strings.TrimRight(base, "?？")
			add(base, trimmed, true, l.code, "punctuation")
			add(base, trimmed+"!?", true, l.code, "punctuation")
			add(base, "  "+strings.ReplaceAll(base, " ", "  ")+"\n", true, l.code, "whitespace")
			if strings.Contains(base, " ") {
				add(base, strings.Replace(base, " ", "\t", 1), true, l.code, "whitespace")
			} else {
				add(base, " "+base+" ", true, l.code, "whitespace")
			}
			add(base, l.greet+lowerIf(l.cased, base), true, l.code, "politeness")
			add(base, l.please+lowerIf(l.cased, base), true, l.code, "politeness")
			add(base, trimmed+l.thanks, true, l.code, "politeness")
			if l.filler != "" {
				add(base, l.filler+lowerIf(l.cased, base), true, l.code, "filler")
			}
			add(base, typo(base), true, l.code, "typo")
			if t.para != "" {
				add(base, f(t.para), true, l.code, "paraphrase")
			}
			if t.reorder != "" {
				add(base, f(t.reorder), true, l.code, "reordering")
			}
			// Different meaning.
			add(base, fill(t.base, t, t.num+1, ent, t.units[0], t.cmp[0], t.when[0]), false, l.code, "number")
			add(base, fill(t.base, t, t.num*10, ent, t.units[0], t.cmp[0], t.when[0]), false, l.code, "number")
			if strings.Contains(t.base, "{ent}") {
				add(base, fill(t.base, t, t.num, ent2, t.units[0], t.cmp[0], t.when[0]), false, l.code, "entity")
			}
			if t.neg != "" {
				add(base, f(t.neg), false, l.code, "negation")
			}
			if t.units[1] != "" {
				add(base, fill(t.base, t, t.num, ent, t.units[1], t.cmp[0], t.when[0]), false, l.code, "unit")
			}
			if t.cmp[1] != "" {
				add(base, fill(t.base, t, t.num, ent, t.units[0], t.cmp[1], t.when[0]), false, l.code, "comparison")
			}
			if t.when[1] != "" {
				add(base, fill(t.base, t, t.num, ent, t.units[0], t.cmp[0], t.when[1]), false, l.code, "before_after")
			}
			// The same question in the next language: a different request.
			o := languages[(li+1)%len(languages)]
			if ti < len(o.tmpls) {
				ot := o.tmpls[ti]
				oent := o.ents[ti%len(o.ents)]
				add(base, fill(ot.base, ot, ot.num, oent, ot.units[0], ot.cmp[0], ot.when[0]), false, l.code, "other_language")
			}
		}
		for _, p := range l.fixed {
			if p.Lang == "" {
				p.Lang = l.code
			}
			add(p.A, p.B, p.Same, p.Lang, p.Kind)
		}
	}
	var b strings.Builder
	for _, p := range pairs {
		line, err := json.Marshal(p)
		if err != nil {
			panic(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "pairgen: %d pairs in %s\n", len(pairs), *out)
}

func lowerIf(cased bool, s string) string {
	if cased {
		return lowerFirst(s)
	}
	return s
}
