package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/redisserver"
)

// The semantic cache tier across replicas: two llmproc replicas, each with
// its own Envoy-side harness, share one Redis. Embeddings come from the
// fake provider's POST /v1/embeddings (fake.Vector: the stand-in embedding,
// a hashed character-trigram bag, deterministic per text), which llmproc
// calls itself, out of band.

const semanticCacheConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
  - {name: text-embedding-3-small, kind: embedding, pool: emb, price: {input: 0.02}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
  - {name: emb, backends: [{backend: primary}]}
routes:
  - {name: faq, match: {model: gpt-4o-mini}, pool: cheap, cache: {mode: deterministic, match: semantic}}
cache:
  ttl: 1h
  redis: {addr: %q, timeout: 500ms}
  semantic: {embeddings_pool: emb, dimensions: 256, threshold: 0.9, timeout: 2s}
`

func semanticReq(user string) string {
	return fmt.Sprintf(`{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"system","content":"You answer for ACME support."},{"role":"user","content":%q}]}`, user)
}

func TestSemanticCacheAcrossReplicas(t *testing.T) {
	redis := redisserver.Start(t)
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	var chats atomic.Int64
	provider.Script(func(r fakeopenai.Request) fakeopenai.Behaviour {
		if strings.HasSuffix(r.Path, "/embeddings") {
			return fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 8}}
		}
		n := chats.Add(1)
		return fakeopenai.Behaviour{Content: fmt.Sprintf("answer-%d is here", n), Usage: fakeopenai.Usage{Prompt: 20, Completion: 4}}
	})
	start := func() *env {
		st, accessLog, log := startStack(t, fmt.Sprintf(semanticCacheConfig, provider.URL(), redis.Addr()), map[string]string{"PRIMARY_KEY": "sk-primary"})
		return &env{Stack: st, accessLog: accessLog, log: log}
	}
	a, b := start(), start()
	ask := func(e *env, user string) (cacheHdr, sim, id, text string) {
		t.Helper()
		r := e.post(t, semanticReq(user))
		if r.status != 200 || r.err != nil {
			t.Fatalf("status %d err %v: %s", r.status, r.err, r.body)
		}
		return r.header.Get("x-llmproc-cache"), r.header.Get("x-llmproc-cache-similarity"), r.header.Get("x-llmproc-cache-request-id"),
			gjson.GetBytes(r.body, "choices.0.message.content").String()
	}
	r := a.post(t, semanticReq("What is your refund policy for orders over 50 dollars?"))
	if r.status != 200 || r.header.Get("x-llmproc-cache") != "miss" {
		t.Fatalf("first request through replica a: %d %q %s", r.status, r.header.Get("x-llmproc-cache"), r.body)
	}
	firstID := r.header.Get("x-request-id") // "" when the harness does not echo it
	firstText := gjson.GetBytes(r.body, "choices.0.message.content").String()
	// The entry and its record reach Redis just after the answer: replica b
	// finds them once they are there.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, sim, id, text := ask(b, "what's your refund policy for orders over 50 dollars")
		if c == "hit-semantic" {
			if text != firstText || id == "" || (firstID != "" && id != firstID) || !strings.HasPrefix(sim, "0.") && sim != "1.00" {
				t.Fatalf("replica b's semantic hit: text %q (want %q), request id %q (want %q), similarity %q", text, firstText, id, firstID, sim)
			}
			t.Logf("replica b served replica a's answer: similarity %s, request id %s", sim, id)
			break
		}
		if c != "miss" {
			t.Fatalf("replica b: x-llmproc-cache %q", c)
		}
		if time.Now().After(deadline) {
			t.Fatal("replica b never found replica a's entry semantically")
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := chats.Load()
	// A changed number is a different question: it goes to the provider.
	if c, _, _, text := ask(b, "What is your refund policy for orders over 500 dollars?"); c != "miss" || text == firstText {
		t.Errorf("number changed: x-llmproc-cache %q, text %q", c, text)
	}
	if chats.Load() != before+1 {
		t.Errorf("the number-changed request did not reach the provider")
	}
	// The embeddings went through the provider's embeddings API.
	var embeds int
	for _, req := range provider.Requests() {
		if strings.HasSuffix(req.Path, "/v1/embeddings") {
			embeds++
			if gjson.GetBytes(req.Body, "model").Str != "text-embedding-3-small" || gjson.GetBytes(req.Body, "dimensions").Int() != 256 {
				t.Errorf("embeddings request %s", req.Body)
			}
		}
	}
	if embeds == 0 {
		t.Error("no embeddings request reached the provider")
	}
	if n := sum(b.metrics(t)["llmproc_cache_requests_total"], map[string]string{"result": "hit-semantic"}); n < 1 {
		t.Errorf("hit-semantic not counted on replica b: %v", n)
	}
}
