package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

const routingConfig = `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
backends:
  - {name: small, schema: openai, url: "%s", credential: {env: SMALL_KEY}}
  - {name: big, schema: openai, url: "%s", credential: {env: BIG_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
  - {name: gpt-4.1, pool: code, price: {input: 2.00, output: 8.00}}
pools:
  - {name: cheap, backends: [{backend: small}]}
  - {name: code, backends: [{backend: big}]}
routing:
  tenant_header: x-tenant
routes:
  - name: suspended
    match: {when: 'tenant == "suspended"'}
    deny: This tenant is suspended.
  - name: code
    match: {model: auto, when: 'class == "code"'}
    model: gpt-4.1
  - name: ab
    match: {model: auto, when: 'headers["x-experiment"] == "on"'}
    split: [{pool: cheap, weight: 1}, {pool: code, weight: 1}]
    sticky_by: user
  - name: default
    match: {model: auto}
    pool: cheap
`

// TestRoutingRules runs requests for "auto" through Envoy: the rules choose
// the pool from the task, the client sees the rule in x-llmproc-route, a
// rule's model is what the provider receives and what cost is priced by.
func TestRoutingRules(t *testing.T) {
	small, big := fakeopenai.New(fakeopenai.Options{}), fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { small.Close(); big.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(routingConfig, small.URL(), big.URL()),
		map[string]string{"SMALL_KEY": "sk-small", "BIG_KEY": "sk-big"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	usage := fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}
	small.Script(func(fakeopenai.Request) fakeopenai.Behaviour { return usage })
	big.Script(func(fakeopenai.Request) fakeopenai.Behaviour { return usage })

	code := `{"model":"auto","messages":[{"role":"user","content":"Fix this:\n` + "```python\\ndef f(:\\n```" + `"}]}`
	r := e.post(t, code)
	if r.status != 200 {
		t.Fatalf("code: status %d body %s", r.status, r.body)
	}
	class, confidence, _ := strings.Cut(r.header.Get("x-llmproc-class"), "; confidence=")
	if got := r.header.Get("x-llmproc-route") + " " + class + " " + r.header.Get("x-llmproc-backend") + " " + r.header.Get("x-llmproc-model"); got != "code code big gpt-4.1" {
		t.Errorf("code: headers %q", got)
	}
	if p, err := strconv.ParseFloat(confidence, 64); err != nil || p <= 0 || p > 1 {
		t.Errorf("x-llmproc-class %q: want the class and its confidence", r.header.Get("x-llmproc-class"))
	}
	// The access log carries both too.
	if line := accessLine(t, e, r.header.Get("x-llmproc-request-id")); gjson.Get(line, "class").String() != "code" || gjson.Get(line, "class_confidence").String() != confidence {
		t.Errorf("access log class %q, class_confidence %q; want code, %q", gjson.Get(line, "class").String(), gjson.Get(line, "class_confidence").String(), confidence)
	}
	reqs := big.Requests()
	if len(reqs) != 1 || gjson.GetBytes(reqs[0].Body, "model").String() != "gpt-4.1" {
		t.Fatalf("big backend got %d requests; model %q", len(reqs), gjson.GetBytes(reqs[len(reqs)-1].Body, "model").String())
	}

	r = e.post(t, chat("auto", false, ""))
	if r.status != 200 || r.header.Get("x-llmproc-route") != "default" || r.header.Get("x-llmproc-backend") != "small" {
		t.Errorf("chat: status %d route %q backend %q", r.status, r.header.Get("x-llmproc-route"), r.header.Get("x-llmproc-backend"))
	}
	if got := gjson.GetBytes(r.body, "model").String(); got == "" {
		t.Errorf("chat: no model in %s", r.body)
	}

	// Deny applies to explicit models too, before any provider is called.
	before := len(small.Requests())
	r = e.post(t, chat("gpt-4o-mini", false, ""), "x-tenant", "suspended")
	wantOpenAIError(t, r, 403, "request_denied")
	if len(small.Requests()) != before {
		t.Error("a denied request reached the provider")
	}
	r = e.post(t, chat("gpt-5", false, ""))
	wantOpenAIError(t, r, 404, "model_not_found")

	// A sticky split: each user always lands on the same pool, and both
	// pools get users.
	pools := map[string]int{}
	for i := range 12 {
		user := "user-" + strconv.Itoa(i)
		var first string
		for range 2 {
			r := e.post(t, chat("auto", false, `"user":"`+user+`",`), "x-experiment", "on")
			if r.status != 200 || r.header.Get("x-llmproc-route") != "ab" {
				t.Fatalf("split: status %d route %q body %s", r.status, r.header.Get("x-llmproc-route"), r.body)
			}
			b := r.header.Get("x-llmproc-backend")
			if first != "" && b != first {
				t.Errorf("%s went to %s, then %s", user, first, b)
			}
			first = b
		}
		pools[first]++
	}
	if pools["small"] == 0 || pools["big"] == 0 {
		t.Errorf("split sent every user to one pool: %v", pools)
	}

	// Cost is priced by the rule's model (gpt-4.1: 1000 × $2/M + 100 × $8/M).
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_route_decisions_total"], map[string]string{"route": "code", "class": "code"}) == 1
	})
	if got := sum(m["llmproc_cost_usd_total"], map[string]string{"backend": "big", "model": "gpt-4.1"}); got < 0.0028-1e-9 {
		t.Errorf("cost for gpt-4.1 = %v, want at least 0.0028", got)
	}
	if got := sum(m["llmproc_router_rejections_total"], map[string]string{"code": "request_denied"}); got != 1 {
		t.Errorf("request_denied rejections = %v", got)
	}
}
