package semantic

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/llmproc/llmproc/filter/meaning"
)

// precisionDims and precisionThreshold are the stand-in's size and the
// threshold the precision test holds the tier to; DefaultThreshold is the
// config's default.
const (
	precisionDims      = 256
	precisionThreshold = DefaultThreshold
)

// TestPrecision runs the semantic tier itself (Tier.Store of one turn,
// Tier.Lookup of the other, in a bucket of their own) over the labelled
// pair set of package meaning, with the stand-in embedding (StandIn: hashed
// character trigrams, no model — see its doc for what it can and cannot
// do) and the meaning guard. It reports precision and recall per language
// and fails if precision drops below 99.5%.
//
//	go test -v -run TestPrecision ./filter/semantic
func TestPrecision(t *testing.T) {
	pairs, err := meaning.LoadPairs("../meaning/testdata/pairs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	langs := map[string]bool{}
	for _, p := range pairs {
		langs[p.Lang] = true
	}
	if len(pairs) < 600 || len(langs) < 6 {
		t.Fatalf("the pair set has %d pairs in %d languages; want at least 600 in 6", len(pairs), len(langs))
	}
	tier, err := NewTier(Options{Threshold: precisionThreshold, MaxEntries: 2 * len(pairs), MaxBucketEntries: 1, TTL: time.Hour,
		Vectors: StandInVectors{Dims: precisionDims}, Guard: meaning.SameMeaningTokens, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	sims := map[[2]string]float32{}
	match := func(a, b string) bool {
		n++
		bk := Bucket(sha256.Sum256(fmt.Appendf(nil, "pair %d", n)))
		if err := tier.Store(ctx, bk, a, entryOf(a), "req", t0); err != nil {
			t.Fatal(err)
		}
		m, ok, _ := tier.Lookup(ctx, bk, b)
		sims[[2]string{a, b}] = dot(vec256(a), vec256(b))
		return ok && m.Entry == entryOf(a)
	}
	sem, wrong := meaning.Score(pairs, match)
	embOnly, _ := meaning.Score(pairs, func(a, b string) bool { return dot(vec256(a), vec256(b)) >= precisionThreshold })
	t.Logf("stand-in embedding: StandIn, %d dims; threshold %.2f; guard meaning.SameMeaningTokens\n%s", precisionDims, precisionThreshold,
		meaning.Table([]string{"semantic", "embed-only"}, []map[string]meaning.Stats{sem, embOnly}))
	for _, p := range wrong {
		t.Logf("wrong hit (%s, %s, similarity %.3f): %q → %q", p.Lang, p.Kind, sims[[2]string{p.A, p.B}], p.A, p.B)
	}
	if got := sem["all"].Precision(); got < 0.995 {
		t.Errorf("semantic tier precision %.2f%%, want ≥ 99.5%%", 100*got)
	}
	for l, s := range sem {
		if s.Hits == 0 && s.SamePairs > 0 {
			t.Errorf("%s: no hit at all; the test would prove nothing", l)
		}
	}
}

func vec256(s string) []float32 { return Normalize(StandIn(s, precisionDims)) }
