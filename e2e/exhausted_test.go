package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// postMessages sends an Anthropic Messages request to the stack at url.
func postMessages(t *testing.T, url, body string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/messages", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	return do(t, req)
}

const messagesBody = `{"model":"gpt-4o-mini","max_tokens":32,"messages":[{"role":"user","content":"Say hello"}]}`

// wantAnthropicError checks an Anthropic error answer and returns its message.
func wantAnthropicError(t *testing.T, r result, status int, typ string) string {
	t.Helper()
	if r.status != status || gjson.GetBytes(r.body, "type").String() != "error" || gjson.GetBytes(r.body, "error.type").String() != typ {
		t.Errorf("got %d %s, want %d and an Anthropic %s", r.status, r.body, status, typ)
	}
	if ct := r.header.Get("content-type"); ct != "application/json" {
		t.Errorf("content-type %q", ct)
	}
	return gjson.GetBytes(r.body, "error.message").String()
}

// TestPoolExhaustedProviderErrors: both backends of pool "cheap" answer 503
// on every try. The client gets one error, pool_exhausted, naming the pool,
// the attempts and the last backend's answer, for JSON and streamed
// requests and for Anthropic Messages clients, and each such request is
// counted once.
func TestPoolExhaustedProviderErrors(t *testing.T) {
	e := start(t)
	down := func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	}
	e.primary.Script(down)
	e.secondary.Script(down)
	for _, stream := range []bool{false, true} {
		r := e.post(t, chat("gpt-4o-mini", stream, ""))
		wantOpenAIError(t, r, 503, "pool_exhausted")
		msg := gjson.GetBytes(r.body, "error.message").String()
		if !strings.HasPrefix(msg, `All backends of pool "cheap" failed (3 attempts); the last, backend "`) || !strings.HasSuffix(msg, `answered 503: overloaded`) {
			t.Errorf("stream=%v: message %q", stream, msg)
		}
		if typ := gjson.GetBytes(r.body, "error.type").String(); typ != "server_error" {
			t.Errorf("stream=%v: type %q", stream, typ)
		}
	}
	msg := wantAnthropicError(t, postMessages(t, e.URL(), messagesBody), 503, "overloaded_error")
	if !strings.HasPrefix(msg, `All backends of pool "cheap" failed (3 attempts)`) {
		t.Errorf("Anthropic client: message %q", msg)
	}
	if n := len(e.primary.Requests()) + len(e.secondary.Requests()); n != 9 {
		t.Errorf("%d provider requests, want 3 attempts × 3 requests", n)
	}
	exhausted := map[string]string{"pool": "cheap"}
	m := e.metricsWhen(t, func(m map[string][]sample) bool { return sum(m["llmproc_pool_exhausted_total"], exhausted) >= 3 })
	if got := sum(m["llmproc_pool_exhausted_total"], exhausted); got != 3 {
		t.Errorf("llmproc_pool_exhausted_total{pool=cheap} = %v, want 3", got)
	}
}

// TestPoolExhaustedOneRecovers: the first backend fails, the second answers:
// a normal 200, nothing exhausted.
func TestPoolExhaustedOneRecovers(t *testing.T) {
	e := start(t)
	e.primary.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	e.secondary.Enqueue(fakeopenai.Behaviour{Content: "still here"})
	r := e.post(t, chat("gpt-4o-mini", false, ""))
	if r.status != 200 || gjson.GetBytes(r.body, "choices.0.message.content").String() != "still here" {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	primary5xx := map[string]string{"backend": "primary", "status_class": "5xx"}
	m := e.metricsWhen(t, func(m map[string][]sample) bool { return sum(m["llmproc_requests_total"], primary5xx) > 0 })
	if got := sum(m["llmproc_pool_exhausted_total"], nil); got != 0 {
		t.Errorf("llmproc_pool_exhausted_total = %v after a recovered request", got)
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

const refusedConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2}
backends:
  - {name: primary, schema: openai, url: "http://%s", credential: {env: PRIMARY_KEY}}
  - {name: secondary, schema: openai, url: "http://%s", credential: {env: SECONDARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - name: cheap
    backends: [{backend: primary}, {backend: secondary}]
`

// TestPoolExhaustedConnectFailures: both backends refuse connections, so
// Envoy answers itself after its last try; the rendered local_reply_config
// makes that pool_exhausted too, naming the pool and the last failure, in
// Anthropic's shape for Messages clients.
func TestPoolExhaustedConnectFailures(t *testing.T) {
	st, _, _ := startStack(t, fmt.Sprintf(refusedConfig, closedPort(t), closedPort(t)), map[string]string{"PRIMARY_KEY": "sk-primary", "SECONDARY_KEY": "sk-secondary"})
	e := &env{Stack: st}

	r := e.post(t, chat("gpt-4o-mini", false, ""))
	wantOpenAIError(t, r, 503, "pool_exhausted")
	msg := gjson.GetBytes(r.body, "error.message").String()
	if !strings.HasPrefix(msg, `Pool "cheap" is exhausted: no backend answered (attempts: 3; last failure: upstream connect error`) ||
		!strings.Contains(msg, "details: upstream_reset_before_response_started") {
		t.Errorf("message %q", msg)
	}
	if typ := gjson.GetBytes(r.body, "error.type").String(); typ != "server_error" {
		t.Errorf("type %q", typ)
	}

	msg = wantAnthropicError(t, postMessages(t, e.URL(), messagesBody), 503, "api_error")
	if !strings.HasPrefix(msg, `Pool "cheap" is exhausted: no backend answered`) {
		t.Errorf("Anthropic client: message %q", msg)
	}

	// Other local replies keep their own bodies: an unknown path is still
	// llmproc's 404, not an exhausted pool.
	req, _ := http.NewRequest(http.MethodPost, e.URL()+"/v1/nope", strings.NewReader(`{}`))
	req.Header.Set("content-type", "application/json")
	wantOpenAIError(t, do(t, req), 404, "unknown_url")
}

// wantExhausted checks a pool_exhausted answer whose last attempt the
// provider answered with status, providerCode (as translated to OpenAI's,
// "" for none) and a message ending in providerMsg.
func wantExhausted(t *testing.T, r result, status int, providerCode, providerMsg string) {
	t.Helper()
	wantOpenAIError(t, r, status, "pool_exhausted")
	said := fmt.Sprintf("answered %d: ", status)
	if providerCode != "" {
		said = fmt.Sprintf("answered %d (%s): ", status, providerCode)
	}
	msg := gjson.GetBytes(r.body, "error.message").String()
	if i := strings.Index(msg, said); i < 0 || !strings.HasSuffix(msg[i+len(said):], providerMsg) {
		t.Errorf("error.message %q, want it to end in %q…%q", msg, said, providerMsg)
	}
}
