package harness

// Envoy's own tracing, as the HCM's tracing with the OpenTelemetry tracer
// (envoy.tracers.opentelemetry) makes it, played after Envoy's source:
//
//   - The HCM starts one span per request before its filters run
//     (ConnectionManagerImpl::ActiveStream::traceRequest). The tracer names
//     it "ingress" (TracerImpl::startSpan, source/common/tracing/tracer_impl.cc),
//     kind SERVER, tags node_id and zone. With a traceparent header it
//     continues that trace, keeping its sampled flag and tracestate; a
//     traceparent that cannot be parsed gives a null span: nothing is traced
//     or injected for that request (Driver::startSpan,
//     source/extensions/tracers/opentelemetry/opentelemetry_tracer_impl.cc).
//     Without one, random_sampling decides.
//   - Every ext_proc stream, of the downstream filters and of the cluster's
//     upstream filters alike, is opened with the request's active span as
//     parent (Filter::openStream, source/extensions/filters/http/ext_proc/ext_proc.cc:
//     StreamOptions().setParentSpan(decoder_callbacks_->activeSpan()); an
//     upstream filter's activeSpan is the downstream one,
//     UpstreamRequestFilterManagerCallbacks::activeSpan in
//     source/common/router/upstream_request.cc). The gRPC client spawns a
//     CLIENT child "async envoy.service.ext_proc.v3.ExternalProcessor.Process
//     egress" tagged upstream_cluster, upstream_address and component, and
//     injects it into the stream's initial metadata before sending it
//     (AsyncStreamImpl::AsyncStreamImpl and ::initialize,
//     source/common/grpc/async_client_impl.cc). The OpenTelemetry tracer
//     injects W3C headers: traceparent 00-<trace id>-<span id>-<flags> and
//     tracestate, set even when empty (Span::injectContext,
//     source/extensions/tracers/opentelemetry/tracer.cc). The span ends when
//     the stream is closed (tag status canceled: AsyncStreamImpl::closeStream)
//     or by the server (grpc.status_code, error on a non-OK status:
//     AsyncStreamImpl::notifyRemoteClose).
//   - With spawn_upstream_span each attempt gets a CLIENT child of the
//     request's span, "router <cluster> egress", tagged retry.count from the
//     second attempt on (UpstreamRequest::UpstreamRequest), and
//     http.status_code and error when it ends.
//   - Spans are exported over OTLP (gRPC or HTTP, the OpenTelemetryConfig's
//     collector cluster) with resource service.name = service_name, in
//     batches of 5 or every 5 s (tracing.opentelemetry.min_flush_spans and
//     flush_interval_ms, Tracer::sendSpan and enableTimer).
//
// Not played: Envoy's injection of its upstream span into the request it
// sends upstream (UpstreamRequest::onPoolReady injects into the header map
// the upstream filters also mutate, so which traceparent reaches the
// provider depends on whether the connection is ready before or after
// llmproc's upstream filter answers; the harness leaves the header the
// filters set), custom tags, client_sampling and overall_sampling (refused
// at Start), the tracer's sampler and resource detectors.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ExtProcSpanName is the name of the span Envoy's gRPC client makes for an
// ext_proc stream ("async <service>.<method> egress").
const ExtProcSpanName = "async envoy.service.ext_proc.v3.ExternalProcessor.Process egress"

// tracingSpec is the HCM's tracing as compiled; its exporter is made when
// the plan is installed (one per spec, shared by the plans that have it).
type tracingSpec struct {
	percent       float64 // random_sampling, 0..100
	spawnUpstream bool
	service       string
	protocol      string // grpc | http
	collector     string // host:port of the collector cluster
	path          string // OTLP/HTTP path
}

