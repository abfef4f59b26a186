package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// identity.source jwt through the rendered bootstrap: Envoy's jwt_authn
// (played by the harness, e2e/harness/jwt.go) verifies the token against the
// JWKS file and hands the payload to llmproc as dynamic metadata. The
// tenant claim decides whose budget pays and whose cache is read; a
// client's x-tenant header changes nothing, and a missing or bad token is
// refused by Envoy, in the client API's error shape, before llmproc runs.
const jwtConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
identity:
  source: jwt
  jwt: {issuer: "https://id.example.test", audiences: [llmproc], jwks_file: %s, tenant_claim: org.tenant}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
routing: {tenant_header: x-tenant} # ignored under jwt, and removed
metrics: {tenants: [a, b]}
cache: {mode: deterministic}
budgets:
  - {name: daily, scope: tenant, window: day, limit_usd: "0.0005"}
`

func TestJWTTenant(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	token := func(tenant string, exp time.Time) string {
		b, _ := json.Marshal(map[string]any{"iss": "https://id.example.test", "aud": "llmproc", "sub": "u-" + tenant,
			"exp": exp.Unix(), "org": map[string]any{"tenant": tenant}})
		jws, err := signer.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
	var served atomic.Int64
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	provider.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: fmt.Sprintf("answer-%d", served.Add(1)), Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}
	})
	st, accessLog, log := startStack(t, fmt.Sprintf(jwtConfig, jwksFile, provider.URL()), map[string]string{"PRIMARY_KEY": "sk-primary"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	hour := time.Now().Add(time.Hour)
	asA := []string{"authorization", "Bearer " + token("a", hour)}
	asBSpoofingA := []string{"authorization", "Bearer " + token("b", hour), "x-tenant", "a"}
	content := func(r result) string { return gjson.GetBytes(r.body, "choices.0.message.content").String() }
	question := func(n int) string {
		return fmt.Sprintf(`{"model":"gpt-4o-mini","temperature":0,"max_tokens":100,"messages":[{"role":"user","content":"Question %d"}]}`, n)
	}
	ok := func(r result) result {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		return r
	}

	// Cache: A's answer is A's; B naming tenant a in a header gets its own.
	first := content(ok(e.post(t, question(0), asA...)))
	if again := ok(e.post(t, question(0), asA...)); content(again) != first || again.header.Get("x-llmproc-cache") != "hit" {
		t.Fatalf("tenant A's repeat: %q (cache %q)", content(again), again.header.Get("x-llmproc-cache"))
	}
	if spoofed := ok(e.post(t, question(0), asBSpoofingA...)); content(spoofed) == first {
		t.Fatalf("B's token with x-tenant: a got A's cached answer")
	}
	// Budget: B pays for B's requests until its budget runs out; A's stands.
	bServed, refused := 1, false
	for i := 1; i <= 10 && !refused; i++ {
		r := e.post(t, question(i), asBSpoofingA...)
		switch r.status {
		case 200:
			bServed++
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
	ok(e.post(t, question(100), asA...))
	// Each request costs 1000×0.15 + 100×0.60 = 210 µ$, charged to the
	// token's tenant (A: two served by the provider, one cache hit).
	m := e.metrics(t)
	for tenant, n := range map[string]int{"a": 2, "b": bServed} {
		got := sum(m["llmproc_cost_usd_total"], map[string]string{"tenant": tenant})
		if want := float64(n) * 0.00021; math.Abs(got-want) > 1e-12 {
			t.Errorf("cost of tenant %s = %v, want %v (%d requests)", tenant, got, want, n)
		}
	}

	// Envoy refuses what it cannot verify, in the client's shape; the
	// provider sees none of it.
	served0 := served.Load()
	for _, tc := range []struct {
		name, auth, code string
		status           int
	}{
		{"missing", "", "invalid_jwt", 401},
		{"expired", "Bearer " + token("a", time.Now().Add(-time.Hour)), "invalid_jwt", 401},
		{"forged", "Bearer " + token("a", hour)[:20] + "x" + token("a", hour)[21:], "invalid_jwt", 401},
		{"an llmproc key is no token", "Bearer llmp_0123456789ab_" + strings.Repeat("0", 64), "invalid_jwt", 401},
	} {
		hdr := []string{"x-tenant", "a"}
		if tc.auth != "" {
			hdr = append(hdr, "authorization", tc.auth)
		}
		r := e.post(t, question(300), hdr...)
		wantOpenAIError(t, r, tc.status, tc.code)
		if !strings.HasPrefix(r.header.Get("www-authenticate"), "Bearer realm=") {
			t.Errorf("%s: www-authenticate %q", tc.name, r.header.Get("www-authenticate"))
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.URL()+"/v1/messages", strings.NewReader(`{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("content-type", "application/json")
	if r := do(t, req); r.status != 401 || gjson.GetBytes(r.body, "error.type").String() != "authentication_error" ||
		!strings.Contains(gjson.GetBytes(r.body, "error.message").String(), "Jwt is missing") {
		t.Errorf("Anthropic client without a token: %d %s", r.status, r.body)
	}
	if served.Load() != served0 {
		t.Errorf("the provider served %d refused requests", served.Load()-served0)
	}

	for _, pr := range provider.Requests() {
		if got := pr.Header.Get("authorization"); got != "Bearer sk-primary" {
			t.Fatalf("the provider got authorization %q, want the backend's credential", got)
		}
		if got := pr.Header.Get("x-tenant"); got != "" {
			t.Fatalf("the provider got the client's x-tenant: %q", got)
		}
	}
	if got := sum(m["llmproc_auth_total"], map[string]string{"source": "jwt", "result": "ok"}); got < 3 {
		t.Errorf("llmproc_auth_total{jwt,ok} = %v", got)
	}
	if !strings.Contains(accessLog.String(), `"tenant":"b"`) {
		t.Errorf("the access log does not carry tenant b:\n%s", accessLog.String())
	}
}
