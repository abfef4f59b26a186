// Package otlpserver is a real OTLP trace receiver for tests: the OTLP/gRPC
// TraceService and the OTLP/HTTP POST /v1/traces (binary protobuf, and
// gzip), both on loopback, built on the protocol's own generated types
// (go.opentelemetry.io/proto/otlp, the module the OTLP exporters encode
// with). It keeps every span it receives.
package otlpserver

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"

	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, flattened for assertions.
type Span struct {
	Name                    string
	TraceID, SpanID, Parent string // hex; Parent "" for a root
	Kind                    tracepb.Span_SpanKind
	Status                  tracepb.Status_StatusCode
	StatusMessage           string
	Attrs                   map[string]any // string, int64, float64, bool or []string
	Events                  []string
	Links                   []string // span ids
	Service                 string   // the resource's service.name
	SchemaURL               string   // the scope's
	Start, End              time.Time
}

// Server receives spans over OTLP/gRPC and OTLP/HTTP.
type Server struct {
	coltracepb.UnimplementedTraceServiceServer
	grpcAddr, httpAddr string
	gs                 *grpc.Server
	hs                 *http.Server

	mu      sync.Mutex
	spans   []Span
	changed chan struct{}
}

// Start starts both receivers on free loopback ports; they stop when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{grpcAddr: gl.Addr().String(), httpAddr: hl.Addr().String(), changed: make(chan struct{})}
	s.gs = grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s.gs, s)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.serveHTTP)
	s.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.gs.Serve(gl) }()
	go func() { _ = s.hs.Serve(hl) }()
	t.Cleanup(func() {
		s.gs.Stop()
		_ = s.hs.Close()
	})
	return s
}

// GRPCEndpoint is the OTLP/gRPC receiver as tracing.endpoint takes it.
func (s *Server) GRPCEndpoint() string { return "http://" + s.grpcAddr }

// HTTPEndpoint is the OTLP/HTTP receiver as tracing.endpoint takes it.
func (s *Server) HTTPEndpoint() string { return "http://" + s.httpAddr }

// Export is the OTLP/gRPC TraceService's one method.
func (s *Server) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("content-type"); ct != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("content-encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.add(&req)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("content-type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (s *Server) add(req *coltracepb.ExportTraceServiceRequest) {
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				got = append(got, flatten(sp, service, ss.GetSchemaUrl()))
			}
		}
	}
	s.mu.Lock()
	s.spans = append(s.spans, got...)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func flatten(sp *tracepb.Span, service, schema string) Span {
	out := Span{Name: sp.Name, TraceID: hex.EncodeToString(sp.TraceId), SpanID: hex.EncodeToString(sp.SpanId),
		Parent: hex.EncodeToString(sp.ParentSpanId), Kind: sp.Kind, Status: sp.GetStatus().GetCode(),
		StatusMessage: sp.GetStatus().GetMessage(), Attrs: map[string]any{}, Service: service, SchemaURL: schema,
		Start: time.Unix(0, int64(sp.StartTimeUnixNano)), End: time.Unix(0, int64(sp.EndTimeUnixNano))}
	for _, kv := range sp.Attributes {
		out.Attrs[kv.Key] = value(kv.Value)
	}
	for _, e := range sp.Events {
		out.Events = append(out.Events, e.Name)
	}
	for _, l := range sp.Links {
		out.Links = append(out.Links, hex.EncodeToString(l.SpanId))
	}
	return out
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_ArrayValue:
		var out []string
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, fmt.Sprint(value(e)))
		}
		return out
	}
	return v.String()
}

// Spans returns every span received so far.
func (s *Server) Spans() []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Span(nil), s.spans...)
}

// Trace waits until the spans of trace id number at least n and returns
// them, or fails t after within. (A wait for arrival: spans come in
// batches, after the request's answer.)
func (s *Server) Trace(t testing.TB, traceID string, n int, within time.Duration) []Span {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		var got []Span
		for _, sp := range s.spans {
			if sp.TraceID == traceID {
				got = append(got, sp)
			}
		}
		changed := s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("trace %s: %d spans after %s, want %d: %+v", traceID, len(got), within, n, got)
		}
	}
}

// Int reads an int attribute ("" → -1 when absent), for messages.
func (sp Span) Int(k string) int64 {
	if v, ok := sp.Attrs[k].(int64); ok {
		return v
	}
	return -1
}

// Str reads a string attribute.
func (sp Span) Str(k string) string {
	if v, ok := sp.Attrs[k]; ok {
		if s, ok := v.(string); ok {
			return s
		}
		return fmt.Sprint(v)
	}
	return ""
}
