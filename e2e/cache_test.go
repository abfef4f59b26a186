package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/redisserver"
)

// The response cache's conformance suite: what must share an entry, what must
// not, what is never stored, and replay that a client cannot tell apart from
// the provider's own answer.

const cacheConfig = `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60, cached_input: 0.075}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
cache:
  mode: deterministic
  ttl: %s
  tenant_header: x-tenant
%s`

type cacheEnv struct {
	*env
	provider *fakeopenai.Server
	served   atomic.Int64 // answers the provider gave
}

// startCache runs llmproc with the cache on; every provider answer is unique
// ("answer-N"), so a wrong hit cannot go unnoticed.
func startCache(t *testing.T, ttl, redisAddr string, provider *fakeopenai.Server) *cacheEnv {
	t.Helper()
	c := &cacheEnv{provider: provider}
	if c.provider == nil {
		c.provider = fakeopenai.New(fakeopenai.Options{})
		t.Cleanup(func() { c.provider.Close() })
		c.provider.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
			n := c.served.Add(1)
			return fakeopenai.Behaviour{Content: fmt.Sprintf("answer-%d is here", n), Usage: fakeopenai.Usage{Prompt: 20, Completion: 4}}
		})
	}
	redis := ""
	if redisAddr != "" {
		redis = fmt.Sprintf("  redis: {addr: %q, timeout: 200ms}\n", redisAddr)
	}
	st, accessLog, log := startStack(t, fmt.Sprintf(cacheConfig, c.provider.URL(), ttl, redis), map[string]string{"PRIMARY_KEY": "sk-primary"})
	c.env = &env{Stack: st, accessLog: accessLog, log: log}
	return c
}

func cacheReq(extra string) string {
	return `{"model":"gpt-4o-mini","temperature":0,` + extra + `"messages":[{"role":"user","content":"What is 2+2?"}]}`
}

func (c *cacheEnv) ask(t *testing.T, body string, hdr ...string) (result, string) {
	t.Helper()
	r := c.post(t, body, hdr...)
	if r.status != 200 || r.err != nil {
		t.Fatalf("status %d err %v: %s", r.status, r.err, r.body)
	}
	text := gjson.GetBytes(r.body, "choices.0.message.content").String()
	if strings.HasPrefix(r.header.Get("content-type"), "text/event-stream") {
		var b strings.Builder
		for _, ev := range sseEvents(t, r.body) {
			b.WriteString(gjson.Get(ev, "choices.0.delta.content").String())
		}
		text = b.String()
	}
	return r, text
}

