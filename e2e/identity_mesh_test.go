package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/stack"
)

// identity.source mesh: the rendered router filter asks for the peer
// certificate's URI SAN; the harness supplies it (a test header stands for
// the client's certificate, and is what a real mTLS listener would have
// verified); identity.principals maps it to the tenant whose budget pays.
const meshConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
identity:
  source: mesh
  principals:
    - {principal: "spiffe://cluster.local/ns/team-a/sa/*", tenant: a}
    - {principal: "spiffe://cluster.local/ns/team-b/sa/agent", tenant: b}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
routing: {tenant_header: x-tenant}
metrics: {tenants: [a, b]}
`

func TestMeshTenant(t *testing.T) {
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	provider.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: "ok", Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}
	})
	const certHeader = "x-test-peer-uri-san" // the harness's stand-in for the TLS handshake
	st, accessLog, log := startStack(t, fmt.Sprintf(meshConfig, provider.URL()), map[string]string{"PRIMARY_KEY": "sk-primary"},
		func(o *stack.Options) {
			o.PeerURISAN = func(r *http.Request) string { return r.Header.Get(certHeader) }
		})
	if st.Real {
		t.Skip("needs the harness's peer identity; a real Envoy needs an mTLS listener")
	}
	e := &env{Stack: st, accessLog: accessLog, log: log}
	const chat = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	if r := e.post(t, chat, certHeader, "spiffe://cluster.local/ns/team-b/sa/agent", "x-tenant", "a"); r.status != 200 {
		t.Fatalf("team-b's agent: %d %s", r.status, r.body)
	}
	wantOpenAIError(t, e.post(t, chat, "x-tenant", "a"), 401, "missing_peer_identity")
	wantOpenAIError(t, e.post(t, chat, certHeader, "spiffe://cluster.local/ns/team-c/sa/x"), 403, "principal_not_allowed")
	m := e.metrics(t)
	if got := sum(m["llmproc_cost_usd_total"], map[string]string{"tenant": "b"}); got != 0.00021 {
		t.Errorf("tenant b's cost %v, want 0.00021", got)
	}
	if got := sum(m["llmproc_cost_usd_total"], map[string]string{"tenant": "a"}); got != 0 {
		t.Errorf("tenant a was charged %v for b's request", got)
	}
	for _, result := range []string{"ok", "missing", "unmapped"} {
		if sum(m["llmproc_auth_total"], map[string]string{"source": "mesh", "result": result}) != 1 {
			t.Errorf("llmproc_auth_total{mesh,%s} != 1", result)
		}
	}
}

// identity.source header with a trusted setter among Envoy's filters: the
// rendered HCM removes a client's tenant header before every filter
// (early_header_mutation), so a client naming tenant a is charged as no
// tenant, never as a.
const trustedHeaderConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
identity: {source: header, trusted_setter: "ext_authz", setter: envoy_filter}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
routing: {tenant_header: x-tenant}
metrics: {tenants: [a]}
`

func TestTrustedHeaderStripsClientCopy(t *testing.T) {
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	provider.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: "ok", Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}
	})
	st, accessLog, log := startStack(t, fmt.Sprintf(trustedHeaderConfig, provider.URL()), map[string]string{"PRIMARY_KEY": "sk-primary"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	if r := e.post(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, "x-tenant", "a"); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	m := e.metrics(t)
	if got := sum(m["llmproc_cost_usd_total"], map[string]string{"tenant": "a"}); got != 0 {
		t.Errorf("a client's x-tenant: a was charged to tenant a (%v)", got)
	}
	if got := sum(m["llmproc_cost_usd_total"], map[string]string{"tenant": "other"}); got != 0.00021 {
		t.Errorf("cost of the request without tenant %v, want 0.00021", got)
	}
	if pr := provider.Requests(); len(pr) != 1 || pr[0].Header.Get("x-tenant") != "" {
		t.Errorf("the provider got x-tenant %q", pr[0].Header.Get("x-tenant"))
	}
}
