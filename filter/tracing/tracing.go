// Package tracing makes llmproc's OpenTelemetry spans: one router span per
// request and one span per attempt, children of the trace the client or
// Envoy started (W3C traceparent and tracestate), with the attributes of the
// OpenTelemetry GenAI semantic conventions (SemConvVersion) and llmproc's
// own. Spans go to an OTLP collector (gRPC or HTTP) through the official Go
// SDK, in batches from a bounded queue that drops, and counts, rather than
// ever making a request wait.
//
// A nil *Tracer is the no-op tracer: every method is safe on it and on the
// nil *Span it returns, so without a tracing section a request pays one nil
// check per phase and nothing else.
package tracing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/llmproc/llmproc/filter/config"
)

// SemConvVersion is the version of the OpenTelemetry semantic conventions
// whose GenAI span names and attributes llmproc follows. The GenAI
// conventions are still in Development status: names may change in later
// versions, so llmproc pins the one it was written against.
const SemConvVersion = "1.41.0"

// SchemaURL is the semantic conventions' schema URL of SemConvVersion.
const SchemaURL = "https://opentelemetry.io/schemas/" + SemConvVersion

// ScopeName is the instrumentation scope of llmproc's spans.
const ScopeName = "github.com/llmproc/llmproc"

// Options builds a Tracer.
type Options struct {
	Config *config.Tracing // defaulted and validated
	// Version is llmproc's version (service.version).
	Version string
	Counter Counter
	// Exporter replaces the OTLP exporter the config names (tests).
	Exporter sdktrace.SpanExporter
}

// Tracer makes llmproc's spans; nil makes none.
type Tracer struct {
	tp         *sdktrace.TracerProvider
	tr         trace.Tracer
	capture    bool
	captureMax int
}

type nopCounter struct{}

func (nopCounter) TraceSpans(string, int) {}

// New builds the tracer of a tracing config; nil config, nil Tracer.
// Exporting starts lazily: New never waits for the collector.
func New(o Options) (*Tracer, error) {
	c := o.Config
	if c == nil {
		return nil, nil
	}
	if o.Counter == nil {
		o.Counter = nopCounter{}
	}
	exp := o.Exporter
	if exp == nil {
		var err error
		if exp, err = exporter(c); err != nil {
			return nil, fmt.Errorf("tracing.endpoint: %w", err)
		}
	}
	res := resource.NewWithAttributes(SchemaURL,
		attribute.String("service.name", c.ServiceName),
		attribute.String("service.version", o.Version),
		attribute.String("telemetry.sdk.language", "go"),
		attribute.String("telemetry.sdk.name", "opentelemetry"),
	)
	q := newQueue(exp, o.Counter, c.QueueSize, c.BatchSize, c.BatchTimeout.Duration, c.ExportTimeout.Duration)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(q),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*c.SampleRatio))),
	)
	return &Tracer{tp: tp, tr: tp.Tracer(ScopeName, trace.WithInstrumentationVersion(o.Version), trace.WithSchemaURL(SchemaURL)),
		capture: c.CaptureContent, captureMax: c.CaptureMaxBytes}, nil
}

// exporter is the OTLP exporter of the config, without retries: a batch
// that fails is dropped and counted, so a collector that is down costs one
// bounded attempt per batch, never a growing backlog.
func exporter(c *config.Tracing) (sdktrace.SpanExporter, error) {
	u := c.Collector()
	ctx := context.Background()
	if c.Protocol == "http" {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithTimeout(c.ExportTimeout.Duration),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
		if u.Scheme == "http" {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if p := strings.TrimSuffix(u.Path, "/"); p != "" {
			opts = append(opts, otlptracehttp.WithURLPath(p))
		}
		return otlptracehttp.New(ctx, opts...)
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(u.Host), otlptracegrpc.WithTimeout(c.ExportTimeout.Duration),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false})}
	if u.Scheme == "http" {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	return otlptracegrpc.New(ctx, opts...)
}

// Shutdown exports the spans still queued and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// ForceFlush exports the spans queued now (tests, shutdown).
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// Capture reports whether prompt and completion content go on spans, and
// the most bytes of each.
func (t *Tracer) Capture() (bool, int) {
	if t == nil {
		return false, 0
	}
	return t.capture, t.captureMax
}

var w3c = propagation.TraceContext{}

// parent is the span context of a W3C traceparent and tracestate; an
// invalid traceparent gives the empty context (a new trace).
func parent(traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return context.Background()
	}
	c := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		c["tracestate"] = tracestate
	}
	return w3c.Extract(context.Background(), c)
}

// Router starts the router span of a request, a child of the client's (or
// Envoy's) traceparent and tracestate, at start.
func (t *Tracer) Router(traceparent, tracestate string, start time.Time) *Span {
	return t.start(traceparent, tracestate, start, trace.SpanKindServer)
}

// Attempt starts the span of one attempt, a child of the router span's
// context (Span.Context, handed over in the dynamic metadata).
func (t *Tracer) Attempt(traceparent, tracestate string, start time.Time) *Span {
	return t.start(traceparent, tracestate, start, trace.SpanKindClient)
}

func (t *Tracer) start(traceparent, tracestate string, start time.Time, kind trace.SpanKind) *Span {
	if t == nil {
		return nil
	}
	// The name is the operation until the model is known (SetName).
	_, s := t.tr.Start(parent(traceparent, tracestate), "chat", trace.WithSpanKind(kind), trace.WithTimestamp(start))
	if !s.IsRecording() {
		return nil // not sampled: nothing to record, nothing to propagate but the parent's
	}
	return &Span{s: s}
}

// Span is one llmproc span; nil is a span that records nothing.
type Span struct {
	s trace.Span
}

// SetName renames the span.
func (s *Span) SetName(name string) {
	if s != nil {
		s.s.SetName(name)
	}
}

// Set adds attributes.
func (s *Span) Set(kv ...attribute.KeyValue) {
	if s != nil {
		s.s.SetAttributes(kv...)
	}
}

// Event adds an event with attributes.
func (s *Span) Event(name string, at time.Time, kv ...attribute.KeyValue) {
	if s != nil {
		s.s.AddEvent(name, trace.WithTimestamp(at), trace.WithAttributes(kv...))
	}
}

// Context is the span's context as a W3C traceparent and tracestate, for a
// child made elsewhere (the upstream role, the provider).
func (s *Span) Context() (traceparent, tracestate string) {
	if s == nil {
		return "", ""
	}
	c := propagation.MapCarrier{}
	w3c.Inject(trace.ContextWithSpan(context.Background(), s.s), c)
	return c["traceparent"], c["tracestate"]
}

// IDs are the span's trace id and span id in hex.
func (s *Span) IDs() (traceID, spanID string) {
	if s == nil {
		return "", ""
	}
	sc := s.s.SpanContext()
	return sc.TraceID().String(), sc.SpanID().String()
}

// End ends the span at the given time. A non-empty errType is the span's
// error.type and makes its status Error, with msg as the description.
func (s *Span) End(errType, msg string, at time.Time) {
	if s == nil {
		return
	}
	if errType != "" {
		s.s.SetAttributes(ErrorType.String(errType))
		s.s.SetStatus(codes.Error, msg)
	}
	s.s.End(trace.WithTimestamp(at))
}
