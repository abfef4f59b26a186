package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

func TestCompletion(t *testing.T) {
	e := start(t)
	e.primary.Enqueue(fakeopenai.Behaviour{Content: "Hello there", Usage: fakeopenai.Usage{Prompt: 12, Completion: 3}})
	r := e.post(t, chat("gpt-4o-mini", false, ""))
	if r.status != 200 || r.err != nil {
		t.Fatalf("status %d err %v body %s", r.status, r.err, r.body)
	}
	if got := gjson.GetBytes(r.body, "choices.0.message.content").String(); got != "Hello there" {
		t.Errorf("content %q in %s", got, r.body)
	}
	if got := gjson.GetBytes(r.body, "usage.prompt_tokens").Int(); got != 12 {
		t.Errorf("usage %s", gjson.GetBytes(r.body, "usage").Raw)
	}
	if b := r.header.Get("x-llmproc-backend"); b != "primary" {
		t.Errorf("x-llmproc-backend %q", b)
	}
	if m := r.header.Get("x-llmproc-model"); m != "gpt-4o-mini" {
		t.Errorf("x-llmproc-model %q", m)
	}
}

func TestStreamingCompletion(t *testing.T) {
	e := start(t)
	for _, askUsage := range []bool{false, true} {
		e.primary.Enqueue(fakeopenai.Behaviour{Content: "one two three four", Usage: fakeopenai.Usage{Prompt: 20, Completion: 4}})
		extra := ""
		if askUsage {
			extra = `"stream_options":{"include_usage":true},`
		}
		r := e.post(t, chat("mini", true, extra))
		if r.status != 200 || r.err != nil {
			t.Fatalf("status %d err %v body %s", r.status, r.err, r.body)
		}
		if ct := r.header.Get("content-type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("content-type %q", ct)
		}
		events := sseEvents(t, r.body)
		if events[len(events)-1] != "[DONE]" {
			t.Fatalf("stream does not end with [DONE]: %v", events)
		}
		var text strings.Builder
		usageChunks := 0
		for _, ev := range events[:len(events)-1] {
			if !gjson.Valid(ev) {
				t.Fatalf("invalid JSON event %q", ev)
			}
			text.WriteString(gjson.Get(ev, "choices.0.delta.content").String())
			if gjson.Get(ev, "usage.prompt_tokens").Exists() {
				usageChunks++
			}
		}
		if text.String() != "one two three four" {
			t.Errorf("streamed text %q", text.String())
		}
		want := 0
		if askUsage {
			want = 1
		}
		if usageChunks != want {
			t.Errorf("include_usage=%v: %d usage chunks reached the client, want %d", askUsage, usageChunks, want)
		}
	}
	// llmproc asked the provider for usage both times.
	for _, req := range e.primary.Requests() {
		if !gjson.GetBytes(req.Body, "stream_options.include_usage").Bool() {
			t.Errorf("provider request without include_usage: %s", req.Body)
		}
	}
}

func TestRejections(t *testing.T) {
	e := start(t)
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"unknown model", chat("gpt-9", false, ""), 404, "model_not_found"},
		{"malformed JSON", `{"model":"gpt-4o-mini","messages":[`, 400, "invalid_json"},
		{"oversized body", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("a", 70000) + `"}]}`, 413, "request_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantOpenAIError(t, e.post(t, tt.body), tt.status, tt.code)
		})
	}
	if n := len(e.primary.Requests()) + len(e.secondary.Requests()); n != 0 {
		t.Errorf("%d rejected requests reached a provider", n)
	}
}

func TestModelsList(t *testing.T) {
	e := start(t)
	req, _ := http.NewRequest(http.MethodGet, e.URL()+"/v1/models", nil)
	r := do(t, req)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var ids []string
	for _, m := range gjson.GetBytes(r.body, "data").Array() {
		ids = append(ids, m.Get("id").String())
	}
	if strings.Join(ids, ",") != "gpt-4o-mini,gpt-4o" || gjson.GetBytes(r.body, "object").String() != "list" {
		t.Errorf("models %s", r.body)
	}
}

func TestClientCannotPickPool(t *testing.T) {
	e := start(t)
	// flagship is served only by secondary; a client header naming it must not count.
	r := e.post(t, chat("gpt-4o-mini", false, ""), "x-llmproc-pool", "flagship", "x-llmproc-route", "mine")
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if len(e.secondary.Requests()) != 0 || len(e.primary.Requests()) != 1 {
		t.Errorf("requests: primary %d, secondary %d", len(e.primary.Requests()), len(e.secondary.Requests()))
	}
	if got := e.primary.Requests()[0].Header.Get("x-llmproc-route"); got == "mine" {
		t.Error("client-sent x-llmproc-route reached the provider")
	}
}

func TestCredentials(t *testing.T) {
	e := start(t)
	r := e.post(t, chat("gpt-4o-mini", false, ""), "authorization", "Bearer client-secret", "x-api-key", "client-secret")
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	req := e.primary.Requests()[0]
	if got := req.Header.Get("authorization"); got != "Bearer sk-primary" {
		t.Errorf("provider got authorization %q", got)
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			if strings.Contains(v, "client-secret") {
				t.Errorf("client credential reached the provider in %s", k)
			}
		}
	}
}

