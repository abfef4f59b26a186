package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

const rotationConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s, reload_interval: 100ms}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
backends:
  - name: rotating
    schema: openai
    url: "%s"
    credential: {file: "%s"}
    credential_next: {file: "%s"}
  - {name: single, schema: openai, url: "%s", credential: {env: SINGLE_KEY}}
models:
  - {name: gpt-4o-mini, pool: rotating, price: {input: 0.15, output: 0.60}}
  - {name: gpt-4o, pool: single, price: {input: 2.5, output: 10}}
pools:
  - {name: rotating, backends: [{backend: rotating}]}
  - {name: single, backends: [{backend: single}]}
`

// TestKeyRotationWithoutDowntime walks a provider key rotation with the
// keys in a Secret volume (credential and credential_next): the provider
// revokes the old key while llmproc still sends it first, and no client
// request fails. The refused attempt is retried by the proxy on the same
// backend with the other key (the pool has one backend: previous_priorities
// starts over), later requests send the other key at once, the retry
// signal never reaches the client, and only one refused attempt is made.
// A backend with one key gets no retry on 401: the client gets the 401.
func TestKeyRotationWithoutDowntime(t *testing.T) {
	var mu sync.Mutex
	valid := map[string]bool{"sk-old": true, "sk-new": true}
	var sent []string
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	provider.Script(func(r fakeopenai.Request) fakeopenai.Behaviour {
		key := strings.TrimPrefix(r.Header.Get("authorization"), "Bearer ")
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, key)
		if !valid[key] {
			return fakeopenai.Behaviour{Status: 401, ErrorType: "invalid_request_error", ErrorCode: "invalid_api_key", ErrorMessage: "Incorrect API key provided"}
		}
		return fakeopenai.Behaviour{}
	})
	keysSent := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := sent
		sent = nil
		return out
	}
	secret := newKubeVolume(t, map[string]string{"current": "sk-old\n", "next": "sk-new\n"})
	st, accessLog, log := startStack(t, fmt.Sprintf(rotationConfig, provider.URL(), secret.path("current"), secret.path("next"), provider.URL()),
		map[string]string{"SINGLE_KEY": "sk-single"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	ask := func(model string) result {
		t.Helper()
		r := e.post(t, chat(model, false, ""))
		if got := r.header.Get("x-llmproc-credential-retry"); got != "" {
			t.Errorf("the retry signal reached the client: %q", got)
		}
		return r
	}

	if r := ask("gpt-4o-mini"); r.status != 200 || !slices.Equal(keysSent(), []string{"sk-old"}) {
		t.Fatalf("both keys valid: %d %s", r.status, r.body)
	}
	mu.Lock()
	delete(valid, "sk-old") // the provider revokes the old key
	mu.Unlock()
	if r := ask("gpt-4o-mini"); r.status != 200 {
		t.Fatalf("the request after the revocation failed: %d %s", r.status, r.body)
	}
	if got := keysSent(); !slices.Equal(got, []string{"sk-old", "sk-new"}) {
		t.Fatalf("the revocation's attempts sent %v, want the old key refused, then the new", got)
	}
	for range 3 {
		if r := ask("gpt-4o-mini"); r.status != 200 {
			t.Fatalf("after the revocation: %d %s", r.status, r.body)
		}
	}
	if got := keysSent(); !slices.Equal(got, []string{"sk-new", "sk-new", "sk-new"}) {
		t.Fatalf("later requests sent %v, want the new key at once", got)
	}
	m := e.metrics(t)
	for _, c := range []struct {
		name, slot string
		want       float64
	}{
		{"llmproc_backend_credential_requests_total", "credential", 2},
		{"llmproc_backend_credential_requests_total", "credential_next", 4},
		{"llmproc_backend_auth_failures_total", "credential", 1},
	} {
		if got := sum(m[c.name], map[string]string{"backend": "rotating", "slot": c.slot}); got != c.want {
			t.Errorf("%s{backend=rotating,slot=%s} = %v, want %v", c.name, c.slot, got, c.want)
		}
	}
	if !strings.Contains(log.String(), "sha256:") || strings.Contains(log.String(), "sk-old") {
		t.Error("the refused key is not logged by fingerprint alone")
	}

	// One key: the provider's 401 reaches the client, one attempt made.
	r := ask("gpt-4o")
	wantOpenAIError(t, r, 401, "invalid_api_key")
	if got := keysSent(); !slices.Equal(got, []string{"sk-single"}) {
		t.Errorf("a backend with one key: attempts sent %v, want one", got)
	}
}
