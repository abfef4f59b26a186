package extproc

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/tracing"
)

func TestCapturedContent(t *testing.T) {
	for _, c := range []struct {
		body, want string
		max        int
		cut        bool
	}{
		{`{"messages":[{"role":"system","content":"Be brief"},{"role":"user","content":[{"type":"text","text":"Héllo"}]}]}`,
			`[{"role":"system","parts":[{"type":"text","content":"Be brief"}]},{"role":"user","parts":[{"type":"text","content":"Héllo"}]}]`, 100, false},
		{`{"messages":[{"role":"user","content":"Héllo world"}]}`, `[{"role":"user","parts":[{"type":"text","content":"H"}]}]`, 2, true},
		{`{"input":"Hi"}`, `[{"role":"user","parts":[{"type":"text","content":"Hi"}]}]`, 100, false},
		{`{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}`, `[{"role":"user","parts":[{"type":"text","content":"Hi"}]}]`, 100, false},
	} {
		got, cut := inputMessages([]byte(c.body), c.max)
		if got != c.want || cut != c.cut {
			t.Errorf("inputMessages(%s, %d) = %s %v, want %s %v", c.body, c.max, got, cut, c.want, c.cut)
		}
	}
	sse := &outputCapture{max: 8, sse: true}
	sse.write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"con"))
	sse.write([]byte("tent\":\" world\"}}]}\n\ndata: [DONE]\n\n"))
	if got, cut := sse.messages("stop"); got != `[{"role":"assistant","parts":[{"type":"text","content":"Hello wo"}],"finish_reason":"stop"}]` || !cut {
		t.Errorf("sse capture %s %v", got, cut)
	}
	js := &outputCapture{max: 100}
	js.write([]byte(`{"choices":[{"message":{"content":"Hi"}}]}`))
	if got, cut := js.messages(""); got != `[{"role":"assistant","parts":[{"type":"text","content":"Hi"}]}]` || cut {
		t.Errorf("json capture %s %v", got, cut)
	}
}

// TestRouterSpanParent: with Envoy's tracer on, the ext_proc stream's gRPC
// metadata carries Envoy's span, and the router span is its child (in the
// client's trace); without, the request's traceparent is the parent. The
// decisions carry the router span's context to the upstream role.
func TestRouterSpanParent(t *testing.T) {
	one := 1.0
	exp := tracetest.NewInMemoryExporter()
	tr, err := tracing.New(tracing.Options{Exporter: exp, Config: &config.Tracing{Endpoint: "http://127.0.0.1:1", Protocol: "grpc",
		SampleRatio: &one, QueueSize: 8, BatchSize: 8, BatchTimeout: config.Duration{Duration: time.Hour},
		ExportTimeout: config.Duration{Duration: time.Second}, ServiceName: "llmproc", CaptureMaxBytes: 10}})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessOpts(t, Options{Config: fixedRuntime{testRuntime(t, 4096)}, Tracer: tr})
	const client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const envoy = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
	for _, c := range []struct{ md, parent string }{{"", "00f067aa0ba902b7"}, {envoy, "b7ad6b7169203331"}} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-llmproc-role", "router")
		if c.md != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", c.md)
		}
		s, err := h.client.Process(ctx)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions", "traceparent", client), nil))
		dec := decided(roundTrip(t, s, reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)))
		_ = s.CloseSend()
		_, _ = s.Recv()
		if err := tr.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		spans := exp.GetSpans()
		if len(spans) != 1 {
			t.Fatalf("%d spans", len(spans))
		}
		sp := spans[0]
		exp.Reset()
		if sp.Parent.SpanID().String() != c.parent || sp.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("metadata %q: parent %s, want %s", c.md, sp.Parent.SpanID(), c.parent)
		}
		if want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + sp.SpanContext.SpanID().String() + "-01"; dec[KeyTraceparent] != want {
			t.Errorf("decisions carry traceparent %q, want the router span's %q", dec[KeyTraceparent], want)
		}
	}
}
