package tracing

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// FeedbackSpan is the name of the span a verdict on an earlier answer makes.
const FeedbackSpan = "llmproc.feedback"

// Feedback records a verdict on an answer whose span (traceID, spanID, hex)
// has long ended and been exported: an exported span takes no more events,
// so the verdict is a span of its own, named FeedbackSpan, in the same trace
// as a child of that span and linked to it, with the verdict's attributes
// (score, label…) on it and on its one "llmproc.feedback" event. It is
// exported like any span (sampled, since the original was). A nil Tracer
// records nothing; ids that are not valid hex are an error.
func (t *Tracer) Feedback(traceID, spanID string, at time.Time, kv ...attribute.KeyValue) error {
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		return fmt.Errorf("trace id %q: %w", traceID, err)
	}
	sid, err := trace.SpanIDFromHex(spanID)
	if err != nil {
		return fmt.Errorf("span id %q: %w", spanID, err)
	}
	if t == nil {
		return nil
	}
	orig := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), orig)
	_, s := t.tr.Start(ctx, FeedbackSpan, trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(at),
		trace.WithLinks(trace.Link{SpanContext: orig}), trace.WithAttributes(kv...))
	s.AddEvent(FeedbackSpan, trace.WithTimestamp(at), trace.WithAttributes(kv...))
	s.End(trace.WithTimestamp(at))
	return nil
}