// compileTracing reads the HCM's tracing: the OpenTelemetry tracer over an
// envoy_grpc service or an http_service, both on a static cluster.
func (p *plan) compileTracing(t *hcmv3.HttpConnectionManager_Tracing, path string) error {
	if t == nil {
		return nil
	}
	if err := checkAllowed(t, path, []string{"provider", "random_sampling", "spawn_upstream_span"}); err != nil {
		return err
	}
	prov := t.GetProvider()
	if err := checkAllowed(prov, path+".provider", []string{"name", "typed_config"}); err != nil {
		return err
	}
	if prov.GetName() != "envoy.tracers.opentelemetry" {
		return fmt.Errorf("%s.provider.name %q: only envoy.tracers.opentelemetry is played by the harness", path, prov.GetName())
	}
	oc := &tracev3.OpenTelemetryConfig{}
	if err := anyTo(prov.GetTypedConfig(), oc); err != nil {
		return fmt.Errorf("%s.provider: %w", path, err)
	}
	if err := checkAllowed(oc, path+".provider.typed_config", []string{"grpc_service", "http_service", "service_name"}); err != nil {
		return err
	}
	spec := &tracingSpec{percent: 100, spawnUpstream: t.GetSpawnUpstreamSpan().GetValue(), service: oc.GetServiceName()}
	if rs := t.GetRandomSampling(); rs != nil {
		spec.percent = rs.GetValue()
	}
	var cluster string
	switch {
	case oc.GetGrpcService() != nil:
		spec.protocol, cluster = "grpc", oc.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	case oc.GetHttpService() != nil:
		uri := oc.GetHttpService().GetHttpUri()
		u, err := url.Parse(uri.GetUri())
		if err != nil {
			return fmt.Errorf("%s.provider.typed_config.http_service.http_uri.uri: %w", path, err)
		}
		spec.protocol, cluster, spec.path = "http", uri.GetCluster(), u.Path
	default:
		return fmt.Errorf("%s.provider.typed_config: neither grpc_service nor http_service", path)
	}
	cl := p.clusters[cluster]
	if cl == nil || len(cl.hosts) == 0 {
		return fmt.Errorf("%s: collector cluster %q unknown or without endpoints", path, cluster)
	}
	spec.collector = cl.hosts[0].addr
	p.tracing = spec
	return nil
}

// envoyTracer exports the spans of one tracingSpec.
type envoyTracer struct {
	spec tracingSpec
	tp   *sdktrace.TracerProvider
	tr   trace.Tracer
}

func newEnvoyTracer(spec tracingSpec) (*envoyTracer, error) {
	ctx := context.Background()
	var exp sdktrace.SpanExporter
	var err error
	if spec.protocol == "http" {
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(spec.collector), otlptracehttp.WithInsecure(),
			otlptracehttp.WithURLPath(spec.path), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	} else {
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(spec.collector), otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	}
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(5), sdktrace.WithBatchTimeout(5*time.Second)),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", spec.service))),
		// The sampling decision is Envoy's, made below; a span started
		// not sampled is never exported.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	return &envoyTracer{spec: spec, tp: tp, tr: tp.Tracer("envoy")}, nil
}

// tracerFor returns the installed tracer of spec, making it once.
func (e *Envoy) tracerFor(spec tracingSpec) (*envoyTracer, error) {
	if t := e.tracers[spec]; t != nil {
		return t, nil
	}
	t, err := newEnvoyTracer(spec)
	if err != nil {
		return nil, err
	}
	if e.tracers == nil {
		e.tracers = map[tracingSpec]*envoyTracer{}
	}
	e.tracers[spec] = t
	return t, nil
}

// closeTracers exports what is still buffered, as Envoy flushes at
// shutdown, and stops the exporters.
func (e *Envoy) closeTracers() error {
	var errs []error
	for _, t := range e.tracers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, t.tp.Shutdown(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

// envoySpan is one of Envoy's spans; nil records nothing (no tracing, or
// the null span of an unreadable traceparent).
type envoySpan struct {
	s    trace.Span
	t    *envoyTracer
	once sync.Once
}

var w3c = propagation.TraceContext{}

// ingress starts the request's span from the request headers, after the
// HCM's header sanitizing and before any filter.
func (t *envoyTracer) ingress(h *headerMap, start time.Time) *envoySpan {
	if t == nil {
		return nil
	}
	parent := context.Background()
	if tp, ok := h.get("traceparent"); ok {
		c := propagation.MapCarrier{"traceparent": tp}
		if ts, ok := h.get("tracestate"); ok {
			c["tracestate"] = ts
		}
		parent = w3c.Extract(parent, c)
		if !trace.SpanContextFromContext(parent).IsValid() {
			return nil // Driver::startSpan: a NullSpan
		}
	} else if rand.Float64()*100 >= t.spec.percent {
		// Not sampled: a span that is never exported, whose flags still
		// say so downstream.
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: randomTraceID(), SpanID: randomSpanID()})
		parent = trace.ContextWithRemoteSpanContext(parent, sc)
	}
	_, s := t.tr.Start(parent, "ingress", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("node_id", "harness"), attribute.String("zone", ""), attribute.String("component", "proxy")))
	return &envoySpan{s: s, t: t}
}

