package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/redisserver"
)

// feedbackConfig: pool chain is [primary, secondary]; feedback.window is
// short so that the test sees a request leave it.
const feedbackConfig = `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
feedback: {window: %s}
cache:
  mode: "off"
  tenant_header: x-tenant
  redis: {addr: %q, timeout: 2s}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
  - {name: secondary, schema: openai, url: "%s", credential: {env: SECONDARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: chain, price: {input: 0.15, output: 0.60}}
pools:
  - {name: chain, backends: [{backend: primary}, {backend: secondary, model: gpt-4o-mini-fallback}]}
routes:
  - {name: by-model, match: {model: gpt-4o-mini}, pool: chain}
`

// feedbackWindow is long enough for the steps within it on a loaded
// machine, short enough to wait out.
const feedbackWindow = 4 * time.Second

// TestFeedbackAcrossReplicas: two replicas share Redis. A request through
// replica A fails over from primary to secondary; feedback for it through
// replica B is accepted and counted on B against the model, backend and
// route that answered; another tenant's feedback for it is 404, a second
// feedback 409 (on either replica), and a request older than
// feedback.window is 404.
func TestFeedbackAcrossReplicas(t *testing.T) {
	redis := redisserver.Start(t)
	primary := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Status: 503}})
	secondary := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 10, Completion: 4}}})
	t.Cleanup(func() { primary.Close(); secondary.Close() })
	replica := func() *env {
		st, accessLog, log := startStack(t, fmt.Sprintf(feedbackConfig, feedbackWindow, redis.Addr(), primary.URL(), secondary.URL()),
			map[string]string{"PRIMARY_KEY": "sk-primary", "SECONDARY_KEY": "sk-secondary"})
		return &env{Stack: st, accessLog: accessLog, log: log}
	}
	a, b := replica(), replica()

	ask := func() string {
		t.Helper()
		r := a.post(t, chat("gpt-4o-mini", false, ""), "x-tenant", "team-a")
		id := r.header.Get("x-llmproc-request-id")
		if r.status != http.StatusOK || id == "" || r.header.Get("x-llmproc-backend") != "secondary" {
			t.Fatalf("through replica a: %d %v %s", r.status, r.header, r.body)
		}
		return id
	}
	start := time.Now()
	id, late := ask(), ask()

	// The record reaches Redis just after the answer: a 404 until then.
	var r result
	for deadline := time.Now().Add(feedbackWindow / 2); ; time.Sleep(20 * time.Millisecond) {
		r = b.feedback(t, "team-a", fmt.Sprintf(`{"request_id":%q,"score":5,"label":"helpful"}`, id))
		if r.status != http.StatusNotFound || time.Now().After(deadline) {
			break
		}
	}
	if r.status != http.StatusOK || gjson.GetBytes(r.body, "request_id").Str != id || gjson.GetBytes(r.body, "backend").Str != "secondary" ||
		gjson.GetBytes(r.body, "model").Str != "gpt-4o-mini-fallback" || gjson.GetBytes(r.body, "route").Str != "by-model" ||
		r.header.Get("x-llmproc-request-id") == "" {
		t.Fatalf("feedback through replica b: %d %v %s", r.status, r.header, r.body)
	}
	wantOpenAIError(t, b.feedback(t, "team-b", fmt.Sprintf(`{"request_id":%q,"score":1}`, id)), http.StatusNotFound, "request_not_found")
	wantOpenAIError(t, a.feedback(t, "team-a", fmt.Sprintf(`{"request_id":%q,"score":1}`, id)), http.StatusConflict, "feedback_exists")
	wantOpenAIError(t, b.feedback(t, "team-a", fmt.Sprintf(`{"request_id":%q,"score":1}`, id)), http.StatusConflict, "feedback_exists")
	bad := b.feedback(t, "team-a", fmt.Sprintf(`{"request_id":%q,"score":0}`, late))
	wantOpenAIError(t, bad, http.StatusBadRequest, "integer_below_min_value")
	if p := gjson.GetBytes(bad.body, "error.param").Str; p != "score" {
		t.Errorf("400 names param %q, want score", p)
	}
	if time.Since(start) >= feedbackWindow {
		t.Fatalf("the steps within the window took %v: raise feedbackWindow", time.Since(start))
	}

	m := b.metrics(t)
	labels := map[string]string{"model": "gpt-4o-mini-fallback", "backend": "secondary", "route": "by-model", "class": "", "score_bucket": "5"}
	if got, all := sum(m["llmproc_feedback_total"], labels), sum(m["llmproc_feedback_total"], nil); got != 1 || all != 1 {
		t.Errorf("replica b llmproc_feedback_total%v = %v (all: %v), want 1", labels, got, all)
	}
	if h := m["llmproc_feedback_score"]; len(h) != 1 || h[0].count != 1 || h[0].value != 5 || h[0].labels["model"] != "gpt-4o-mini-fallback" || h[0].labels["route"] != "by-model" {
		t.Errorf("replica b llmproc_feedback_score %+v", h)
	}
	if n := sum(a.metrics(t)["llmproc_feedback_total"], nil); n != 0 {
		t.Errorf("replica a counted %v feedback", n)
	}
	// Replica a answered both requests through the fallback backend.
	if n := sum(a.metrics(t)["llmproc_answers_total"], map[string]string{"route": "by-model", "pool": "chain", "backend": "secondary", "priority": "1"}); n != 2 {
		t.Errorf("llmproc_answers_total of the fallback = %v, want 2", n)
	}
	// The access log names the backend of each attempt.
	if !strings.Contains(a.accessLog.String(), `"attempt_backends":"primary,secondary"`) {
		t.Errorf("access log without the attempts' backends:\n%s", a.accessLog.String())
	}

	time.Sleep(time.Until(start.Add(feedbackWindow + 500*time.Millisecond)))
	wantOpenAIError(t, b.feedback(t, "team-a", fmt.Sprintf(`{"request_id":%q,"score":1}`, late)), http.StatusNotFound, "request_not_found")
	wantOpenAIError(t, a.feedback(t, "team-a", fmt.Sprintf(`{"request_id":%q,"score":1}`, late)), http.StatusNotFound, "request_not_found")
}

// feedback posts body to /v1/feedback as tenant.
func (e *env) feedback(t *testing.T, tenant, body string) result {
	t.Helper()
	return e.postPath(t, "/v1/feedback", body, "x-tenant", tenant)
}
