package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/metrics"
	"github.com/llmproc/llmproc/filter/tracing"
)

// newTracer is the tracer of the config's tracing section, with its span
// counters on reg; nil (no spans, no counters) without one. The section is
// read at start: a reload does not change where spans go.
func newTracer(cfg *config.Config, reg prometheus.Registerer, version string) (*tracing.Tracer, error) {
	if cfg.Tracing == nil {
		return nil, nil
	}
	return tracing.New(tracing.Options{Config: cfg.Tracing, Version: version, Counter: metrics.NewSpans(reg)})
}

// shutdownTracer exports what is queued, for at most the export timeout.
func shutdownTracer(t *tracing.Tracer, log *slog.Logger) {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("trace spans not all exported at shutdown", "err", err)
	}
}
