package semantic

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/llmproc/llmproc/filter/cache"
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

// apiBodies builds, for each client API the tier covers, a request with a
// system prompt (or its API's equivalent), one earlier exchange, and turn
// as the latest user turn.
var apiBodies = []struct {
	name, api, schema, endpoint string
	body                        func(turn string) []byte
}{
	{"chat", cache.APIChat, "openai", "/v1/chat/completions", func(turn string) []byte {
		return marshal(map[string]any{"model": "mini", "temperature": 0, "messages": []any{
			map[string]any{"role": "system", "content": "You are a support agent."},
			map[string]any{"role": "user", "content": "Hello"}, map[string]any{"role": "assistant", "content": "Sure."},
			map[string]any{"role": "user", "content": turn}}})
	}},
	{"messages", cache.APIMessages, "anthropic", "/v1/messages", func(turn string) []byte {
		return marshal(map[string]any{"model": "mini", "max_tokens": 64, "system": "You are a support agent.", "messages": []any{
			map[string]any{"role": "user", "content": "Hello"}, map[string]any{"role": "assistant", "content": "Sure."},
			map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": turn}}}}})
	}},
	{"responses string", cache.APIResponses, "openai", "/v1/responses", func(turn string) []byte {
		return marshal(map[string]any{"model": "mini", "temperature": 0, "instructions": "You are a support agent.", "input": turn})
	}},
	{"responses items", cache.APIResponses, "openai", "/v1/responses", func(turn string) []byte {
		return marshal(map[string]any{"model": "mini", "temperature": 0, "instructions": "You are a support agent.", "input": []any{
			map[string]any{"role": "user", "content": "Hello"}, map[string]any{"role": "assistant", "content": "Sure."},
			map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": turn}}}}})
	}},
	{"gemini cli (context part, then the turn)", cache.APIGemini, "gemini", "/v1beta/models/mini:streamGenerateContent", func(turn string) []byte {
		return marshal(map[string]any{"systemInstruction": map[string]any{"parts": []any{map[string]any{"text": "You are an interactive CLI agent."}}},
			"generationConfig": map[string]any{"temperature": 1, "topP": 0.95}, "contents": []any{
				map[string]any{"role": "user", "parts": []any{map[string]any{"text": sessionContext}, map[string]any{"text": turn}}}}})
	}},
	{"messages with a reminder block", cache.APIMessages, "anthropic", "/v1/messages", func(turn string) []byte {
		return marshal(map[string]any{"model": "mini", "max_tokens": 64, "messages": []any{
			map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "<system-reminder>Today's date is 2026-12-08.</system-reminder>"},
				map[string]any{"type": "text", "text": turn, "cache_control": map[string]any{"type": "ephemeral"}}}}}})
	}},
	{"gemini", cache.APIGemini, "gemini", "/v1beta/models/mini:generateContent", func(turn string) []byte {
		return marshal(map[string]any{"systemInstruction": map[string]any{"parts": []any{map[string]any{"text": "You are a support agent."}}},
			"generationConfig": map[string]any{"temperature": 0}, "contents": []any{
				map[string]any{"role": "user", "parts": []any{map[string]any{"text": "Hello"}}}, map[string]any{"role": "model", "parts": []any{map[string]any{"text": "Sure."}}},
				map[string]any{"role": "user", "parts": []any{map[string]any{"text": turn}}}}})
	}},
}

// sessionContext is a long constant first part of the turn, as Gemini CLI
// sends its session context.
var sessionContext = "This is the Gemini CLI. We are setting up the context for our chat. Today's date is Tuesday, December 8, 2026. " +
	strings.Repeat("The workspace holds a Go module with many files and directories. ", 30)

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestPrecisionAPIs runs the pair set through the whole split of each client
// API the tier covers: each pair's first turn is the latest user turn of a
// request that is stored (Turn, BucketOf, Tier.Store), the second that of a
// request equal in everything else that is looked up (Turn, BucketOf,
// Tier.Lookup); each pair has a tenant of its own, so no pair sees
// another's entries. Every API must reach the precision bound and hit the
// same pairs as chat: the turn is found and compared alike in each.
//
//	go test -v -run TestPrecisionAPIs ./filter/semantic
func TestPrecisionAPIs(t *testing.T) {
	pairs, err := meaning.LoadPairs("../meaning/testdata/pairs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var chatHits map[[2]string]bool
	for _, a := range apiBodies {
		t.Run(a.name, func(t *testing.T) {
			tier, err := NewTier(Options{Threshold: precisionThreshold, MaxEntries: 2 * len(pairs), MaxBucketEntries: 1, TTL: time.Hour,
				Vectors: StandInVectors{Dims: precisionDims}, Guard: meaning.SameMeaningTokens, Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			hits := map[[2]string]bool{}
			split := func(tenant, turn string) (string, Bucket) {
				d, err := cache.Parse(a.body(turn))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Release()
				text, at, ok := Turn(d, a.api)
				if !ok || text != turn {
					t.Fatalf("Turn(%s) = %q, %v; want the turn %q", a.body(turn), text, ok, turn)
				}
				return strings.Clone(text), BucketOf(d, cache.KeyInput{Tenant: tenant, ClientSchema: a.schema, Endpoint: a.endpoint, Pool: "p", Model: "mini"}, at)
			}
			sem, wrong := meaning.Score(pairs, func(x, y string) bool {
				n++
				tenant := fmt.Sprintf("pair-%d", n)
				tx, bx := split(tenant, x)
				ty, by := split(tenant, y)
				if bx != by {
					t.Fatalf("two requests equal but for their latest turn are in different buckets: %q, %q", x, y)
				}
				if err := tier.Store(ctx, bx, tx, entryOf(tenant), "req", t0); err != nil {
					t.Fatal(err)
				}
				m, ok, _ := tier.Lookup(ctx, by, ty)
				hit := ok && m.Entry == entryOf(tenant)
				if hit {
					hits[[2]string{x, y}] = true
				}
				return hit
			})
			t.Logf("client API %s; stand-in embedding StandIn, %d dims; threshold %.2f; guard meaning.SameMeaningTokens\n%s",
				a.name, precisionDims, precisionThreshold, meaning.Table([]string{"semantic"}, []map[string]meaning.Stats{sem}))
			for _, p := range wrong {
				t.Logf("wrong hit (%s, %s): %q → %q", p.Lang, p.Kind, p.A, p.B)
			}
			if got := sem["all"].Precision(); got < 0.995 {
				t.Errorf("semantic tier precision %.2f%%, want ≥ 99.5%%", 100*got)
			}
			if chatHits == nil {
				chatHits = hits
				return
			}
			if len(hits) != len(chatHits) {
				t.Errorf("%d hits, chat has %d", len(hits), len(chatHits))
			}
			for h := range hits {
				if !chatHits[h] {
					t.Errorf("a hit chat does not have: %q", h)
				}
			}
		})
	}
}
