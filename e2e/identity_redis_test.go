package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/filter/identity"
	"github.com/llmproc/llmproc/filter/redisconn"
)

// identity.redis: two llmproc replicas (each behind its own proxy) share one
// Redis key store. A key created there works on both, and once revoked it
// stops working on both, each within identity.refresh of the write.
const sharedKeysConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
identity:
  source: client_keys
  redis: {addr: "%s", prefix: "e2e:"}
  refresh: 200ms
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
`

func TestSharedKeysRevokedOnEveryReplica(t *testing.T) {
	srv := redisserver.Start(t)
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	cfg := fmt.Sprintf(sharedKeysConfig, srv.Addr(), provider.URL())
	var replicas []*env
	for range 2 {
		st, accessLog, log := startStack(t, cfg, map[string]string{"PRIMARY_KEY": "sk-primary"})
		replicas = append(replicas, &env{Stack: st, accessLog: accessLog, log: log})
	}
	c := redisconn.New(redisconn.Options{Addr: srv.Addr(), Timeout: time.Second, PoolSize: 1})
	t.Cleanup(func() { c.Close() })
	store := identity.NewRedisStore(c, "e2e:")
	ctx := context.Background()
	key, k, err := store.Create(ctx, identity.Key{Tenant: "a"}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const chat = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	// until polls every replica until each answers want, and returns how
	// long the slowest took (reported, not asserted: the bound is the
	// refresher's ticker; the deadline only guards against a hang).
	until := func(what string, want int, code string) time.Duration {
		t.Helper()
		start := time.Now()
		var slowest time.Duration
		for i, e := range replicas {
			for {
				r := e.post(t, chat, "authorization", "Bearer "+key)
				if r.status == want {
					if code != "" {
						wantOpenAIError(t, r, want, code)
					}
					slowest = max(slowest, time.Since(start))
					break
				}
				if time.Since(start) > 30*time.Second {
					t.Fatalf("replica %d: %s: still %d %s", i, what, r.status, r.body)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return slowest
	}
	t.Logf("a new key works on both replicas after %v", until("the new key", 200, ""))
	if err := store.Revoke(ctx, k.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Logf("the revoked key is refused on both replicas after %v (identity.refresh 200ms)", until("the revoked key", 401, "revoked_api_key"))
	for i, e := range replicas {
		m := e.metrics(t)
		if got := sum(m["llmproc_auth_total"], map[string]string{"source": "client_keys", "result": "revoked"}); got < 1 {
			t.Errorf("replica %d: llmproc_auth_total{client_keys,revoked} = %v", i, got)
		}
	}
}
