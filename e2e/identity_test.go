package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/filter/identity"
)

// identity.source client_keys through the harness: the key decides the
// tenant (a spoofed tenant header gets nothing of the tenant it names), the
// allow-list refuses with 403, and a revoked key stops working once the keys
// file has been re-read.
const keysConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s, reload_interval: 100ms}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
identity:
  source: client_keys
  keys_file: %s
  tenants: [{name: b, models: ["gpt-4o-mini"]}]
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
  - {name: gpt-4o, pool: cheap, price: {input: 2.5, output: 10}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
routing: {tenant_header: x-tenant} # read by the header source only: ignored here
cache: {mode: deterministic}
budgets:
  - {name: daily, scope: tenant, window: day, limit_usd: "0.0005"}
`

func TestClientKeys(t *testing.T) {
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	keyA, _, err := identity.Create(keysFile, identity.Key{Tenant: "a"}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	keyB, kB, err := identity.Create(keysFile, identity.Key{Tenant: "b"}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every answer is unique, so a cache hit across tenants cannot go unseen.
	// One request costs 1000×0.15 + 100×0.60 = 210 µ$ of the 500 µ$ budget.
	var served atomic.Int64
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	provider.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: fmt.Sprintf("answer-%d", served.Add(1)), Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}
	})
	st, accessLog, log := startStack(t, fmt.Sprintf(keysConfig, keysFile, provider.URL()), map[string]string{"PRIMARY_KEY": "sk-primary"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	asA := []string{"authorization", "Bearer " + keyA}
	asBSpoofingA := []string{"authorization", "Bearer " + keyB, "x-tenant", "a"}
	ask := func(body string, hdr []string) result {
		t.Helper()
		r := e.post(t, body, hdr...)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		return r
	}
	content := func(r result) string { return gjson.GetBytes(r.body, "choices.0.message.content").String() }
	question := func(n int) string {
		return fmt.Sprintf(`{"model":"gpt-4o-mini","temperature":0,"max_tokens":100,"messages":[{"role":"user","content":"Question %d"}]}`, n)
	}

	// Cache: tenant A's answer is cached for A, never served to B.
	first := content(ask(question(0), asA))
	if again := ask(question(0), asA); content(again) != first || again.header.Get("x-llmproc-cache") != "hit" {
		t.Fatalf("tenant A's repeat: %q (cache %q), want its cached %q", content(again), again.header.Get("x-llmproc-cache"), first)
	}
	if spoofed := ask(question(0), asBSpoofingA); content(spoofed) == first || spoofed.header.Get("x-llmproc-cache") == "hit" {
		t.Fatalf("key B with x-tenant: a got tenant A's cached answer %q", content(spoofed))
	}

	// Budget: B's spending, x-tenant: a notwithstanding, is B's; A keeps its own.
	refused := false
	for i := 1; i <= 10 && !refused; i++ {
		r := e.post(t, question(i), asBSpoofingA...)
		switch r.status {
		case 200:
		case 429:
			wantOpenAIError(t, r, 429, "budget_exceeded")
			refused = true
		default:
			t.Fatalf("B's request %d: %d %s", i, r.status, r.body)
		}
	}
	if !refused {
		t.Fatal("tenant B's budget never ran out")
	}
	ask(question(100), asA) // A has spent 210 µ$ of its own 500

	// Allow-list: tenant b may use gpt-4o-mini only; the refusal names the model.
	r := e.post(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, asBSpoofingA...)
	wantOpenAIError(t, r, 403, "model_not_allowed")
	if !strings.Contains(gjson.GetBytes(r.body, "error.message").String(), "gpt-4o") {
		t.Errorf("the refusal does not name the model: %s", r.body)
	}
	req, _ := http.NewRequest(http.MethodPost, e.URL()+"/v1/messages", strings.NewReader(`{"model":"gpt-4o","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("x-api-key", keyB)
	if r := do(t, req); r.status != 403 || gjson.GetBytes(r.body, "error.type").String() != "permission_error" {
		t.Errorf("Anthropic client refused with %d %s, want 403 permission_error", r.status, r.body)
	}

	// No key, or a provider's key: 401 before anything else.
	wantOpenAIError(t, e.post(t, question(0), "x-tenant", "a"), 401, "missing_api_key")
	wantOpenAIError(t, e.post(t, question(0), "authorization", "Bearer sk-proj-provider"), 401, "malformed_api_key")
	served0 := served.Load()

	// Revocation: the rewritten keys file is re-read within limits.reload_interval.
	if err := identity.Revoke(keysFile, kB.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // a hang guard, not the bound under test
	for {
		r := e.post(t, question(200), "authorization", "Bearer "+keyB)
		if r.status == 401 {
			wantOpenAIError(t, r, 401, "revoked_api_key")
			break
		}
		if r.status != 200 && r.status != 429 {
			t.Fatalf("before the revocation took effect: %d %s", r.status, r.body)
		}
		if time.Now().After(deadline) {
			t.Fatal("the revoked key still works")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ask(question(201), asA) // other keys go on working
	if served.Load() != served0+1 {
		t.Errorf("the provider served %d requests after the refusals, want only A's", served.Load()-served0)
	}

	m := e.metrics(t)
	for result, want := range map[string]bool{"ok": true, "missing": true, "malformed": true, "revoked": true, "forbidden": true} {
		if got := sum(m["llmproc_auth_total"], map[string]string{"source": "client_keys", "result": result}); (got > 0) != want {
			t.Errorf("llmproc_auth_total{client_keys,%s} = %v", result, got)
		}
	}
	if logs := accessLog.String() + log.String(); strings.Contains(logs, keyB) || strings.Contains(logs, keyA) {
		t.Error("a key was logged")
	}
	for _, pr := range provider.Requests() {
		if got := pr.Header.Get("authorization"); got != "Bearer sk-primary" {
			t.Fatalf("the provider got authorization %q, want the backend's credential", got)
		}
		if got := pr.Header.Get("x-tenant"); got != "" {
			t.Fatalf("the provider got the client's x-tenant: %q", got)
		}
	}
	if !strings.Contains(accessLog.String(), kB.ID) {
		t.Errorf("the access log does not carry key id %s:\n%s", kB.ID, accessLog.String())
	}
}
