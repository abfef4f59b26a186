package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/filter/identity"
)

// A client key's own access and limits, and cache groups, through the
// harness: keys in a file, budgets and the cache's shared tier in Redis.
const keyAccessConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s, reload_interval: 100ms}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
identity:
  source: client_keys
  keys_file: %s
  tenants:
    - {name: a, models: ["gpt-*"], cache_group: research}
    - {name: b, cache_group: research}
    - {name: c}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
  - {name: gpt-4o, pool: cheap, price: {input: 2.5, output: 10}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
routing: {tenant_header: x-tenant} # read by the header source only: removed here
cache:
  mode: deterministic
  redis: {addr: "%s", timeout: 500ms}
budget_store: {redis: {addr: "%s", timeout: 500ms}, on_error: closed}
`

// keyAccessStack starts llmproc replicas sharing one keys file and one Redis
// (cache tier and budget store); every provider answer is unique, so a
// cache hit cannot go unseen.
func keyAccessStack(t *testing.T, replicas int) (keysFile string, envs []*env, served *atomic.Int64) {
	t.Helper()
	keysFile = filepath.Join(t.TempDir(), "keys.json")
	if _, _, err := identity.Create(keysFile, identity.Key{Tenant: "c"}, time.Now(), nil); err != nil { // the file must exist
		t.Fatal(err)
	}
	srv := redisserver.Start(t)
	served = &atomic.Int64{}
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	provider.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: fmt.Sprintf("answer-%d", served.Add(1)), Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}
	})
	cfg := fmt.Sprintf(keyAccessConfig, keysFile, provider.URL(), srv.Addr(), srv.Addr())
	for range replicas {
		st, accessLog, log := startStack(t, cfg, map[string]string{"PRIMARY_KEY": "sk-primary"})
		envs = append(envs, &env{Stack: st, accessLog: accessLog, log: log})
	}
	return keysFile, envs, served
}

func newKey(t *testing.T, file string, k identity.Key) (string, identity.Key) {
	t.Helper()
	key, created, err := identity.Create(file, k, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return key, created
}

// A key with a model list is refused a model its tenant may use; a key's
// USD budget stops it while another key of the same tenant goes on.
func TestClientKeyLimits(t *testing.T) {
	file, envs, _ := keyAccessStack(t, 1)
	e := envs[0]
	narrow, kn := newKey(t, file, identity.Key{Tenant: "a", Models: []string{"gpt-4o-mini"}})
	// Each request costs 1000×0.15 + 100×0.60 = 210 µ$: the 500 µ$ day
	// budget lets two or three through (the reservation is the worst case,
	// the settlement the provider's usage), never ten.
	capped, kc := newKey(t, file, identity.Key{Tenant: "a", Budget: &identity.Budget{Window: "day", LimitUSD: "0.0005"}})
	other, _ := newKey(t, file, identity.Key{Tenant: "a"})
	bearer := func(k string) []string { return []string{"authorization", "Bearer " + k} }
	// The keys file is re-read every 100ms: wait until the new keys work.
	deadline := time.Now().Add(30 * time.Second) // a hang guard
	for e.post(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ready?"}]}`, bearer(other)...).status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the new keys never worked")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Model list: the tenant allows gpt-*, the key gpt-4o-mini only.
	const flagship = `{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	r := e.post(t, flagship, bearer(narrow)...)
	wantOpenAIError(t, r, 403, "model_not_allowed")
	if msg := gjson.GetBytes(r.body, "error.message").String(); !strings.Contains(msg, "gpt-4o") || !strings.Contains(msg, kn.ID) || !strings.Contains(msg, "key's own limit") {
		t.Errorf("the refusal does not name the model and the key: %s", msg)
	}
	if r := e.post(t, flagship, bearer(other)...); r.status != 200 {
		t.Fatalf("the tenant's other key, gpt-4o: %d %s", r.status, r.body)
	}
	if r := e.post(t, strings.Replace(flagship, "gpt-4o", "gpt-4o-mini", 1), bearer(narrow)...); r.status != 200 {
		t.Fatalf("the narrow key, its own model: %d %s", r.status, r.body)
	}

	// Budget: the capped key runs out; the tenant's other key goes on.
	question := func(n int) string {
		return fmt.Sprintf(`{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"Question %d"}]}`, n)
	}
	refusedAt := 0
	for i := 1; i <= 10 && refusedAt == 0; i++ {
		switch r := e.post(t, question(i), bearer(capped)...); r.status {
		case 200:
		case 429:
			wantOpenAIError(t, r, 429, "budget_exceeded")
			if msg := gjson.GetBytes(r.body, "error.message").String(); !strings.Contains(msg, kc.ID) || strings.Contains(string(r.body), capped) {
				t.Fatalf("the 429 must name the key id %s, never the key: %s", kc.ID, r.body)
			}
			if r.header.Get("retry-after") == "" {
				t.Error("no retry-after")
			}
			refusedAt = i
		default:
			t.Fatalf("capped key, request %d: %d %s", i, r.status, r.body)
		}
	}
	if refusedAt == 0 || refusedAt > 4 {
		t.Fatalf("the key's 500 µ$ budget refused request %d (0: never), want the third or fourth", refusedAt)
	}
	for i := range 3 {
		if r := e.post(t, question(100+i), bearer(other)...); r.status != 200 {
			t.Fatalf("the tenant's other key after the capped key ran out: %d %s", r.status, r.body)
		}
	}
	if !accessLogHas(e, `"response_code":403`, `"key_id":"`+kn.ID+`"`, `"tenant":"a"`) {
		t.Errorf("the access log of the 403 does not carry the tenant and key id %s:\n%s", kn.ID, e.accessLog.String())
	}
	if logs := e.accessLog.String() + e.log.String(); strings.Contains(logs, capped) || strings.Contains(logs, narrow) {
		t.Error("a key was logged")
	}
}

// identity.tenants[].cache_group: tenants a and b share cached answers,
// tenant c (outside the group) never gets them, on the replica that stored
// them (the local tier) nor on another (the Redis tier), x-tenant or not.
func TestCacheGroups(t *testing.T) {
	file, envs, served := keyAccessStack(t, 2)
	keyA, _ := newKey(t, file, identity.Key{Tenant: "a"})
	keyB, kB := newKey(t, file, identity.Key{Tenant: "b"})
	keyC, _ := newKey(t, file, identity.Key{Tenant: "c"})
	ask := func(e *env, n int, key string, hdr ...string) (content, cache string) {
		t.Helper()
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"Shared question %d"}]}`, n)
		r := e.post(t, body, append([]string{"authorization", "Bearer " + key}, hdr...)...)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		return gjson.GetBytes(r.body, "choices.0.message.content").String(), r.header.Get("x-llmproc-cache")
	}
	deadline := time.Now().Add(30 * time.Second) // hang guards, not bounds under test
	for _, e := range envs {
		for e.post(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ready?"}]}`, "authorization", "Bearer "+keyC).status != 200 {
			if time.Now().After(deadline) {
				t.Fatal("the new keys never worked")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	local, remote := envs[0], envs[1]

	// The local tier: A stores, B (same group) hits, C misses.
	first, _ := ask(local, 1, keyA)
	if got, cache := ask(local, 1, keyB); got != first || cache != "hit" {
		t.Fatalf("tenant b (a's group) got %q (cache %s), want a's %q as a hit", got, cache, first)
	}
	if !accessLogHas(local, "llmproc_cache_hit", `"key_id":"`+kB.ID+`"`) {
		t.Errorf("the access log of b's hit does not carry its key id %s:\n%s", kB.ID, local.accessLog.String())
	}
	// (C's first ask is a miss and stores C's own answer, which C's later
	// asks may hit: they must never be the group's.)
	for i, hdr := range [][]string{nil, {"x-tenant", "a"}, {"x-tenant", "b"}} {
		if got, cache := ask(local, 1, keyC, hdr...); got == first || i == 0 && cache == "hit" {
			t.Fatalf("tenant c (outside the group, headers %q) got the group's %q (cache %s)", hdr, got, cache)
		}
	}
	// C's own answer is C's: A and B do not get it, C does.
	ask(local, 2, keyC)
	if _, cache := ask(local, 2, keyC); cache != "hit" {
		t.Fatalf("tenant c's repeat: cache %s, want its own hit", cache)
	}
	own, _ := ask(local, 2, keyC)
	if got, cache := ask(local, 2, keyA); got == own || cache == "hit" {
		t.Fatalf("tenant a got tenant c's answer %q (cache %s)", got, cache)
	}

	// The Redis tier: A stores on one replica; B finds it on the other.
	second, _ := ask(local, 3, keyA)
	for {
		got, cache := ask(remote, 3, keyB)
		if cache == "hit" {
			if got != second {
				t.Fatalf("tenant b on the other replica got %q, want the group's %q", got, second)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other replica never found the group's entry in Redis")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The entry is in Redis now; C on the other replica still misses.
	before := served.Load()
	for i, hdr := range [][]string{nil, {"x-tenant", "a"}} {
		if got, cache := ask(remote, 3, keyC, hdr...); got == second || i == 0 && cache == "hit" {
			t.Fatalf("tenant c on the other replica (headers %q) got the group's %q (cache %s)", hdr, got, cache)
		}
	}
	if served.Load() == before {
		t.Fatal("tenant c's requests were not served by the provider")
	}
}

// accessLogHas reports whether one access-log line holds every part.
func accessLogHas(e *env, parts ...string) bool {
	for line := range strings.SplitSeq(e.accessLog.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
