package tracing

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/llmproc/llmproc/filter/config"
)

type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) TraceSpans(result string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[result] += n
}

func (c *counts) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

func cfg(queue, batch int) *config.Tracing {
	one := 1.0
	return &config.Tracing{Endpoint: "http://127.0.0.1:4317", Protocol: "grpc", SampleRatio: &one, QueueSize: queue, BatchSize: batch,
		BatchTimeout: config.Duration{Duration: time.Hour}, ExportTimeout: config.Duration{Duration: time.Second}, ServiceName: "llmproc", CaptureMaxBytes: 10}
}

func TestNilTracerIsNoop(t *testing.T) {
	var tr *Tracer
	s := tr.Router("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", time.Now())
	if s != nil {
		t.Fatal("a nil tracer made a span")
	}
	s.Set(Pool.String("p"))
	s.SetName("x")
	s.End("500", "x", time.Now())
	if tp, _ := s.Context(); tp != "" {
		t.Errorf("context %q", tp)
	}
	if err := tr.Feedback("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", time.Now()); err != nil {
		t.Error(err)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestParentAndContext: the router span continues the client's trace and
// the attempt span the router's, through the W3C headers.
func TestParentAndContext(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(Options{Config: cfg(16, 16), Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	r := tr.Router("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v", time.Now())
	tp, ts := r.Context()
	a := tr.Attempt(tp, ts, time.Now())
	a.End("503", "", time.Now())
	r.End("", "", time.Now())
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := exp.GetSpans()
	if len(got) != 2 {
		t.Fatalf("%d spans", len(got))
	}
	att, rt := got[0], got[1]
	if rt.Parent.SpanID().String() != "00f067aa0ba902b7" || rt.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("router parent %v", rt.Parent)
	}
	if att.Parent.SpanID() != rt.SpanContext.SpanID() || ts != "k=v" {
		t.Errorf("attempt parent %v, tracestate %q", att.Parent, ts)
	}
	if att.Status.Code.String() != "Error" {
		t.Errorf("attempt status %v", att.Status)
	}
	// An unsampled client trace is not recorded: no span at all.
	if s := tr.Router("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "", time.Now()); s != nil {
		t.Error("span for an unsampled parent")
	}
}

// blockingExporter holds every export until released, then fails or not.
type blockingExporter struct {
	release chan struct{}
	fail    bool
}

func (b *blockingExporter) ExportSpans(ctx context.Context, _ []sdktrace.ReadOnlySpan) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	if b.fail {
		return errors.New("collector down")
	}
	return nil
}

func (b *blockingExporter) Shutdown(context.Context) error { return nil }

// TestQueueDropsAndCounts: with the export stuck, ending spans never waits;
// what the queue cannot hold is dropped and counted, and a failed export
// counts its batch.
func TestQueueDropsAndCounts(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{}), fail: true}
	c := &counts{}
	tr, err := New(Options{Config: cfg(4, 2), Exporter: exp, Counter: c})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		tr.Router("", "", time.Now()).End("", "", time.Now())
	}
	// 2 in the export in flight (or about to be), up to 4 queued.
	if d := c.get(QueueFull); d < 20-4-2 {
		t.Errorf("dropped %d of 20 with a queue of 4", d)
	}
	close(exp.release)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if total := c.get(QueueFull) + c.get(ExportFailed); total != 20 || c.get(Exported) != 0 {
		t.Errorf("counts %v, want 20 dropped in all", c.n)
	}
}

// TestFeedbackSpan: a verdict is a span in the original trace, a child of
// and linked to the original span, with its attributes and event.
func TestFeedbackSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(Options{Config: cfg(16, 16), Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Feedback("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", time.Now(), attribute.Float64("llmproc.feedback.score", 1)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Feedback("nothex", "00f067aa0ba902b7", time.Now()); err == nil {
		t.Error("bad trace id accepted")
	}
	_ = tr.ForceFlush(context.Background())
	got := exp.GetSpans()
	if len(got) != 1 {
		t.Fatalf("%d spans", len(got))
	}
	s := got[0]
	if s.Name != FeedbackSpan || s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		s.Parent.SpanID().String() != "00f067aa0ba902b7" || len(s.Links) != 1 || len(s.Events) != 1 || len(s.Attributes) != 1 {
		t.Errorf("feedback span %+v", s)
	}
}
