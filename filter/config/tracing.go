package config

import (
	"net/url"
	"time"
)

// Tracing configures OpenTelemetry spans: llmproc's own (a router span per
// request, one span per attempt) and, when Envoy is set, Envoy's tracer in
// the rendered bootstrap, both exported to one OTLP collector. Without a
// tracing section llmproc makes no spans at all.
type Tracing struct {
	// Endpoint is the OTLP collector as a URL: http://collector:4317 for
	// gRPC in plaintext, https:// for TLS; for protocol http the path
	// defaults to /v1/traces (http://collector:4318).
	Endpoint string `yaml:"endpoint"`
	// Protocol is grpc (default) or http (OTLP/HTTP with protobuf bodies).
	Protocol string `yaml:"protocol"`
	// SampleRatio is the share of new traces sampled, from 0 to 1 (default
	// 1). A request whose traceparent carries a sampling decision keeps it.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// QueueSize bounds the ended spans waiting for export (default 2048);
	// a span that finds the queue full is dropped and counted.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most spans one export sends (default 512, at most
	// queue_size).
	BatchSize int `yaml:"batch_size"`
	// BatchTimeout is the longest a span waits for its batch (default 2s).
	BatchTimeout Duration `yaml:"batch_timeout"`
	// ExportTimeout bounds one export (default 5s); a batch that fails is
	// dropped and counted, never retried.
	ExportTimeout Duration `yaml:"export_timeout"`
	// ServiceName is the resource's service.name (default llmproc).
	ServiceName string `yaml:"service_name"`
	// Envoy renders Envoy's own OpenTelemetry tracer, sending to the same
	// collector, in the bootstrap (default true).
	Envoy *bool `yaml:"envoy"`
	// CaptureContent puts prompts and completions on the spans
	// (gen_ai.input.messages, gen_ai.output.messages); off by default.
	CaptureContent bool `yaml:"capture_content"`
	// CaptureMaxBytes caps each captured attribute (default 4096); longer
	// content is cut and flagged.
	CaptureMaxBytes int `yaml:"capture_max_bytes"`
}

// Tracing defaults.
const (
	DefaultTraceQueueSize    = 2048
	DefaultTraceBatchSize    = 512
	DefaultTraceBatchTimeout = 2 * time.Second
	DefaultTraceExport       = 5 * time.Second
	DefaultTraceCaptureBytes = 4096
)

func (t *Tracing) applyDefaults() {
	if t == nil {
		return
	}
	setDefault(&t.Protocol, "grpc")
	setDefault(&t.ServiceName, "llmproc")
	if t.SampleRatio == nil {
		one := 1.0
		t.SampleRatio = &one
	}
	if t.QueueSize == 0 {
		t.QueueSize = DefaultTraceQueueSize
	}
	if t.BatchSize == 0 {
		t.BatchSize = min(DefaultTraceBatchSize, t.QueueSize)
	}
	if t.BatchTimeout.Duration == 0 {
		t.BatchTimeout.Duration = DefaultTraceBatchTimeout
	}
	if t.ExportTimeout.Duration == 0 {
		t.ExportTimeout.Duration = DefaultTraceExport
	}
	if t.Envoy == nil {
		on := true
		t.Envoy = &on
	}
	if t.CaptureMaxBytes == 0 {
		t.CaptureMaxBytes = DefaultTraceCaptureBytes
	}
}

// EnvoyTracer reports whether the rendered bootstrap carries Envoy's tracer.
func (t *Tracing) EnvoyTracer() bool { return t != nil && t.Envoy != nil && *t.Envoy }

// Collector is the endpoint's URL (validated: absolute, http or https).
func (t *Tracing) Collector() *url.URL {
	u, _ := url.Parse(t.Endpoint)
	return u
}

func (v *validator) validateTracing(t *Tracing) {
	if t == nil {
		return
	}
	v.oneOf("tracing.protocol", t.Protocol, "grpc", "http")
	if t.Endpoint == "" {
		v.add("tracing.endpoint", "is required: the OTLP collector's URL (http://collector:4317 for grpc, http://collector:4318 for http)")
	} else if u, err := url.Parse(t.Endpoint); err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		v.add("tracing.endpoint", "want an http:// or https:// URL with a host, got %q", t.Endpoint)
	} else if t.Protocol == "grpc" && u.Path != "" && u.Path != "/" {
		v.add("tracing.endpoint", "an OTLP/gRPC endpoint has no path, got %q", t.Endpoint)
	} else if u.Port() == "" {
		v.add("tracing.endpoint", "name the port (4317 for grpc, 4318 for http), got %q", t.Endpoint)
	}
	if r := *t.SampleRatio; r < 0 || r > 1 || r != r {
		v.add("tracing.sample_ratio", "must be between 0 and 1, got %v", r)
	}
	if t.QueueSize < 1 || t.QueueSize > 1<<20 {
		v.add("tracing.queue_size", "must be between 1 and 1048576, got %d", t.QueueSize)
	}
	if t.BatchSize < 1 || t.BatchSize > t.QueueSize {
		v.add("tracing.batch_size", "must be between 1 and tracing.queue_size (%d), got %d", t.QueueSize, t.BatchSize)
	}
	if t.BatchTimeout.Duration < time.Millisecond || t.BatchTimeout.Duration > time.Minute {
		v.add("tracing.batch_timeout", "must be between 1ms and 1m, got %s", t.BatchTimeout.Duration)
	}
	if t.ExportTimeout.Duration < time.Millisecond || t.ExportTimeout.Duration > time.Minute {
		v.add("tracing.export_timeout", "must be between 1ms and 1m, got %s", t.ExportTimeout.Duration)
	}
	if t.CaptureMaxBytes < 1 || t.CaptureMaxBytes > 1<<20 {
		v.add("tracing.capture_max_bytes", "must be between 1 and 1048576, got %d", t.CaptureMaxBytes)
	}
	if t.ServiceName == "" {
		v.add("tracing.service_name", "must not be empty")
	}
}