func TestFailoverToPriorityOne(t *testing.T) {
	e := start(t)
	e.primary.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	e.secondary.Enqueue(fakeopenai.Behaviour{Content: "from secondary"})
	r := e.post(t, chat("gpt-4o-mini", false, ""))
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if got := gjson.GetBytes(r.body, "choices.0.message.content").String(); got != "from secondary" {
		t.Errorf("content %q", got)
	}
	if b := r.header.Get("x-llmproc-backend"); b != "secondary" {
		t.Errorf("x-llmproc-backend %q", b)
	}
	if got := e.secondary.Requests()[0].Header.Get("authorization"); got != "Bearer sk-secondary" {
		t.Errorf("secondary got authorization %q", got)
	}
	primary5xx := map[string]string{"backend": "primary", "status_class": "5xx"}
	m := e.metricsWhen(t, func(m map[string][]sample) bool { return sum(m["llmproc_requests_total"], primary5xx) > 0 })
	if n := sum(m["llmproc_requests_total"], primary5xx); n != 1 {
		t.Errorf("primary 5xx attempts %v; llmproc_requests_total: %v", n, m["llmproc_requests_total"])
	}
}

func TestRateLimitedRetryAfter(t *testing.T) {
	e := start(t)
	e.primary.Enqueue(fakeopenai.Behaviour{Status: 429, ErrorType: "rate_limit_error", ErrorCode: "rate_limit_exceeded",
		Header: http.Header{"Retry-After": {"1"}}})
	e.secondary.Enqueue(fakeopenai.Behaviour{Content: "after the wait"})
	r := e.post(t, chat("gpt-4o-mini", false, ""))
	if r.status != 200 || gjson.GetBytes(r.body, "choices.0.message.content").String() != "after the wait" {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if len(e.primary.Requests()) != 1 || len(e.secondary.Requests()) != 1 {
		t.Errorf("attempts: primary %d, secondary %d", len(e.primary.Requests()), len(e.secondary.Requests()))
	}

	// When every backend throttles, the client gets one 429 saying the pool
	// is exhausted, with the provider's code and message in it.
	throttle := func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 429, ErrorType: "rate_limit_error", ErrorCode: "rate_limit_exceeded"}
	}
	e.primary.Script(throttle)
	e.secondary.Script(throttle)
	r = e.post(t, chat("gpt-4o-mini", false, ""))
	wantExhausted(t, r, 429, "rate_limit_exceeded", "Too Many Requests")
}

func TestStreamCutMidway(t *testing.T) {
	e := start(t)
	e.primary.Enqueue(fakeopenai.Behaviour{Content: "a b c d e f g h", CutAfter: 3})
	r := e.post(t, chat("gpt-4o-mini", true, ""))
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	body := string(r.body)
	if strings.Contains(body, "[DONE]") {
		t.Fatalf("a cut stream reached the client as a clean end:\n%s", body)
	}
	if r.err == nil && !strings.Contains(body, "stream_incomplete") {
		t.Errorf("the client saw neither a transport error nor an error event:\n%s", body)
	}
}

func TestUsageAndCostExact(t *testing.T) {
	e := start(t)
	u := fakeopenai.Usage{Prompt: 1234, Completion: 56, Cached: 1000, Reasoning: 7}
	e.primary.Script(func(fakeopenai.Request) fakeopenai.Behaviour { return fakeopenai.Behaviour{Usage: u} })
	const n = 6
	for i := range n {
		r := e.post(t, chat("gpt-4o-mini", i%2 == 0, ""))
		if r.status != 200 || r.err != nil {
			t.Fatalf("status %d err %v %s", r.status, r.err, r.body)
		}
	}
	m := e.metrics(t)
	labels := map[string]string{"pool": "cheap", "backend": "primary", "model": "gpt-4o-mini"}
	for typ, want := range map[string]float64{"input": n * 1234, "output": n * 56, "cached_input": n * 1000, "reasoning": n * 7} {
		l := map[string]string{"type": typ}
		for k, v := range labels {
			l[k] = v
		}
		if got := sum(m["llmproc_tokens_total"], l); got != want {
			t.Errorf("llmproc_tokens_total{type=%s} = %v, want %v", typ, got, want)
		}
	}
	// (234×0.15 + 1000×0.075 + 56×0.60) USD per million = 143,700,000 pico-dollars a request.
	if got, want := sum(m["llmproc_cost_usd_total"], labels), float64(n*143_700_000)/1e12; got != want {
		t.Errorf("llmproc_cost_usd_total = %v, want %v", got, want)
	}
	if got := sum(m["gen_ai_client_token_usage"], map[string]string{"gen_ai_token_type": "input"}); got != n*1234 {
		t.Errorf("gen_ai_client_token_usage input sum = %v", got)
	}
	if got := sum(m["llmproc_requests_total"], map[string]string{"backend": "primary", "status_class": "2xx"}); got != n {
		t.Errorf("llmproc_requests_total 2xx = %v", got)
	}
}
