package extproc

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/cache"
)

// routeCached runs the router role for body and returns the set headers, or
// the immediate response on a hit.
func routeCached(t *testing.T, h *harness, body string, kv ...string) (map[string]string, map[string]string, []byte) {
	t.Helper()
	s := h.stream(RoleRouter)
	roundTrip(t, s, reqHeaders(hdrs(false, append([]string{":method", "POST", ":path", "/v1/chat/completions"}, kv...)...), nil))
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

// answerUpstream runs one upstream attempt carrying the router's decisions
// and the provider's answer.
func answerUpstream(t *testing.T, h *harness, routed map[string]string, body, status, ctype string, chunks ...string) {
	t.Helper()
	s := h.stream(RoleUpstream)
	roundTrip(t, s, withDecisions(reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions"), attrsPrimary), routed))
	roundTrip(t, s, reqBody(body))
	roundTrip(t, s, respHeaders(false, ":status", status, "content-type", ctype))
	for i, c := range chunks {
		roundTrip(t, s, respBody(c, i == len(chunks)-1))
	}
	_ = s.CloseSend()
}

func TestCacheMissStoreHit(t *testing.T) {
	local, err := cache.NewLocal(16, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, &CacheTiers{Local: local, TTL: time.Hour, MaxEntryBytes: 1 << 20})
	const req = `{"model":"mini","temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	answer := `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`

	// A failed answer is never stored.
	routed, _, _ := routeCached(t, h, req)
	if routed[KeyCache] != "miss" || routed[KeyCacheKey] == "" {
		t.Fatalf("first request: %v", routed)
	}
	answerUpstream(t, h, routed, req, "500", "application/json", `{"error":{"message":"boom","type":"server_error"}}`)
	if routed, _, _ = routeCached(t, h, req); routed[KeyCache] != "miss" {
		t.Fatalf("a 500 was stored: %v", routed)
	}
	// A complete answer is.
	answerUpstream(t, h, routed, req, "200", "application/json", answer[:40], answer[40:])
	_, hit, body := routeCached(t, h, req)
	if hit[HeaderCache] != "hit" || hit["age"] == "" || gjson.GetBytes(body, "choices.0.message.content").String() != "Hello there" {
		t.Fatalf("hit headers %v body %s", hit, body)
	}
	// The same entry serves a stream, which ends cleanly.
	_, hit, body = routeCached(t, h, strings.Replace(req, `"temperature":0`, `"temperature":0,"stream":true`, 1))
	if hit["content-type"] != "text/event-stream" || !strings.HasSuffix(string(body), "data: [DONE]\n\n") || !strings.Contains(string(body), "Hello") {
		t.Fatalf("stream hit %v:\n%s", hit, body)
	}
	// No-store neither reads nor writes; a different temperature is not deterministic.
	if routed, _, _ := routeCached(t, h, req, "cache-control", "no-store"); routed[KeyCache] != "bypass" || routed[KeyCacheKey] != "" {
		t.Errorf("no-store: %v", routed)
	}
	if routed, _, _ := routeCached(t, h, strings.Replace(req, `"temperature":0`, `"temperature":0.7`, 1)); routed[KeyCache] != "bypass" {
		t.Errorf("temperature 0.7: %v", routed)
	}
}

func TestCacheDoesNotStoreCutStream(t *testing.T) {
	local, err := cache.NewLocal(16, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, &CacheTiers{Local: local, TTL: time.Hour, MaxEntryBytes: 1 << 20})
	const req = `{"model":"mini","seed":7,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	stream := readTestdata(t, "stream.sse")
	routed, _, _ := routeCached(t, h, req)
	answerUpstream(t, h, routed, req, "200", "text/event-stream", stream[:len(stream)/2], "")
	if routed, _, _ = routeCached(t, h, req); routed[KeyCache] != "miss" {
		t.Fatalf("a cut stream was stored: %v", routed)
	}
	answerUpstream(t, h, routed, req, "200", "text/event-stream", stream)
	if _, hit, _ := routeCached(t, h, req); hit[HeaderCache] != "hit" {
		t.Fatalf("a complete stream was not stored")
	}
}

// TestCacheNormalizedTier: with cache.match normalized, a request whose
// latest user turn normalizes like a stored one's is a hit-normalized naming
// the stored request's id; a changed number misses; an exact repeat is a
// plain hit; with match exact the variant misses. Hits reserve nothing: the
// router answers before it reserves (see lookup), and no reservation is in
// the metadata of a hit.
func TestCacheNormalizedTier(t *testing.T) {
	local, err := cache.NewLocal(16, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tiers := &CacheTiers{Local: local, TTL: time.Hour, MaxEntryBytes: 1 << 20}
	h := newHarnessFor(t, compileTest(t, fmt.Sprintf(testConfig, 4096)+"cache: {match: normalized}\n"), tiers)
	body := func(turn string) string {
		return `{"model":"mini","temperature":0,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":` + strconv.Quote(turn) + `}]}`
	}
	answer := `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"30 days."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`

	first := body("What is your refund policy?")
	routed, _, _ := routeCached(t, h, first, "x-request-id", "req-original")
	if routed[KeyCache] != "miss" || strings.Count(routed[KeyCacheKey], ",") != 1 {
		t.Fatalf("first request: %v", routed)
	}
	answerUpstream(t, h, routed, first, "200", "application/json", answer)

	_, hit, out := routeCached(t, h, body("what's your refund policy"), "x-request-id", "req-second")
	if hit[HeaderCache] != "hit-normalized" || hit[HeaderCacheRequestID] != "req-original" || gjson.GetBytes(out, "choices.0.message.content").Str != "30 days." {
		t.Fatalf("variant: headers %v body %s", hit, out)
	}
	if _, hit, _ = routeCached(t, h, first); hit[HeaderCache] != "hit" || hit[HeaderCacheRequestID] != "req-original" {
		t.Fatalf("exact repeat: %v", hit)
	}
	if routed, hit, _ = routeCached(t, h, body("What is your refund policy for 2 items?")); hit != nil || routed[KeyCache] != "miss" {
		t.Fatalf("a number changed: routed %v hit %v", routed, hit)
	}
	if routed, hit, _ = routeCached(t, h, body("What is not your refund policy?")); hit != nil || routed[KeyCache] != "miss" {
		t.Fatalf("a negation added: routed %v hit %v", routed, hit)
	}
	for _, c := range []struct {
		result string
		want   float64
	}{{"hit-normalized", 1}, {"hit", 1}, {"miss", 3}} {
		if got := counter(t, h.reg, "llmproc_cache_requests_total", map[string]string{"result": c.result}); got != c.want {
			t.Errorf("llmproc_cache_requests_total{result=%q} = %v, want %v", c.result, got, c.want)
		}
	}

	// The same tiers behind a route that matches exactly: the variant misses.
	exact := newHarnessFor(t, testRuntime(t, 4096), tiers)
	if routed, hit, _ := routeCached(t, exact, body("what's your refund policy")); hit != nil || routed[KeyCache] != "miss" || strings.Contains(routed[KeyCacheKey], ",") {
		t.Fatalf("match exact: routed %v hit %v", routed, hit)
	}
}
