package e2e

import (
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

const accessLogConfig = `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
backends:
  - name: claude
    schema: anthropic
    url: "%s"
    credential: {env: ANTHROPIC_KEY}
    anthropic: {max_tokens: 1024}
models:
  - {name: claude-sonnet-4-5, pool: claude, price: {input: 3.00, output: 15.00, cached_input: 0.30, cache_write: 3.75, cache_write_1h: 6.00}}
pools:
  - {name: claude, backends: [{backend: claude}]}
cache: {mode: deterministic, tenant_header: x-tenant}
metrics: {tenants: [team-a]}
`

// TestAccessLogAddsUp: the access-log line of an Anthropic answer with cache
// reads and five-minute and one-hour cache writes carries every priced token
// class, and they add up to its cost_usd at the configured prices; the line
// has the answer's x-llmproc-request-id, the traceparent's trace id, the
// tenant and the client API. A cache hit, an immediate response, carries a
// request id too, and so does an error.
func TestAccessLogAddsUp(t *testing.T) {
	claude := fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant-secret"})
	t.Cleanup(func() { claude.Close() })
	claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Content: "Hello from Claude",
			Usage: fakeanthropic.Usage{Input: 37, Output: 41, CacheRead: 6000, CacheWrite: 3000, CacheWrite1h: 1000}}
	})
	st, accessLog, log := startStack(t, fmt.Sprintf(accessLogConfig, claude.URL()), map[string]string{"ANTHROPIC_KEY": "sk-ant-secret"})
	e := &env{Stack: st, accessLog: accessLog, log: log}

	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := `{"model":"claude-sonnet-4-5","temperature":0,"messages":[{"role":"user","content":"Say hello"}]}`
	r := e.post(t, body, "x-tenant", "team-a", "traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
	if r.status != 200 || r.err != nil {
		t.Fatalf("status %d err %v: %s", r.status, r.err, r.body)
	}
	id := r.header.Get("x-llmproc-request-id")
	if id == "" {
		t.Fatalf("no x-llmproc-request-id on the answer: %v", r.header)
	}
	line := accessLine(t, e, id)
	for k, want := range map[string]string{"trace_id": trace, "tenant": "team-a", "client": "openai", "backend": "claude",
		"pool": "claude", "cache": "miss", "usage": "known", "outcome": "ok", "response_code": "200"} {
		if got := gjson.Get(line, k).String(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for k, want := range map[string]int64{"prompt_tokens": 9037, "cached_tokens": 6000, "cache_write_tokens": 3000,
		"cache_write_1h_tokens": 1000, "completion_tokens": 41, "reasoning_tokens": 0} {
		if got := gjson.Get(line, k); got.Type != gjson.Number || got.Int() != want {
			t.Errorf("%s = %s, want %d", k, got.Raw, want)
		}
	}
	// USD per million tokens, as configured.
	n := func(k string) *big.Rat { return new(big.Rat).SetInt64(gjson.Get(line, k).Int()) }
	perM := func(s string) *big.Rat { r, _ := new(big.Rat).SetString(s); return r.Quo(r, big.NewRat(1_000_000, 1)) }
	uncached := new(big.Rat).Sub(n("prompt_tokens"), n("cached_tokens"))
	uncached.Sub(uncached, n("cache_write_tokens"))
	cost := new(big.Rat).Mul(uncached, perM("3.00"))
	cost.Add(cost, new(big.Rat).Mul(n("cached_tokens"), perM("0.30")))
	cost.Add(cost, new(big.Rat).Mul(new(big.Rat).Sub(n("cache_write_tokens"), n("cache_write_1h_tokens")), perM("3.75")))
	cost.Add(cost, new(big.Rat).Mul(n("cache_write_1h_tokens"), perM("6.00")))
	cost.Add(cost, new(big.Rat).Mul(n("completion_tokens"), perM("15.00")))
	if got, want := gjson.Get(line, "cost_usd").String(), cost.FloatString(12); got != want {
		t.Errorf("cost_usd %s, the logged tokens cost %s:\n%s", got, want, line)
	}

	// The same request again is a cache hit, answered by the router role.
	hit := e.post(t, body, "x-tenant", "team-a")
	if hit.status != 200 || hit.header.Get("x-llmproc-cache") != "hit" {
		t.Fatalf("second request: status %d, x-llmproc-cache %q", hit.status, hit.header.Get("x-llmproc-cache"))
	}
	if hid := hit.header.Get("x-llmproc-request-id"); hid == "" || hid == id {
		t.Errorf("cache hit x-llmproc-request-id %q (first answer %q)", hid, id)
	} else if l := accessLine(t, e, hid); gjson.Get(l, "response_code").Int() != 200 || gjson.Get(l, "cache").Str != "hit" ||
		gjson.Get(l, "tenant").Str != "team-a" || gjson.Get(l, "pool").Str != "claude" || gjson.Get(l, "client").Str != "openai" {
		t.Errorf("cache hit's access-log line: %s", l)
	}
	bad := e.post(t, `{"model":"claude-sonnet-4-5"}`)
	if bid := bad.header.Get("x-llmproc-request-id"); bad.status != 400 || bid == "" {
		t.Errorf("invalid request: status %d, x-llmproc-request-id %q", bad.status, bid)
	} else {
		accessLine(t, e, bid)
	}
}

// accessLine waits for the access-log line (a JSON object with a
// response_code, not an upstream-log line) of request id.
func accessLine(t *testing.T, e *env, id string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, l := range strings.Split(e.accessLog.String(), "\n") {
			if gjson.Get(l, "request_id").Str == id && gjson.Get(l, "path").Exists() {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access-log line for request %s:\n%s", id, e.accessLog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAccessLogAttempts: a failover (OpenAI 503, then Anthropic) logs one
// upstream-log line per attempt with its backend, status and the request's
// id, and one access-log line with attempts 2, the answering backend and its
// usage. The upstream log is the router's, formatted with each attempt's own
// stream info (source/common/router/upstream_request.cc), which is why the
// attempt's backend comes from the endpoint metadata.
func TestAccessLogAttempts(t *testing.T) {
	a := startAnthropic(t)
	a.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	a.claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Content: "Hello from Claude", Usage: fakeanthropic.Usage{Input: 100, Output: 50, CacheRead: 1000, CacheWrite: 200}}
	})
	r := a.post(t, chat("gpt-4o-mini", false, ""))
	id := r.header.Get("x-llmproc-request-id")
	if r.status != 200 || id == "" {
		t.Fatalf("status %d, x-llmproc-request-id %q: %s", r.status, id, r.body)
	}
	line := accessLine(t, a.env, id)
	if gjson.Get(line, "attempts").Int() != 2 || gjson.Get(line, "backend").Str != "claude" ||
		gjson.Get(line, "cache_write_tokens").Int() != 200 || gjson.Get(line, "cached_tokens").Int() != 1000 {
		t.Errorf("access-log line: %s", line)
	}
	var attempts []string
	for _, l := range strings.Split(a.accessLog.String(), "\n") {
		if gjson.Get(l, "request_id").Str == id && !gjson.Get(l, "path").Exists() {
			attempts = append(attempts, gjson.Get(l, "backend").Str+" "+gjson.Get(l, "response_code").String())
		}
	}
	if strings.Join(attempts, ", ") != "openai 503, claude 200" {
		t.Errorf("upstream-log lines of request %s: %q\n%s", id, attempts, a.accessLog.String())
	}
}

// TestRequestIDOnEnvoyReplies: Envoy's own error answer (the pool's only
// backend refuses connections: pool_exhausted, a local reply rewritten by
// the rendered mappers) carries x-llmproc-request-id, the access log's id.
func TestRequestIDOnEnvoyReplies(t *testing.T) {
	a := startAnthropic(t)
	a.claude.Close()
	r := a.post(t, chat("claude-haiku-4-5", false, ""))
	id := r.header.Get("x-llmproc-request-id")
	if r.status != 503 || id == "" || !strings.Contains(string(r.body), "pool_exhausted") {
		t.Fatalf("status %d, x-llmproc-request-id %q: %s", r.status, id, r.body)
	}
	if l := accessLine(t, a.env, id); gjson.Get(l, "response_code").Int() != 503 {
		t.Errorf("access-log line: %s", l)
	}
}
