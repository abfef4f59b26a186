package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// What the upstream role does for chat it does for POST /v1/responses, on
// both paths (passed through to OpenAI, translated for Anthropic): the
// cache with JSON and SSE replay, budgets settled at the real cost, rate
// limits, and the access log.

const surfaceConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 4194304, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
identity: {allow_client_tenant: true} # the tenant header as sent: a test
cache: {mode: deterministic, tenant_header: x-tenant}
budgets:
  - {name: daily, scope: tenant, window: day, limit_usd: "0.0005"}
rate_limits:
  - {name: team-r-rpm, tenants: [team-r], rpm: 2}
budget_store: {tenant_header: x-tenant}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
  - {name: claude, schema: anthropic, url: "%s", credential: {env: ANTHROPIC_KEY}}
models:
  - {name: gpt-surface, pool: openai, price: {input: 0.15, output: 0.60}}
  - {name: claude-surface, pool: claude, price: {input: 0.15, output: 0.60}}
pools:
  - {name: openai, backends: [{backend: openai, model: gpt-backend}]}
  - {name: claude, backends: [{backend: claude, model: claude-backend}]}
`

func startSurface(t *testing.T) *convEnv {
	t.Helper()
	oa := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Content: "Cached words here.", Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}})
	claude := fakeanthropic.New(fakeanthropic.Options{Default: fakeanthropic.Behaviour{Content: "Cached words here.", Usage: fakeanthropic.Usage{Input: 1000, Output: 100}}})
	t.Cleanup(func() { oa.Close(); claude.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(surfaceConfig, oa.URL(), claude.URL()), map[string]string{"OPENAI_KEY": "sk-openai", "ANTHROPIC_KEY": "sk-ant"})
	return &convEnv{env: &env{Stack: st, accessLog: accessLog, log: log}, openai: oa, claude: claude}
}

// TestResponsesCache: a deterministic Responses request (temperature 0) is
// stored after its first answer and served by the router from then on, as
// JSON (the response object as it was, its id included) and as a stream
// rebuilt from it, which never reaches the provider; a stream's own answer
// is stored as well.
func TestResponsesCache(t *testing.T) {
	e := startSurface(t)
	for _, c := range []struct {
		model   string
		first   bool // the first request streams
		backend func() int
	}{
		{"gpt-surface", false, func() int { return len(e.openai.Requests()) }},
		{"claude-surface", true, func() int { return len(e.claude.Requests()) }},
	} {
		t.Run(c.model, func(t *testing.T) {
			body := func(stream bool) string {
				return fmt.Sprintf(`{"model":%q,"temperature":0,"max_output_tokens":100,"input":"Say something cacheable.","stream":%v}`, c.model, stream)
			}
			first, resp := e.respond(t, "team-c", body(c.first))
			if first.header.Get("x-llmproc-cache") != "miss" {
				t.Fatalf("first: x-llmproc-cache %q", first.header.Get("x-llmproc-cache"))
			}
			for _, stream := range []bool{false, true} {
				var hit result
				var got gjson.Result
				// The store happens as the answer ends: the next request may race it.
				for range 50 {
					if hit, got = e.respond(t, "team-c", body(stream)); hit.header.Get("x-llmproc-cache") == "hit" {
						break
					}
				}
				if hit.header.Get("x-llmproc-cache") != "hit" {
					t.Fatalf("stream=%v: never a hit", stream)
				}
				if stream {
					evs := responsesEvents(t, hit.body)
					if evs[0].Get("type").Str != "response.created" || evs[len(evs)-1].Get("type").Str != "response.completed" {
						t.Errorf("replayed stream %s", hit.body)
					}
				}
				if got.Get("id").Str != resp.Get("id").Str || responsesText(got) != "Cached words here." || got.Get("usage.input_tokens").Int() != 1000 {
					t.Errorf("stream=%v: hit %s, first answer %s", stream, got.Raw, resp.Raw)
				}
			}
			if n := c.backend(); n != 1 {
				t.Errorf("the provider got %d requests, want 1", n)
			}
		})
	}
}

// TestResponsesBudgetRateLimitAccessLog: translated Responses answers settle
// the tenant's budget at their real cost (210 µ$ against 500 µ$: the third
// is refused, in OpenAI's shape), a tenant's rpm applies to /v1/responses,
// and the access log shows the request's backend, usage and cost.
func TestResponsesBudgetRateLimitAccessLog(t *testing.T) {
	e := startSurface(t)
	var codes []int
	var first result
	for i := range 4 {
		r := e.postPath(t, "/v1/responses", fmt.Sprintf(`{"model":"claude-surface","input":"Count to %d.","max_output_tokens":100,"stream":%v}`, i, i%2 == 1), "x-tenant", "team-a")
		if i == 0 {
			first = r
		}
		codes = append(codes, r.status)
		if r.status == http.StatusTooManyRequests {
			wantOpenAIError(t, r, http.StatusTooManyRequests, "budget_exceeded")
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 200 || codes[3] != 429 {
		t.Fatalf("statuses %v, want three 200 then a 429", codes)
	}
	line := accessLine(t, e.env, first.header.Get("x-llmproc-request-id"))
	for k, want := range map[string]string{"backend": "claude", "pool": "claude", "requested_model": "claude-surface", "usage": "known",
		"outcome": "ok", "prompt_tokens": "1000", "completion_tokens": "100", "cost_usd": "0.000210000000"} {
		if got := gjson.Get(line, k).String(); got != want {
			t.Errorf("access log %s = %q, want %q\n%s", k, got, want, line)
		}
	}

	var rl []int
	for i := range 3 {
		r := e.postPath(t, "/v1/responses", fmt.Sprintf(`{"model":"gpt-surface","input":"Hi %d","max_output_tokens":10}`, i), "x-tenant", "team-r")
		rl = append(rl, r.status)
		if i == 2 {
			wantOpenAIError(t, r, http.StatusTooManyRequests, "rate_limit_exceeded")
		}
	}
	if rl[0] != 200 || rl[1] != 200 || rl[2] != 429 {
		t.Errorf("rate-limited statuses %v, want 200 200 429", rl)
	}
}
