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

// routeCachedAt is routeCached for another client path (a Responses or a
// Gemini request).
func routeCachedAt(t *testing.T, h *harness, path, body string, kv ...string) (map[string]string, map[string]string, []byte) {
	t.Helper()
	s := h.stream(RoleRouter)
	roundTrip(t, s, reqHeaders(hdrs(false, append([]string{":method", "POST", ":path", path}, kv...)...), nil))
	resp := roundTrip(t, s, reqBody(body))
	if ir := resp.GetImmediateResponse(); ir != nil {
		got := map[string]string{}
		for _, hv := range ir.Headers.GetSetHeaders() {
			got[hv.Header.Key] = string(hv.Header.RawValue)
		}
		return nil, got, ir.Body
	}
	return decided(resp), nil, nil
}

// TestSemanticResponsesAndGemini: the tier covers the Responses API (input
// as a string or as items) and Gemini clients too: the answer to the first
// request joins its bucket (for Responses, stored as the response object),
// a paraphrase is served from it in the client's shape, a changed number
// is guarded, and a Responses request leaning on a previous_response_id
// llmproc does not keep gets no bucket at all.
func TestSemanticResponsesAndGemini(t *testing.T) {
	h := semanticHarness(t)
	const (
		responses = "/v1/responses"
		gemini    = "/v1beta/models/mini:generateContent"
	)
	respAnswer := `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini-2024-07-18","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"30 days, full refund.","annotations":[]}]}],"usage":{"input_tokens":10,"output_tokens":5,"total_tokens":15}}`
	chatAnswer := `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"30 days, full refund."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`
	reqOf := func(input string) string {
		return `{"model":"mini","temperature":0,"instructions":"You are a support bot.","input":` + input + `}`
	}
	items := func(turn string) string {
		return fmt.Sprintf(`[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."},{"type":"message","role":"user","content":[{"type":"input_text","text":%q}]}]`, turn)
	}
	gemBody := func(turn string) string {
		return fmt.Sprintf(`{"systemInstruction":{"parts":[{"text":"You are a support bot."}]},"generationConfig":{"temperature":0},"contents":[{"role":"user","parts":[{"text":%q}]}]}`, turn)
	}
	const turn, paraphrase, number = "What is your refund policy for orders over 50 dollars?", "what is your refund policy for orders over 50 dollars", "What is your refund policy for orders over 500 dollars?"
	records := 0
	for _, c := range []struct {
		name, path, first, para, number, answer, text string
		kv                                            []string
	}{
		{"responses string input", responses, reqOf(fmt.Sprintf("%q", turn)), reqOf(fmt.Sprintf("%q", paraphrase)), reqOf(fmt.Sprintf("%q", number)), respAnswer, "output.0.content.0.text", nil},
		{"responses items", responses, reqOf(items(turn)), reqOf(items(paraphrase)), reqOf(items(number)), respAnswer, "output.0.content.0.text", nil},
		{"gemini", gemini, gemBody(turn), gemBody(paraphrase), gemBody(number), chatAnswer, "candidates.0.content.parts.0.text", []string{"x-goog-api-key", "k"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := "req-" + strings.ReplaceAll(c.name, " ", "-")
			routed, _, _ := routeCachedAt(t, h, c.path, c.first, append([]string{"x-request-id", id}, c.kv...)...)
			if routed[KeyCache] != "miss" || routed[KeySemanticBucket] == "" {
				t.Fatalf("first request: %v", routed)
			}
			s := h.stream(RoleUpstream)
			roundTrip(t, s, withDecisions(reqHeaders(hdrs(false, ":method", "POST", ":path", c.path), attrsPrimary), routed))
			roundTrip(t, s, reqBody(c.first))
			roundTrip(t, s, respHeaders(false, ":status", "200", "content-type", "application/json"))
			roundTrip(t, s, respBody(c.answer, true))
			_ = s.CloseSend()
			records++
			waitRecords(t, h, records)

			_, hit, body := routeCachedAt(t, h, c.path, c.para, c.kv...)
			if hit[HeaderCache] != "hit-semantic" || hit[HeaderCacheRequestID] != id || gjson.GetBytes(body, c.text).Str != "30 days, full refund." {
				t.Fatalf("paraphrase: headers %v body %s", hit, body)
			}
			if routed, hit, _ := routeCachedAt(t, h, c.path, c.number, c.kv...); hit != nil || routed[KeyCache] != "miss" {
				t.Fatalf("number changed: routed %v hit %v", routed, hit)
			}
		})
	}
	// No conversation store here: the id is unknown to llmproc and passes
	// to the pool's OpenAI backend, which holds the rest of the input.
	routed, hit, _ := routeCachedAt(t, h, responses, `{"model":"mini","temperature":0,"previous_response_id":"resp_elsewhere","input":"what is your refund policy for orders over 50 dollars"}`)
	if hit != nil || routed[KeyCache] != "miss" || routed[KeySemanticBucket] != "" {
		t.Fatalf("previous_response_id llmproc does not keep: routed %v hit %v", routed, hit)
	}
}
