package e2e

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/otlpserver"
)

// tracedConfig: pool "chain" fails over from "first" to "second"; prices
// make the cost exact (input 2, cached 1, output 8 USD per million).
// Envoy's own tracer is off, so llmproc's router span is a child of the
// client's span (TestTracedThroughEnvoy has it on).
const tracedConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2, per_try_timeout: 5s}
tracing: {envoy: false, endpoint: "%s", protocol: %s, batch_timeout: 20ms, export_timeout: %s, queue_size: %d, batch_size: %d}
backends:
  - {name: first, schema: openai, url: "%s", credential: {env: KEY}}
  - {name: second, schema: openai, url: "%s", credential: {env: KEY}}
models:
  - {name: traced, pool: chain, price: {input: 2, cached_input: 1, output: 8}}
pools:
  - {name: chain, backends: [{backend: first}, {backend: second, model: traced-2}]}
routes:
  - {name: by-model, match: {model: traced}, pool: chain}
`

// TestTracedFailover: the first backend answers 503 (then 429), the second
// answers; the OTLP receiver gets one trace, the client's: the router span,
// a child of the client's span, and two attempt spans, children of the
// router span, with the backends, statuses and errors of each attempt, and
// usage and cost on the last; feedback on the answer adds a span to it. Over
// OTLP/gRPC and OTLP/HTTP, JSON and SSE.
func TestTracedFailover(t *testing.T) {
	for _, c := range []struct {
		protocol string
		status   int
		stream   bool
	}{{"grpc", 503, false}, {"http", 429, true}} {
		t.Run(c.protocol, func(t *testing.T) {
			rx := otlpserver.Start(t)
			endpoint := rx.GRPCEndpoint()
			if c.protocol == "http" {
				endpoint = rx.HTTPEndpoint()
			}
			first := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Status: c.status}})
			second := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{
				Usage: fakeopenai.Usage{Prompt: 100, Cached: 40, Completion: 20, Reasoning: 5}}})
			t.Cleanup(func() { first.Close(); second.Close() })
			st, accessLog, log := startStack(t, fmt.Sprintf(tracedConfig, endpoint, c.protocol, "5s", 2048, 512, first.URL(), second.URL()),
				map[string]string{"KEY": "sk-test"})
			e := &env{Stack: st, accessLog: accessLog, log: log}

			const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			r := e.post(t, chat("traced", c.stream, `"stream_options":{"include_usage":true},`),
				"traceparent", "00-"+traceID+"-"+clientSpan+"-01", "tracestate", "vendor=v1")
			if r.status != 200 || r.header.Get("x-llmproc-backend") != "second" {
				t.Fatalf("status %d backend %q: %s", r.status, r.header.Get("x-llmproc-backend"), r.body)
			}
			spans := rx.Trace(t, traceID, 3, 10*time.Second)
			if len(spans) != 3 {
				t.Fatalf("%d spans, want 3: %+v", len(spans), spans)
			}
			var router otlpserver.Span
			var attempts []otlpserver.Span
			for _, sp := range spans {
				if sp.Kind == tracepb.Span_SPAN_KIND_SERVER {
					router = sp
				} else {
					attempts = append(attempts, sp)
				}
			}
			slices.SortFunc(attempts, func(a, b otlpserver.Span) int { return int(a.Int("llmproc.attempt") - b.Int("llmproc.attempt")) })
			if router.SpanID == "" || len(attempts) != 2 {
				t.Fatalf("want one router span and two attempts: %+v", spans)
			}
			if router.Parent != clientSpan || router.Name != "chat traced" || router.Service != "llmproc" ||
				router.SchemaURL != "https://opentelemetry.io/schemas/1.41.0" {
				t.Errorf("router span %+v", router)
			}
			for k, want := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.request.model": "traced",
				"llmproc.pool": "chain", "llmproc.route": "by-model", "llmproc.cache": "bypass",
				"llmproc.request_id": r.header.Get("x-llmproc-request-id")} {
				if got := router.Str(k); got != want {
					t.Errorf("router %s = %q, want %q", k, got, want)
				}
			}
			if router.Status == tracepb.Status_STATUS_CODE_ERROR {
				t.Errorf("router span status error: %+v", router)
			}
			a1, a2 := attempts[0], attempts[1]
			for i, a := range attempts {
				if a.Parent != router.SpanID || a.Kind != tracepb.Span_SPAN_KIND_CLIENT {
					t.Errorf("attempt %d: parent %s kind %v, want child of the router span %s", i+1, a.Parent, a.Kind, router.SpanID)
				}
				if a.Int("llmproc.attempt") != int64(i+1) || a.Str("gen_ai.provider.name") != "openai" || a.Str("llmproc.pool") != "chain" {
					t.Errorf("attempt %d attributes %v", i+1, a.Attrs)
				}
			}
			if a1.Str("llmproc.backend") != "first" || a1.Int("http.response.status_code") != int64(c.status) ||
				a1.Str("error.type") != strconv.Itoa(c.status) || a1.Status != tracepb.Status_STATUS_CODE_ERROR || a1.Name != "chat traced" {
				t.Errorf("first attempt %+v", a1)
			}
			if _, ok := a1.Attrs["gen_ai.usage.input_tokens"]; ok {
				t.Errorf("first attempt has usage: %v", a1.Attrs)
			}
			if a2.Str("llmproc.backend") != "second" || a2.Int("http.response.status_code") != 200 || a2.Name != "chat traced-2" ||
				a2.Status == tracepb.Status_STATUS_CODE_ERROR || a2.Str("error.type") != "" {
				t.Errorf("second attempt %+v", a2)
			}
			for k, want := range map[string]int64{"gen_ai.usage.input_tokens": 100, "gen_ai.usage.cache_read.input_tokens": 40,
				"gen_ai.usage.cache_creation.input_tokens": 0, "gen_ai.usage.output_tokens": 20, "gen_ai.usage.reasoning.output_tokens": 5} {
				if got := a2.Int(k); got != want {
					t.Errorf("second attempt %s = %d, want %d", k, got, want)
				}
			}
			// (60·2 + 40·1 + 20·8) / 1e6 USD
			if got := a2.Attrs["llmproc.cost_usd"]; got != 0.00032 {
				t.Errorf("cost %v, want 0.00032", got)
			}
			if got := a2.Str("gen_ai.response.finish_reasons"); got != "[stop]" {
				t.Errorf("finish reasons %q", got)
			}
			if a2.Str("gen_ai.request.model") != "traced-2" || a2.Str("gen_ai.response.model") == "" {
				t.Errorf("second attempt models %v", a2.Attrs)
			}
			// No content without capture_content.
			for _, sp := range spans {
				for k := range sp.Attrs {
					if strings.HasPrefix(k, "gen_ai.input") || strings.HasPrefix(k, "gen_ai.output") {
						t.Errorf("%s carries %s without capture_content", sp.Name, k)
					}
				}
			}
			// The provider's request continues the attempt's span.
			reqs := second.Requests()
			if tp := reqs[len(reqs)-1].Header.Get("traceparent"); tp != "00-"+traceID+"-"+a2.SpanID+"-01" {
				t.Errorf("the second backend got traceparent %q, want the attempt span's", tp)
			}
			if ts := reqs[len(reqs)-1].Header.Get("tracestate"); ts != "vendor=v1" {
				t.Errorf("tracestate %q", ts)
			}
			// Feedback on the answer is a span in the same trace, a child of
			// (and linked to) the attempt that answered.
			fr := e.postPath(t, "/v1/feedback", `{"request_id":"`+r.header.Get("x-llmproc-request-id")+`","score":5,"label":"good"}`)
			if fr.status != 200 {
				t.Fatalf("feedback: %d %s", fr.status, fr.body)
			}
			var fb otlpserver.Span
			for _, sp := range rx.Trace(t, traceID, 4, 10*time.Second) {
				if sp.Name == "llmproc.feedback" {
					fb = sp
				}
			}
			if fb.Parent != a2.SpanID || len(fb.Links) != 1 || fb.Links[0] != a2.SpanID || len(fb.Events) != 1 ||
				fb.Int("llmproc.feedback.score") != 5 || fb.Str("llmproc.feedback.label") != "good" || fb.Str("llmproc.backend") != "second" {
				t.Errorf("feedback span %+v", fb)
			}
			m := e.metrics(t)
			if got := sum(m["llmproc_trace_spans_dropped_total"], nil); got != 0 {
				t.Errorf("%v spans dropped", got)
			}
		})
	}
}

// TestTracingCollectorDown: with the collector unreachable (a port nobody
// listens on, then one that accepts and never answers) requests are
// answered as without tracing, and the spans are dropped and counted.
func TestTracingCollectorDown(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nobody listens here now
	// A collector that accepts connections and never says a word.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { mute.Close() })
	for _, c := range []struct{ name, endpoint, protocol string }{
		{"refused", "http://" + deadAddr, "grpc"},
		{"mute", "http://" + mute.Addr().String(), "http"},
	} {
		t.Run(c.name, func(t *testing.T) {
			first := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Status: 503}})
			second := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 10, Completion: 2}}})
			t.Cleanup(func() { first.Close(); second.Close() })
			// A queue of 4 and a long export timeout: the mute collector
			// holds the one export, the queue fills, the rest is dropped.
			st, accessLog, log := startStack(t, fmt.Sprintf(tracedConfig, c.endpoint, c.protocol, "30s", 4, 2, first.URL(), second.URL()),
				map[string]string{"KEY": "sk-test"})
			e := &env{Stack: st, accessLog: accessLog, log: log}
			const n = 20
			for i := range n {
				r := e.post(t, chat("traced", i%2 == 1, ""), "traceparent", fmt.Sprintf("00-%032x-00f067aa0ba902b7-01", i+1))
				if r.status != 200 || r.header.Get("x-llmproc-backend") != "second" {
					t.Fatalf("request %d: status %d: %s", i, r.status, r.body)
				}
			}
			// A span for each request and each attempt; each is exported,
			// dropped or still queued (at most the queue and one batch in
			// flight).
			spans := n + len(first.Requests()) + len(second.Requests())
			m := e.metricsWhen(t, func(m map[string][]sample) bool {
				return sum(m["llmproc_trace_spans_dropped_total"], nil) >= float64(spans-4-2)
			})
			dropped := sum(m["llmproc_trace_spans_dropped_total"], nil)
			if exported := sum(m["llmproc_trace_spans_exported_total"], nil); exported != 0 || dropped < float64(spans-4-2) || dropped > float64(spans) {
				t.Errorf("exported %v dropped %v of %d spans: %v", exported, dropped, spans, m["llmproc_trace_spans_dropped_total"])
			}
		})
	}
}
