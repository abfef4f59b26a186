package extproc

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/feedback"
)

const feedbackTestConfig = `
identity: {allow_client_tenant: true}
cache: {mode: "off", tenant_header: x-tenant}
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
  - {name: local, schema: openai-compatible, url: "http://127.0.0.1:2/api"}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - name: cheap
    backends: [{backend: primary, model: gpt-4o-mini-2024-07-18}, {backend: local}]
routes:
  - {name: by-model, match: {model: gpt-4o-mini}, pool: cheap}
`

const completionJSON = `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`

// TestFeedbackEndpoint: a request fails over from primary to local; its
// record names the second attempt (backend, attempts and their backends,
// trace and parent span id, tenant); POST /v1/feedback takes the caller's
// verdict once, refuses another tenant's and bad bodies in OpenAI's shape
// naming the field, and counts it against the request's labels.
func TestFeedbackEndpoint(t *testing.T) {
	// The clock is read by the server's goroutines (a stream may still be
	// ending) while the test moves it: an atomic, not a captured variable.
	var nowNanos atomic.Int64
	nowNanos.Store(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, nowNanos.Load()).UTC() }
	store := &feedback.Store{Local: feedback.NewLocal(100, clock), Window: time.Hour, Now: clock}
	h := newHarnessOpts(t, Options{Config: fixedRuntime{compileTest(t, feedbackTestConfig)}, Feedback: store, Now: clock})

	const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	client := append(openAIClient("/v1/chat/completions", body), &corev3.HeaderValue{Key: "x-tenant", RawValue: []byte("team-a")},
		&corev3.HeaderValue{Key: "x-request-id", RawValue: []byte("req-1")},
		&corev3.HeaderValue{Key: "traceparent", RawValue: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")})
	routed, dec := h.route(t, client, body)
	if dec[KeySpanID] != "00f067aa0ba902b7" {
		t.Fatalf("decisions %v: no parent span id", dec)
	}
	attempt := func(n, backend, status string, answer string) {
		t.Helper()
		s := h.stream(RoleUpstream)
		defer s.CloseSend() //nolint:errcheck
		hs := append(slices.Clone(routed), &corev3.HeaderValue{Key: "x-envoy-attempt-count", RawValue: []byte(n)})
		attrs := map[string]string{AttrBackend: backend, AttrCluster: PoolClusterPrefix + "cheap"}
		r := roundTrip(t, s, withDecisions(reqHeaders(hs.message(), attrs), dec))
		if r.GetModeOverride() == nil { // else Envoy sends no body (bodyless.go)
			for k, v := range decided(r) {
				dec[k] = v
			}
			r = roundTrip(t, s, withDecisions(reqBody(body), dec))
		}
		for k, v := range decided(r) {
			dec[k] = v // Envoy merges it into the metadata the next attempt gets
		}
		if answer == "" {
			roundTrip(t, s, respHeaders(true, ":status", status, "content-type", "application/json"))
			return
		}
		roundTrip(t, s, respHeaders(false, ":status", status, "content-type", "application/json"))
		roundTrip(t, s, respBody(answer, true))
	}
	attempt("1", "primary", "503", "")
	if dec[KeyAttemptBackends] != "primary" {
		t.Errorf("after attempt 1 %s = %q", KeyAttemptBackends, dec[KeyAttemptBackends])
	}
	attempt("2", "local", "200", completionJSON)
	if dec[KeyAttemptBackends] != "primary,local" {
		t.Errorf("after attempt 2 %s = %q", KeyAttemptBackends, dec[KeyAttemptBackends])
	}
	rec, ok := store.Get(context.Background(), "team-a", "req-1")
	if !ok || rec.Backend != "local" || rec.Attempts != 2 || strings.Join(rec.AttemptBackends, ",") != "primary,local" ||
		rec.Model != "gpt-4o-mini" || rec.Pool != "cheap" || rec.Route != "by-model" || rec.Tenant != "team-a" || rec.Status != 200 ||
		rec.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || rec.SpanID != "00f067aa0ba902b7" || rec.Client != clientOpenAI || !rec.Time.Equal(clock()) {
		t.Fatalf("record %+v %v", rec, ok)
	}

	post := func(tenant, method, fb string) (int, string, string) {
		t.Helper()
		hs := openAIClient(FeedbackPath, fb)
		hs[0] = &corev3.HeaderValue{Key: ":method", RawValue: []byte(method)}
		hs = append(hs, &corev3.HeaderValue{Key: "x-tenant", RawValue: []byte(tenant)})
		im := h.routeReply(t, hs, fb).GetImmediateResponse()
		if im == nil {
			t.Fatalf("%s %s: no immediate response", method, fb)
		}
		if mutationHeader(im.GetHeaders(), HeaderRequestID) == "" {
			t.Errorf("%s %s: answer without %s", method, fb, HeaderRequestID)
		}
		return int(im.GetStatus().GetCode()), string(im.GetBody()), im.GetDetails()
	}
	for _, c := range []struct {
		tenant, method, body string
		status               int
		code, param          string
	}{
		{"team-b", "POST", `{"request_id":"req-1","score":5}`, 404, "request_not_found", "request_id"},
		{"team-a", "POST", `{"request_id":"req-2","score":5}`, 404, "request_not_found", "request_id"},
		{"team-a", "POST", `{"request_id":"req-1","score":6}`, 400, "integer_above_max_value", "score"},
		{"team-a", "POST", `{"request_id":"req-1"}`, 400, "missing_required_parameter", "score"},
		{"team-a", "POST", `{"request_id":"req-1","score":5,"label":"` + strings.Repeat("x", 65) + `"}`, 400, "string_above_max_length", "label"},
		{"team-a", "POST", `{"request_id":"req-1","score":5,"stars":5}`, 400, "unknown_parameter", "stars"},
		{"team-a", "POST", `not json`, 400, "invalid_json", ""},
		{"team-a", "GET", `{}`, 405, "method_not_allowed", ""},
		{"team-a", "POST", `{"request_id":"req-1","score":2,"label":"wrong","comment":"made up a function"}`, 200, "", ""},
		{"team-a", "POST", `{"request_id":"req-1","score":5}`, 409, "feedback_exists", "request_id"},
	} {
		status, got, details := post(c.tenant, c.method, c.body)
		if status != c.status || gjson.Get(got, "error.code").Str != c.code || gjson.Get(got, "error.param").Str != c.param {
			t.Errorf("%s %s as %s: %d %s (%s), want %d %s param %q", c.method, c.body, c.tenant, status, got, details, c.status, c.code, c.param)
		}
		if status == 200 && (gjson.Get(got, "object").Str != "feedback" || gjson.Get(got, "score").Int() != 2 || gjson.Get(got, "backend").Str != "local") {
			t.Errorf("accepted: %s", got)
		}
	}
	want := `
# HELP llmproc_feedback_total Quality feedback accepted (POST /v1/feedback), by the model, backend ("cache" for a cache hit), route and class that served the request and the score (score_bucket 1 worst to 5 best).
# TYPE llmproc_feedback_total counter
llmproc_feedback_total{backend="local",class="",model="gpt-4o-mini",route="by-model",score_bucket="2"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "llmproc_feedback_total"); err != nil {
		t.Error(err)
	}
	// Past the window the record is gone.
	nowNanos.Add(int64(time.Hour))
	if _, ok := store.Get(context.Background(), "team-a", "req-1"); ok {
		t.Error("record found past the window")
	}
}

// TestFeedbackCacheHit: a request answered from the cache has a record
// (backend "" = cache, no attempts), so feedback on it counts under backend
// "cache".
func TestFeedbackCacheHit(t *testing.T) {
	local, err := cache.NewLocal(16, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	store := &feedback.Store{Local: feedback.NewLocal(100, nil), Window: time.Hour, Now: time.Now}
	h := newHarnessOpts(t, Options{Config: fixedRuntime{testRuntime(t, 4096)}, Feedback: store,
		Cache: &CacheTiers{Local: local, TTL: time.Hour, MaxEntryBytes: 1 << 20}})
	const req = `{"model":"mini","temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	answer := `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`
	routed, _, _ := routeCached(t, h, req)
	answerUpstream(t, h, routed, req, "200", "application/json", answer)
	_, hit, _ := routeCached(t, h, req, "x-request-id", "hit-1")
	if hit[HeaderCache] != "hit" || hit[HeaderRequestID] != "hit-1" {
		t.Fatalf("second request not a hit carrying its id: %v", hit)
	}
	rec, ok := store.Get(context.Background(), "", "hit-1")
	if !ok || rec.Backend != "" || rec.Cache != "hit" || rec.Attempts != 0 || rec.Model != "mini" || rec.Pool != "cheap" {
		t.Fatalf("cache hit record %+v %v", rec, ok)
	}
	h.srv.feedbackReceived(rec, Feedback{Score: 4})
	want := `
# HELP llmproc_feedback_total Quality feedback accepted (POST /v1/feedback), by the model, backend ("cache" for a cache hit), route and class that served the request and the score (score_bucket 1 worst to 5 best).
# TYPE llmproc_feedback_total counter
llmproc_feedback_total{backend="cache",class="",model="mini",route="model",score_bucket="4"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "llmproc_feedback_total"); err != nil {
		t.Error(err)
	}
}
