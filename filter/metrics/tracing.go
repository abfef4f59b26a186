package metrics

import "github.com/prometheus/client_golang/prometheus"

// Spans counts llmproc's ended trace spans by their fate: exported, or
// dropped because the export queue was full or the export failed (the
// collector down or slow). It implements tracing.Counter; it is apart from
// Metrics because only a config with a tracing section registers it.
type Spans struct {
	exported prometheus.Counter
	dropped  *prometheus.CounterVec
}

// NewSpans creates the span counters and registers them on reg.
func NewSpans(reg prometheus.Registerer) *Spans {
	s := &Spans{
		exported: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmproc_trace_spans_exported_total",
			Help: "Trace spans the OTLP collector accepted.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_trace_spans_dropped_total",
			Help: "Trace spans dropped, by reason: queue_full (tracing.queue_size reached) or export_failed (the collector refused, failed or timed out).",
		}, []string{"reason"}),
	}
	// Both reasons show from the start, at 0, so an alert on a rate works.
	s.dropped.WithLabelValues("queue_full")
	s.dropped.WithLabelValues("export_failed")
	reg.MustRegister(s.exported, s.dropped)
	return s
}

// TraceSpans counts n spans with one result: "exported", or a drop reason.
func (s *Spans) TraceSpans(result string, n int) {
	if result == "exported" {
		s.exported.Add(float64(n))
		return
	}
	s.dropped.WithLabelValues(result).Add(float64(n))
}
