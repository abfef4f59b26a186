package meaning

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"What is your refund policy?", "what is your refund policy"},
		{"what's your refund policy", "what is your refund policy"},
		{"Hi, what is your refund policy, please?", "what is your refund policy"},
		{"Could you please tell me your refund policy? Thanks!", "could you tell me your refund policy"},
		{"WHAT IS YOUR REFUND POLICY", "what is your refund policy"},
		{"  what   is your\trefund policy!!\n", "what is your refund policy"},
		{"I don't like it", "i do not like it"},
		{"Is Paris bigger than London?", "is Paris bigger than London"},               // names kept as typed
		{"What does Apple sell?", "what does Apple sell"},                             // not "apple"
		{"What is 3²?", "what is 3²"},                                                 // not 32
		{"What is ５０?", "what is 50"},                                                 // NFKC
		{"hello in French?", "hello in French"},                                       // a greeting that is content
		{"Hi", "hi"},                                                                  // nothing left: nothing removed
		{"Translate 'Hello  World' to German.", "translate 'Hello  World' to German"}, // quoted: verbatim
		{"Explain `X  = 1`!", "explain `X  = 1`"},
		{"x = 1\n    y()  \n", "x = 1\n    y()"}, // code: as typed
		{"Count the lines:\na\nb", "Count the lines\na\nb"},
		{"Visit https://example.com/A.", "Visit https://example.com/A."},
		{"Um 5 Uhr, bitte", "um 5 Uhr"},
		{"请问你们的退款政策是什么？", "你们的退款政策是什么"},
		{"¿Cuál es su política?", "cuál es su política"},
		{"L'heure d'ouverture ?", "l'heure d'ouverture"},
		{"", ""},
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestListsDisjoint: no filler is a meaning-bearing word.
func TestListsDisjoint(t *testing.T) {
	meaningful := []map[string]bool{negations, comparisons, units, numberWords}
	fillers := []map[string]bool{greetings, thanks, politeness, modals}
	for _, h := range hesitations {
		fillers = append(fillers, h)
	}
	for _, f := range fillers {
		for w := range f {
			for _, m := range meaningful {
				if m[w] {
					t.Errorf("%q is both a filler and meaning-bearing", w)
				}
			}
		}
	}
}

func numbers(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsNumber(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// FuzzNormalize: Normalize never panics, is idempotent, returns valid
// UTF-8 and keeps every number (after NFKC) in order.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"What is your refund policy?", "Hi, 3² is 9, thanks!", "Can't `x`", "'a' \"b\" «c» ```d", "x = 1\n  y", "WHAT IS IT", "请问5天", "n't", "Please please", "Um, um"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		n := Normalize(s)
		if !utf8.ValidString(n) {
			t.Fatalf("Normalize(%q) = %q: invalid UTF-8", s, n)
		}
		if n2 := Normalize(n); n2 != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, n2)
		}
		if numbers(n) != numbers(nfkc(s)) {
			t.Fatalf("Normalize(%q) = %q lost or changed a number", s, n)
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	turn := strings.Repeat("Hi, what's your refund policy for orders over 50 dollars, please? ", 5)
	b.ReportAllocs()
	b.SetBytes(int64(len(turn)))
	for b.Loop() {
		Normalize(turn)
	}
}
