package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/harness"
	"github.com/llmproc/llmproc/e2e/otlpserver"
)

// TestTracedThroughEnvoy: with Envoy's own tracer rendered (tracing.envoy,
// the default), Envoy's spans and llmproc's make one trace. The harness
// plays Envoy's OpenTelemetry tracer (e2e/harness/tracing.go, after Envoy's
// source): the HCM's "ingress" span continues the client's traceparent, or
// starts the trace when there is none; each ext_proc stream is a CLIENT
// child of it whose context Envoy injects into the stream's gRPC metadata;
// each attempt has its "router <cluster> egress" span. llmproc's router span
// must be a child of the router-filter stream's span — that is how it joins
// Envoy's trace — and its attempt spans children of the router span. (No
// real Envoy runs here: this checks llmproc against the harness's model of
// Envoy, not Envoy itself.)
func TestTracedThroughEnvoy(t *testing.T) {
	rx := otlpserver.Start(t)
	first := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Status: 503}})
	second := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 10, Completion: 2}}})
	t.Cleanup(func() { first.Close(); second.Close() })
	cfg := strings.Replace(fmt.Sprintf(tracedConfig, rx.GRPCEndpoint(), "grpc", "5s", 2048, 512, first.URL(), second.URL()),
		"envoy: false, ", "", 1)
	st, accessLog, log := startStack(t, cfg, map[string]string{"KEY": "sk-test"})
	e := &env{Stack: st, accessLog: accessLog, log: log}

	const clientTrace, clientSpan = "5bf92f3577b34da6a3ce929d0e0e4737", "10f067aa0ba902b8"
	for _, c := range []struct {
		name   string
		header []string
	}{
		{"client traceparent", []string{"traceparent", "00-" + clientTrace + "-" + clientSpan + "-01"}},
		{"no traceparent", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.post(t, chat("traced", false, ""), c.header...)
			if r.status != 200 || r.header.Get("x-llmproc-backend") != "second" {
				t.Fatalf("status %d backend %q: %s", r.status, r.header.Get("x-llmproc-backend"), r.body)
			}
			id := r.header.Get("x-llmproc-request-id")
			traceID := clientTrace
			if c.header == nil {
				traceID = routerSpanOf(t, rx, id).TraceID
			}
			// Envoy: ingress, 3 ext_proc streams (router, 2 attempts), 2
			// attempt spans; llmproc: router and 2 attempts. Envoy flushes
			// every 5 spans or 5 s.
			spans := rx.Trace(t, traceID, 9, 20*time.Second)
			byID := map[string]otlpserver.Span{}
			for _, sp := range spans {
				byID[sp.SpanID] = sp
			}
			var ingress, router otlpserver.Span
			var envoyAttempts, procStreams, llmprocAttempts []otlpserver.Span
			for _, sp := range spans {
				switch {
				case sp.Service == "envoy" && sp.Name == "ingress":
					ingress = sp
				case sp.Service == "envoy" && sp.Name == harness.ExtProcSpanName:
					procStreams = append(procStreams, sp)
				case sp.Service == "envoy" && strings.HasPrefix(sp.Name, "router "):
					envoyAttempts = append(envoyAttempts, sp)
				case sp.Service == "llmproc" && sp.Kind == tracepb.Span_SPAN_KIND_SERVER:
					router = sp
				case sp.Service == "llmproc":
					llmprocAttempts = append(llmprocAttempts, sp)
				}
			}
			if len(spans) != 9 || ingress.SpanID == "" || router.SpanID == "" || len(procStreams) != 3 || len(envoyAttempts) != 2 || len(llmprocAttempts) != 2 {
				t.Fatalf("want Envoy's ingress, 3 ext_proc and 2 attempt spans and llmproc's router and 2 attempt spans: %+v", spans)
			}
			wantIngressParent := clientSpan
			if c.header == nil {
				wantIngressParent = ""
			}
			if ingress.Parent != wantIngressParent || ingress.Kind != tracepb.Span_SPAN_KIND_SERVER || ingress.Str("http.status_code") != "200" {
				t.Errorf("ingress span %+v, want parent %q", ingress, wantIngressParent)
			}
			// The ext_proc streams and the attempts are children of the
			// request's span, as Envoy's active span is the downstream one
			// for upstream filters too.
			for _, sp := range append(procStreams, envoyAttempts...) {
				if sp.Parent != ingress.SpanID || sp.Kind != tracepb.Span_SPAN_KIND_CLIENT {
					t.Errorf("%s: parent %s kind %v, want a CLIENT child of ingress %s", sp.Name, sp.Parent, sp.Kind, ingress.SpanID)
				}
			}
			// llmproc's router span is a child of the stream Envoy opened for
			// the router filter, not of the client's span.
			stream, ok := byID[router.Parent]
			if !ok || stream.Name != harness.ExtProcSpanName || stream.Service != "envoy" || stream.Str("upstream_cluster") == "" {
				t.Errorf("llmproc's router span's parent %s is not one of Envoy's ext_proc stream spans: %+v", router.Parent, stream)
			}
			if router.Str("llmproc.request_id") != id {
				t.Errorf("router span request id %q, want %q", router.Str("llmproc.request_id"), id)
			}
			for _, a := range llmprocAttempts {
				if a.Parent != router.SpanID {
					t.Errorf("llmproc attempt %+v is not a child of the router span %s", a, router.SpanID)
				}
			}
			retries := map[string]bool{}
			for _, a := range envoyAttempts {
				retries[a.Str("retry.count")] = true
			}
			if !retries[""] || !retries["1"] {
				t.Errorf("Envoy attempt spans retry.count %v, want none on the first and 1 on the second", retries)
			}
		})
	}
}

// routerSpanOf waits for llmproc's router span of request id.
func routerSpanOf(t *testing.T, rx *otlpserver.Server, id string) otlpserver.Span {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, sp := range rx.Spans() {
			if sp.Service == "llmproc" && sp.Kind == tracepb.Span_SPAN_KIND_SERVER && sp.Str("llmproc.request_id") == id {
				return sp
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no router span for request %s: %+v", id, rx.Spans())
	return otlpserver.Span{}
}
