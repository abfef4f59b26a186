package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// bodylessConfig: a same-API pool, a translated one, and a fallback from
// a same-API backend that fails to a translated one.
const bodylessConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2, per_try_timeout: 5s}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
  - {name: down, schema: openai, url: "%s", credential: {env: DOWN_KEY}}
  - {name: claude, schema: anthropic, url: "%s", credential: {env: ANTHROPIC_KEY}}
models:
  - {name: same, pool: same, price: {input: 1, output: 1}}
  - {name: translated, pool: translated, price: {input: 1, output: 1}}
  - {name: fallback, pool: fallback, price: {input: 1, output: 1}}
pools:
  - {name: same, backends: [{backend: openai}]}
  - {name: translated, backends: [{backend: claude, model: claude-haiku-4-5}]}
  - {name: fallback, backends: [{backend: down}, {backend: claude, model: claude-haiku-4-5}]}
`

// phaseCounts are the ext_proc messages llmproc answered, by role and
// phase, from llmproc_extproc_phase_duration_seconds (one observation per
// message).
func phaseCounts(m map[string][]sample) map[string]uint64 {
	out := map[string]uint64{}
	for _, s := range m["llmproc_extproc_phase_duration_seconds"] {
		out[s.labels["role"]+"/"+s.labels["phase"]] += s.count
	}
	return out
}

// TestBodylessAttempts: a same-API attempt is prepared at its request
// headers and Envoy sends no request body for it (mode_override, as the
// harness plays Envoy's rule); the answer, the provider's request, usage and
// cost are as before. A translated attempt still gets the body. A fallback
// from a bodyless same-API attempt to a translated one — on Envoy's one
// header map, where the first attempt set its content-length — sends the
// translated body under its own length. Streams: the router added
// include_usage for every attempt; the client that did not ask gets no
// usage chunk, and usage is counted exactly.
func TestBodylessAttempts(t *testing.T) {
	openai := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 10, Completion: 4}}})
	down := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Status: 503}})
	claude := fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant", Default: fakeanthropic.Behaviour{Usage: fakeanthropic.Usage{Input: 12, Output: 5}}})
	t.Cleanup(func() { openai.Close(); down.Close(); claude.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(bodylessConfig, openai.URL(), down.URL(), claude.URL()), map[string]string{
		"OPENAI_KEY": "sk-openai", "DOWN_KEY": "sk-down", "ANTHROPIC_KEY": "sk-ant",
	})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	tests := []struct {
		model    string
		backend  string // that answers
		bodies   uint64 // upstream request_body messages
		attempts uint64
		tokens   [2]float64 // input, output
	}{
		{"same", "openai", 0, 1, [2]float64{10, 4}},
		{"translated", "claude", 1, 1, [2]float64{12, 5}},
		{"fallback", "claude", 1, 2, [2]float64{12, 5}},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tt.model+"/stream="+strconv.FormatBool(stream), func(t *testing.T) {
				body := chat(tt.model, stream, `"max_tokens":64,`)
				before := e.metrics(t)
				seenOpenAI, seenDown, seenClaude := len(openai.Requests()), len(down.Requests()), len(claude.Requests())
				r := e.post(t, body, "authorization", "Bearer client-secret")
				if r.status != 200 || r.err != nil || r.header.Get("x-llmproc-backend") != tt.backend {
					t.Fatalf("status %d err %v backend %q body %s", r.status, r.err, r.header.Get("x-llmproc-backend"), r.body)
				}
				if stream {
					events := sseEvents(t, r.body)
					if len(events) == 0 || events[len(events)-1] != "[DONE]" {
						t.Errorf("stream does not end with [DONE]: %v", events)
					}
					if strings.Contains(string(r.body), `"usage":{`) {
						t.Errorf("a usage chunk reached a client that did not ask for it:\n%s", r.body)
					}
				} else if !strings.HasPrefix(gjson.GetBytes(r.body, "choices.0.message.content").String(), "Hello from fake") {
					t.Errorf("answer %s", r.body)
				}
				// What Envoy forwards: the client's body, with include_usage
				// for a stream (the router's, for every attempt).
				forwarded := body
				if stream {
					b, _ := sjson.Set(body, "stream_options.include_usage", true)
					forwarded = b
				}
				var sent []fakeopenai.Request
				switch tt.model {
				case "same":
					sent = openai.Requests()[seenOpenAI:]
				case "fallback":
					sent = down.Requests()[seenDown:]
				}
				for _, got := range sent {
					if string(got.Body) != forwarded {
						t.Errorf("the same-API provider got\n%s\nwant\n%s", got.Body, forwarded)
					}
					if got.Header.Get("Content-Length") != strconv.Itoa(len(forwarded)) || got.Header.Get("Authorization") == "Bearer client-secret" {
						t.Errorf("same-API request headers %v", got.Header)
					}
				}
				if tt.backend == "claude" {
					reqs := claude.Requests()[seenClaude:]
					if len(reqs) != 1 {
						t.Fatalf("claude got %d requests", len(reqs))
					}
					got := reqs[0]
					if cl := got.Header.Get("Content-Length"); cl != strconv.Itoa(len(got.Body)) || !gjson.ValidBytes(got.Body) ||
						gjson.GetBytes(got.Body, "model").String() != "claude-haiku-4-5" || gjson.GetBytes(got.Body, "stream_options").Exists() {
						t.Errorf("translated request: content-length %q, body %s", cl, got.Body)
					}
				}
				after := e.metricsWhen(t, func(m map[string][]sample) bool {
					return phaseCounts(m)["upstream/request_headers"]-phaseCounts(before)["upstream/request_headers"] >= tt.attempts &&
						sum(m["llmproc_tokens_total"], map[string]string{"type": "output"}) >= sum(before["llmproc_tokens_total"], map[string]string{"type": "output"})+tt.tokens[1]
				})
				pb, pa := phaseCounts(before), phaseCounts(after)
				d := func(k string) uint64 { return pa[k] - pb[k] }
				t.Logf("messages: router %d+%d, upstream request headers %d, request body %d, response headers %d, response body %d",
					d("router/request_headers"), d("router/request_body"), d("upstream/request_headers"), d("upstream/request_body"),
					d("upstream/response_headers"), d("upstream/response_body"))
				if d("router/request_headers") != 1 || d("router/request_body") != 1 || d("router/response_headers") != 0 || d("router/response_body") != 0 {
					t.Errorf("router messages %v", pa)
				}
				if d("upstream/request_headers") != tt.attempts || d("upstream/request_body") != tt.bodies {
					t.Errorf("upstream: %d attempts, %d request bodies; want %d, %d", d("upstream/request_headers"), d("upstream/request_body"), tt.attempts, tt.bodies)
				}
				for i, typ := range []string{"input", "output"} {
					l := map[string]string{"type": typ, "backend": tt.backend}
					if got := sum(after["llmproc_tokens_total"], l) - sum(before["llmproc_tokens_total"], l); got != tt.tokens[i] {
						t.Errorf("%s tokens %v, want %v", typ, got, tt.tokens[i])
					}
				}
			})
		}
	}
	// GET /v1/models: answered at the request headers; no body message,
	// no attempt.
	t.Run("models", func(t *testing.T) {
		before := e.metrics(t)
		req, err := http.NewRequest(http.MethodGet, e.URL()+"/v1/models", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := do(t, req); r.status != 200 || !gjson.GetBytes(r.body, "data").IsArray() {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		pb, pa := phaseCounts(before), phaseCounts(e.metrics(t))
		if pa["router/request_headers"]-pb["router/request_headers"] != 1 || pa["router/request_body"] != pb["router/request_body"] ||
			pa["upstream/request_headers"] != pb["upstream/request_headers"] {
			t.Errorf("messages before %v after %v", pb, pa)
		}
	})
}