func randomTraceID() trace.TraceID {
	var id trace.TraceID
	for i := range id {
		id[i] = byte(rand.UintN(256))
	}
	return id
}

func randomSpanID() trace.SpanID {
	var id trace.SpanID
	for i := range id {
		id[i] = byte(rand.UintN(256))
	}
	return id
}

// child starts a CLIENT child of s (Span::spawnChild).
func (s *envoySpan) child(name string, kv ...attribute.KeyValue) *envoySpan {
	if s == nil {
		return nil
	}
	_, c := s.t.tr.Start(trace.ContextWithSpan(context.Background(), s.s), name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(kv...))
	return &envoySpan{s: c, t: s.t}
}

// inject adds s's context to outgoing gRPC metadata as Envoy's OpenTelemetry
// tracer does: traceparent, and tracestate even when it is empty.
func (s *envoySpan) inject(ctx context.Context) context.Context {
	if s == nil {
		return ctx
	}
	sc := s.s.SpanContext()
	flags := "00"
	if sc.IsSampled() {
		flags = "01"
	}
	return metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-"+flags,
		"tracestate", sc.TraceState().String())
}

func (s *envoySpan) set(kv ...attribute.KeyValue) {
	if s != nil {
		s.s.SetAttributes(kv...)
	}
}

// end finishes s once; later calls change nothing (Envoy's span is sent at
// its first finishSpan).
func (s *envoySpan) end(kv ...attribute.KeyValue) {
	if s == nil {
		return
	}
	s.once.Do(func() {
		s.s.SetAttributes(kv...)
		s.s.End()
	})
}

// extProcSpan starts the span of an ext_proc stream to cfg's cluster.
func extProcSpan(parent *envoySpan, cfg *procConfig) *envoySpan {
	return parent.child(ExtProcSpanName, attribute.String("upstream_cluster", cfg.clusterName),
		attribute.String("upstream_address", cfg.clusterName), attribute.String("component", "proxy"))
}

// canceled ends an ext_proc stream's span when Envoy closes the stream
// (AsyncStreamImpl::closeStream: status canceled).
func (s *envoySpan) canceled() { s.end(attribute.String("status", "canceled")) }

// grpcClosed ends an ext_proc stream's span when the server closed it.
func (s *envoySpan) grpcClosed(err error) {
	if s == nil {
		return
	}
	code := grpcCode(err)
	kv := []attribute.KeyValue{attribute.String("grpc.status_code", strconv.Itoa(code))}
	if code != 0 {
		kv = append(kv, attribute.String("error", "true"))
	}
	s.end(kv...)
}

// upstreamSpan starts an attempt's "router <cluster> egress" span.
func upstreamSpan(parent *envoySpan, cluster string, attempt int) *envoySpan {
	if parent == nil || !parent.t.spec.spawnUpstream {
		return nil
	}
	kv := []attribute.KeyValue{attribute.String("upstream_cluster", cluster), attribute.String("component", "proxy")}
	if attempt > 1 {
		kv = append(kv, attribute.String("retry.count", strconv.Itoa(attempt-1)))
	}
	return parent.child("router "+cluster+" egress", kv...)
}

// grpcCode is the gRPC status of a stream's end (io.EOF: OK).
func grpcCode(err error) int {
	if err == nil || errors.Is(err, io.EOF) {
		return 0
	}
	return int(status.Code(err))
}

// httpEnded ends a request or attempt span with its status (0: none, the
// stream was reset).
func (s *envoySpan) httpEnded(status int, flags []string) {
	if s == nil {
		return
	}
	kv := []attribute.KeyValue{attribute.String("http.status_code", strconv.Itoa(status))}
	if len(flags) > 0 {
		kv = append(kv, attribute.String("response_flags", strings.Join(flags, ",")))
	}
	if status == 0 || status >= 500 {
		kv = append(kv, attribute.String("error", "true"))
	}
	s.end(kv...)
}
