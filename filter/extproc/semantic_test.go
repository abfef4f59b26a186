package extproc

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/semantic"
)

// semanticConfig is testConfig with every request matched semantically,
// its embeddings from pool cheap (replaced by the stand-in in the tests).
const semanticConfig = testConfig + `
cache:
  match: semantic
  semantic: {embeddings_pool: cheap, model: text-embedding-3-small, threshold: 0.9}
`

func semanticHarness(t *testing.T) *harness {
	t.Helper()
	local, err := cache.NewLocal(16, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rt := compileTest(t, fmt.Sprintf(semanticConfig, 1<<16))
	h := newHarnessOpts(t, Options{Config: fixedRuntime{rt}, Cache: &CacheTiers{Local: local, TTL: time.Hour, MaxEntryBytes: 1 << 20},
		SemanticVectors: semantic.StandInVectors{Dims: 256}})
	if h.srv.semantic == nil {
		t.Fatal("no semantic tier built")
	}
	return h
}

// waitRecords waits for the background store to add the index's n-th
// record (a condition, not a time: hangGuard only stops a test that would
// never end).
func waitRecords(t *testing.T, h *harness, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); h.srv.semantic.Index().Len() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the semantic record was never added (%d held)", h.srv.semantic.Index().Len())
		}
	}
}

func chatBody(system, user string) string {
	return fmt.Sprintf(`{"model":"mini","temperature":0,"messages":[{"role":"system","content":%q},{"role":"user","content":%q}]}`, system, user)
}

// TestSemanticHit: a paraphrase of a stored turn is served from its entry
// with hit-semantic, the similarity and the first request's id, counted by
// tier; a changed number, another system prompt, or a turn the stand-in
// finds too far, miss and go upstream.
func TestSemanticHit(t *testing.T) {
	h := semanticHarness(t)
	answer := `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"30 days, full refund."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`
	first := chatBody("You are a support bot.", "What is your refund policy for orders over 50 dollars?")
	routed, _, _ := routeCached(t, h, first, "x-request-id", "req-first")
	if routed[KeyCache] != "miss" || routed[KeySemanticBucket] == "" {
		t.Fatalf("first request: %v", routed)
	}
	answerUpstream(t, h, routed, first, "200", "application/json", answer)
	waitRecords(t, h, 1)

	cases := []struct {
		name, body, want string
	}{
		{"casing and punctuation", chatBody("You are a support bot.", "what is your refund policy for orders over 50 dollars"), "hit-semantic"},
		{"a typo", chatBody("You are a support bot.", "What is your refund polcy for orders over 50 dollars?"), "hit-semantic"},
		{"number changed", chatBody("You are a support bot.", "What is your refund policy for orders over 500 dollars?"), "miss"},
		{"negation added", chatBody("You are a support bot.", "What is not your refund policy for orders over 50 dollars?"), "miss"},
		{"other system prompt", chatBody("You are a pirate.", "what is your refund policy for orders over 50 dollars"), "miss"},
		{"another question", chatBody("You are a support bot.", "How do I reset my password?"), "miss"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			routed, hit, body := routeCached(t, h, c.body, "x-request-id", "req-"+strings.ReplaceAll(c.name, " ", "-"))
			if c.want != "hit-semantic" {
				if hit != nil || routed[KeyCache] != c.want {
					t.Fatalf("want %s, got routed %v hit %v", c.want, routed, hit)
				}
				return
			}
			if hit == nil {
				t.Fatalf("want a semantic hit, routed %v", routed)
			}
			if hit[HeaderCache] != "hit-semantic" || hit[HeaderCacheRequestID] != "req-first" || !strings.HasPrefix(hit[HeaderCacheSimilarity], "0.9") && hit[HeaderCacheSimilarity] != "1.00" {
				t.Errorf("headers %v", hit)
			}
			if gjson.GetBytes(body, "choices.0.message.content").String() != "30 days, full refund." {
				t.Errorf("body %s", body)
			}
		})
	}
	if n := counter(t, h.reg, "llmproc_cache_requests_total", map[string]string{"result": "hit-semantic"}); n != 2 {
		t.Errorf("hit-semantic counted %v times, want 2", n)
	}
	if n := counter(t, h.reg, "llmproc_cache_semantic_lookups_total", map[string]string{"outcome": "guarded"}); n != 2 {
		t.Errorf("guarded counted %v times, want 2 (the number and the negation)", n)
	}
	if n := counter(t, h.reg, "llmproc_cache_saved_usd_total", nil); n <= 0 {
		t.Errorf("no cost saved counted")
	}
}

// TestSemanticOnlyWhereAsked: a route whose match is exact never looks up
// semantically, nor does a request whose last turn is not user text.
func TestSemanticOnlyWhereAsked(t *testing.T) {
	h := semanticHarness(t)
	body := `{"model":"mini","temperature":0,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}`
	if routed, _, _ := routeCached(t, h, body); routed[KeySemanticBucket] != "" || routed[KeyCache] != "miss" {
		t.Errorf("a request ending in an assistant turn: %v", routed)
	}
	if routed, _, _ := routeCached(t, h, chatBody("s", "hi"), "cache-control", "no-store"); routed[KeySemanticBucket] != "" {
		t.Errorf("no-store got a bucket: %v", routed)
	}
}
