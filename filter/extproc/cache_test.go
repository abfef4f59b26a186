package extproc

import (
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
