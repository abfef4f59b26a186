package meaning

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func loadSet(t *testing.T) []Pair {
	t.Helper()
	pairs, err := LoadPairs("testdata/pairs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	langs := map[string]bool{}
	for _, p := range pairs {
		langs[p.Lang] = true
	}
	if len(pairs) < 600 || len(langs) < 6 {
		t.Fatalf("the pair set has %d pairs in %d languages; the issue asks for at least 600 in 6", len(pairs), len(langs))
	}
	return pairs
}

// TestPrecision scores the normalizer (two turns hit when they normalize to
// the same text: the normalized cache tier, everything else in the request
// equal) and the meaning guard alone (an upper bound on what any tier that
// must pass it can hit) on the labelled set. The normalized tier must never
// hit a pair of different meaning.
func TestPrecision(t *testing.T) {
	pairs := loadSet(t)
	norm, wrong := Score(pairs, func(a, b string) bool { return Normalize(a) == Normalize(b) })
	guard, _ := Score(pairs, SameMeaningTokens)
	t.Logf("\n%s", Table([]string{"normalized", "guard"}, []map[string]Stats{norm, guard}))
	for _, p := range wrong {
		t.Errorf("normalized tier hit a pair of different meaning (%s, %s): %q and %q both normalize to %q", p.Lang, p.Kind, p.A, p.B, Normalize(p.A))
	}
	if norm["all"].Precision() < 1 {
		t.Errorf("normalized tier precision %.2f%%, want 100%%", 100*norm["all"].Precision())
	}
}

// guarded are the kinds of difference the guard exists to catch; a swapped
// lowercase word ("refund" for "return": kind word) or a greeting that is the
// content (filler_as_content) are left to the similarity threshold and the
// normalized tier's exactness.
var guarded = map[string]bool{"number": true, "negation": true, "entity": true, "unit": true, "comparison": true,
	"before_after": true, "quoted": true, "code": true, "url": true, "whitespace": true, "other_language": true}

// TestGuardRejectsDifferentMeaning: every pair made different on purpose by
// a meaning-bearing token (a number, a negation, an entity, a unit, a
// comparison, before/after, a quoted string, code, a URL, a line break,
// another language) fails the guard.
func TestGuardRejectsDifferentMeaning(t *testing.T) {
	for _, p := range loadSet(t) {
		if !p.Same && guarded[p.Kind] && SameMeaningTokens(p.A, p.B) {
			t.Errorf("%s %s: the guard passed %q and %q (tokens %q)", p.Lang, p.Kind, p.A, p.B, Tokens(p.A))
		}
	}
}

// TestPairsReproducible: the checked-in set is what the generator writes.
func TestPairsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run")
	}
	out := filepath.Join(t.TempDir(), "pairs.jsonl")
	cmd := exec.Command("go", "run", "./testdata/pairgen", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pairgen: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/pairs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Error("testdata/pairs.jsonl differs from what testdata/pairgen writes; run go run ./filter/meaning/testdata/pairgen")
	}
}