func TestCacheSharesAndSeparates(t *testing.T) {
	c := startCache(t, "1h", "", nil)
	base := cacheReq("")
	first, text := c.ask(t, base)
	if first.header.Get("x-llmproc-cache") != "miss" {
		t.Fatalf("first request: x-llmproc-cache %q", first.header.Get("x-llmproc-cache"))
	}
	same := []struct{ name, body string }{
		{"key order and whitespace", `{ "messages":[{"content":"What is 2+2?","role":"user"}], "temperature":0.0, "model":"gpt-4o-mini" }`},
		{"number spelling", strings.Replace(base, `"temperature":0`, `"temperature":0e0`, 1)},
		{"stream flag", cacheReq(`"stream":false,`)},
		{"a stream, replayed from the JSON answer", cacheReq(`"stream":true,`)},
	}
	for _, tt := range same {
		r, got := c.ask(t, tt.body)
		if r.header.Get("x-llmproc-cache") != "hit" || got != text {
			t.Errorf("%s: cache %q, text %q, want a hit with %q", tt.name, r.header.Get("x-llmproc-cache"), got, text)
		}
	}
	different := []struct{ name, body string }{
		{"seed", cacheReq(`"seed":1,`)},
		{"max_tokens", cacheReq(`"max_tokens":5,`)},
		{"stop", cacheReq(`"stop":["\n"],`)},
		{"top_p", cacheReq(`"top_p":0.5,`)},
		{"n", cacheReq(`"n":1,`)},
		{"presence_penalty", cacheReq(`"presence_penalty":0.1,`)},
		{"logit_bias", cacheReq(`"logit_bias":{"50256":-100},`)},
		{"response_format", cacheReq(`"response_format":{"type":"json_object"},`)},
		{"tools", cacheReq(`"tools":[{"type":"function","function":{"name":"add","parameters":{"type":"object"}}}],`)},
		{"tool_choice", cacheReq(`"tool_choice":"none",`)},
		{"message text", strings.Replace(base, "2+2", "2+3", 1)},
		{"image", `{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":[{"type":"text","text":"What is 2+2?"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`},
		{"system message", `{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"What is 2+2?"}]}`},
	}
	for _, tt := range different {
		r, got := c.ask(t, tt.body)
		if r.header.Get("x-llmproc-cache") == "hit" || got == text {
			t.Errorf("%s: shared an entry with the base request (cache %q, text %q)", tt.name, r.header.Get("x-llmproc-cache"), got)
		}
	}
	// Tenants never share.
	a, textA := c.ask(t, base, "x-tenant", "team-a")
	b, textB := c.ask(t, base, "x-tenant", "team-b")
	if a.header.Get("x-llmproc-cache") != "miss" || b.header.Get("x-llmproc-cache") != "miss" || textA == textB || textA == text {
		t.Errorf("tenants: a %q %q, b %q %q", a.header.Get("x-llmproc-cache"), textA, b.header.Get("x-llmproc-cache"), textB)
	}
	if r, got := c.ask(t, base, "x-tenant", "team-a"); r.header.Get("x-llmproc-cache") != "hit" || got != textA {
		t.Errorf("tenant a's own entry: %q %q", r.header.Get("x-llmproc-cache"), got)
	}
	// Not deterministic, so not cached by default.
	if r, _ := c.ask(t, `{"model":"gpt-4o-mini","temperature":0.8,"messages":[{"role":"user","content":"What is 2+2?"}]}`); r.header.Get("x-llmproc-cache") != "bypass" {
		t.Errorf("temperature 0.8: %q", r.header.Get("x-llmproc-cache"))
	}
	m := c.metrics(t)
	if sum(m["llmproc_cache_saved_usd_total"], nil) <= 0 {
		t.Error("hits saved nothing in llmproc_cache_saved_usd_total")
	}
}

func TestCacheNeverStoresFailures(t *testing.T) {
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	c := startCache(t, "1h", "", provider)
	cases := []struct {
		name string
		b    fakeopenai.Behaviour
		body string
	}{
		{"500", fakeopenai.Behaviour{Status: 500}, cacheReq(`"seed":500,`)},
		{"429", fakeopenai.Behaviour{Status: 429, ErrorType: "rate_limit_error"}, cacheReq(`"seed":429,`)},
		{"cut stream", fakeopenai.Behaviour{Content: "a b c d e f", CutAfter: 3}, cacheReq(`"seed":7,"stream":true,`)},
	}
	for _, tt := range cases {
		provider.Enqueue(tt.b)
		c.post(t, tt.body)
		provider.Enqueue(fakeopenai.Behaviour{Content: "good answer", Usage: fakeopenai.Usage{Prompt: 3, Completion: 2}})
		r := c.post(t, tt.body)
		if r.status != 200 || r.header.Get("x-llmproc-cache") == "hit" {
			t.Errorf("%s was stored: status %d cache %q %s", tt.name, r.status, r.header.Get("x-llmproc-cache"), r.body)
		}
	}
}

