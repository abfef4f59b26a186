package e2e

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// TestCacheNormalizedTier: with cache.match normalized, the two refund-policy
// variants are one entry (hit-normalized, naming the request whose answer was
// stored), as JSON and as a stream; a changed number or an added negation is
// another question and goes to the provider. Hits reserve no budget: only
// the provider's answers were reserved.
func TestCacheNormalizedTier(t *testing.T) {
	c := &cacheEnv{provider: fakeopenai.New(fakeopenai.Options{})}
	t.Cleanup(func() { c.provider.Close() })
	c.provider.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		n := c.served.Add(1)
		return fakeopenai.Behaviour{Content: fmt.Sprintf("answer-%d is here", n), Usage: fakeopenai.Usage{Prompt: 20, Completion: 4}}
	})
	extra := "  match: normalized\nbudgets:\n  - {name: g, scope: global, window: day, limit_usd: \"10\"}\n"
	st, accessLog, log := startStack(t, fmt.Sprintf(cacheConfig, c.provider.URL(), "1h", extra), map[string]string{"PRIMARY_KEY": "sk-primary"})
	c.env = &env{Stack: st, accessLog: accessLog, log: log}
	ask := func(turn, extra string) (result, string) {
		return c.ask(t, `{"model":"gpt-4o-mini","temperature":0,`+extra+`"messages":[{"role":"system","content":"You answer for the shop."},{"role":"user","content":`+strconv.Quote(turn)+`}]}`)
	}

	first, text := ask("What is your refund policy?", "")
	if first.header.Get("x-llmproc-cache") != "miss" || first.header.Get("x-llmproc-request-id") == "" {
		t.Fatalf("first: cache %q, request id %q", first.header.Get("x-llmproc-cache"), first.header.Get("x-llmproc-request-id"))
	}
	for _, v := range []struct{ name, turn, extra string }{
		{"contraction, case, punctuation", "what's your refund policy", ""},
		{"politeness", "Hi, what is your refund policy, please?", ""},
		{"a stream", "WHAT'S YOUR REFUND POLICY", `"stream":true,`},
	} {
		r, got := ask(v.turn, v.extra)
		if r.header.Get("x-llmproc-cache") != "hit-normalized" || got != text ||
			r.header.Get("x-llmproc-cache-request-id") != first.header.Get("x-llmproc-request-id") {
			t.Errorf("%s: cache %q, text %q, original request %q; want hit-normalized with %q from %q", v.name,
				r.header.Get("x-llmproc-cache"), got, r.header.Get("x-llmproc-cache-request-id"), text, first.header.Get("x-llmproc-request-id"))
		}
	}
	for _, turn := range []string{"What is your refund policy for 2 items?", "What is not your refund policy?"} {
		r, got := ask(turn, "")
		if r.header.Get("x-llmproc-cache") != "miss" || got == text {
			t.Errorf("%q: cache %q, text %q: shared the refund-policy entry", turn, r.header.Get("x-llmproc-cache"), got)
		}
	}
	if n := c.served.Load(); n != 3 {
		t.Errorf("the provider answered %d requests, want 3 (the first and the two different questions)", n)
	}
	m := c.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_budget_requests_total"], map[string]string{"result": "settled"}) >= 3
	})
	if n := sum(m["llmproc_budget_requests_total"], map[string]string{"result": "reserved"}); n != 3 {
		t.Errorf("%v reservations, want 3: a hit must not reserve", n)
	}
	if n := sum(m["llmproc_cache_requests_total"], map[string]string{"result": "hit-normalized"}); n != 3 {
		t.Errorf("llmproc_cache_requests_total{result=hit-normalized} = %v, want 3", n)
	}
	if n := sum(m["llmproc_cache_requests_total"], map[string]string{"result": "miss"}); n != 3 {
		t.Errorf("llmproc_cache_requests_total{result=miss} = %v, want 3", n)
	}
}