func TestCacheStreamingReplayAndToolCalls(t *testing.T) {
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	c := startCache(t, "1h", "", provider)
	answer := `{"id":"chatcmpl-t","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"add","arguments":"{\"a\":2,\"b\":2}"}},{"id":"call_2","type":"function","function":{"name":"log","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":30,"completion_tokens":9,"total_tokens":39}}`
	provider.Enqueue(fakeopenai.Behaviour{Body: []byte(answer)})
	body := cacheReq(`"tools":[{"type":"function","function":{"name":"add","parameters":{"type":"object"}}}],`)
	c.ask(t, body)
	r, _ := c.ask(t, body)
	if r.header.Get("x-llmproc-cache") != "hit" || gjson.GetBytes(r.body, "choices.0.message.tool_calls.1.function.name").String() != "log" ||
		gjson.GetBytes(r.body, "choices.0.message.tool_calls.0.function.arguments").String() != `{"a":2,"b":2}` {
		t.Fatalf("JSON hit: %q %s", r.header.Get("x-llmproc-cache"), r.body)
	}
	// The same entry as a stream: strict SSE, tool calls reassembled exactly.
	s := c.post(t, strings.Replace(body, `"temperature":0,`, `"temperature":0,"stream":true,"stream_options":{"include_usage":true},`, 1))
	events := sseEvents(t, s.body)
	if s.header.Get("x-llmproc-cache") != "hit" || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream hit %q: %v", s.header.Get("x-llmproc-cache"), events)
	}
	args := map[int64]string{}
	names := map[int64]string{}
	finish, usage := "", int64(0)
	for _, ev := range events[:len(events)-1] {
		for _, tc := range gjson.Get(ev, "choices.0.delta.tool_calls").Array() {
			i := tc.Get("index").Int()
			names[i] += tc.Get("function.name").String()
			args[i] += tc.Get("function.arguments").String()
		}
		if f := gjson.Get(ev, "choices.0.finish_reason").String(); f != "" {
			finish = f
		}
		if u := gjson.Get(ev, "usage.prompt_tokens"); u.Exists() {
			usage = u.Int()
		}
	}
	if names[0] != "add" || args[0] != `{"a":2,"b":2}` || names[1] != "log" || args[1] != "{}" || finish != "tool_calls" || usage != 30 {
		t.Errorf("replayed stream: names %v args %v finish %q usage %d", names, args, finish, usage)
	}
	if len(provider.Requests()) != 1 {
		t.Errorf("provider saw %d requests, want 1", len(provider.Requests()))
	}
}

func TestCacheTTLAndCacheControl(t *testing.T) {
	c := startCache(t, "1s", "", nil)
	base := cacheReq("")
	_, text := c.ask(t, base)
	if r, got := c.ask(t, base); r.header.Get("x-llmproc-cache") != "hit" || got != text {
		t.Fatalf("no hit within the TTL: %q", r.header.Get("x-llmproc-cache"))
	}
	if r, _ := c.ask(t, base, "cache-control", "no-cache"); r.header.Get("x-llmproc-cache") != "bypass" {
		t.Errorf("no-cache: %q", r.header.Get("x-llmproc-cache"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, got := c.ask(t, base)
		if r.header.Get("x-llmproc-cache") != "hit" {
			if got == text {
				t.Errorf("an expired entry's text was served")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry never expired")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestCacheSharedRedis(t *testing.T) {
	redis := redisserver.Start(t)
	a := startCache(t, "1h", redis.Addr(), nil)
	b := startCache(t, "1h", redis.Addr(), a.provider)
	base := cacheReq(`"seed":42,`)
	_, text := a.ask(t, base)
	// The store to Redis happens just after the answer; the second replica finds it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, got := b.ask(t, base)
		if r.header.Get("x-llmproc-cache") == "hit" {
			if got != text {
				t.Fatalf("replica b served %q, want %q", got, text)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica b never saw replica a's entry")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Redis dies: requests go on, uncached where the local tier has nothing.
	redis.Kill()
	for i := range 3 {
		r, _ := b.ask(t, cacheReq(fmt.Sprintf(`"seed":%d,`, 100+i)))
		if r.status != http.StatusOK {
			t.Fatalf("request failed with Redis down: %d", r.status)
		}
	}
	if n := sum(b.metrics(t)["llmproc_cache_errors_total"], nil); n == 0 {
		t.Error("Redis errors were not counted")
	}
}
