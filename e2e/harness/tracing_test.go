package harness

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/llmproc/llmproc/e2e/otlpserver"
)

// mdProc is an ext_proc server that lets everything through and records
// each stream's role and gRPC metadata.
type mdProc struct {
	extprocv3.UnimplementedExternalProcessorServer
	mu  sync.Mutex
	mds []metadata.MD
}

func (m *mdProc) Process(st extprocv3.ExternalProcessor_ProcessServer) error {
	md, _ := metadata.FromIncomingContext(st.Context())
	m.mu.Lock()
	m.mds = append(m.mds, md)
	m.mu.Unlock()
	for {
		req, err := st.Recv()
		if err != nil {
			return nil
		}
		if err := st.Send(continueAll(req)); err != nil {
			return nil
		}
	}
}

func (m *mdProc) take() []metadata.MD {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.mds
	m.mds = nil
	return out
}

const tracingHCM = `          tracing:
            random_sampling: {value: %v}
            spawn_upstream_span: true
            provider:
              name: envoy.tracers.opentelemetry
              typed_config:
                "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
                service_name: edge
                grpc_service: {envoy_grpc: {cluster_name: ext_proc}}%s`

// TestEnvoyTracing: with the HCM's OpenTelemetry tracer, each ext_proc
// stream's gRPC metadata carries the W3C context of Envoy's span for the
// stream (traceparent and a tracestate, set even when empty), a CLIENT
// child of the request's "ingress" span, which continues the client's
// trace; an unreadable traceparent traces nothing; random_sampling decides
// for requests without one (the flags say so); the spans reach the
// collector cluster over OTLP with the configured service name.
func TestEnvoyTracing(t *testing.T) {
	for _, percent := range []float64{100, 0} {
		t.Run(fmt.Sprint(percent), func(t *testing.T) {
			proc := &mdProc{}
			rx := otlpserver.Start(t)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := grpc.NewServer()
			extprocv3.RegisterExternalProcessorServer(s, proc)
			coltracepb.RegisterTraceServiceServer(s, rx) // the collector, on the same cluster
			go s.Serve(ln)                               //nolint:errcheck
			t.Cleanup(s.Stop)
			a := newUpstream(t, "a", nil)
			e := start(t, bsParams{Proc: ln.Addr().String(), PoolA: []endpoint{{a.addr, 0, "a"}}, Upstream: true,
				HCMExtra: fmt.Sprintf(tracingHCM, percent, "")}, nil)

			const trace, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
			for _, c := range []struct {
				name, traceparent string
				sampled           bool
				traced            bool // any context injected
			}{
				{"client's sampled trace", "00-" + trace + "-" + parent + "-01", true, true},
				{"client's unsampled trace", "00-" + trace + "-" + parent + "-00", false, true},
				{"unreadable traceparent", "00-nonsense", false, false},
				{"none", "", percent == 100, true},
			} {
				hdr := map[string]string{"x-llmproc-pool": "a"}
				if c.traceparent != "" {
					hdr["traceparent"], hdr["tracestate"] = c.traceparent, "k=v"
				}
				if resp, body := mustDo(t, e, "POST", "/v1/chat/completions", `{}`, hdr); resp.StatusCode != 200 {
					t.Fatalf("%s: %d %s", c.name, resp.StatusCode, body)
				}
				mds := proc.take()
				if len(mds) != 2 {
					t.Fatalf("%s: %d ext_proc streams, want the router's and the attempt's", c.name, len(mds))
				}
				var ids []string
				for _, md := range mds {
					role := md.Get("x-llmproc-role")
					tp, ts := md.Get("traceparent"), md.Get("tracestate")
					if !c.traced {
						if len(tp) != 0 || len(ts) != 0 {
							t.Errorf("%s, %v: context injected: %v %v", c.name, role, tp, ts)
						}
						continue
					}
					if len(tp) != 1 || len(ts) != 1 {
						t.Fatalf("%s, %v: traceparent %v tracestate %v", c.name, role, tp, ts)
					}
					p := strings.Split(tp[0], "-")
					flags := "00"
					if c.sampled {
						flags = "01"
					}
					if len(p) != 4 || p[0] != "00" || len(p[1]) != 32 || len(p[2]) != 16 || p[3] != flags {
						t.Errorf("%s, %v: traceparent %q, want flags %s", c.name, role, tp[0], flags)
					}
					if c.traceparent != "" && (p[1] != trace || p[2] == parent || ts[0] != "k=v") {
						t.Errorf("%s, %v: %q %q does not continue the client's trace as a new span with its tracestate", c.name, role, tp[0], ts[0])
					}
					if c.traceparent == "" && ts[0] != "" {
						t.Errorf("%s, %v: tracestate %q, want empty", c.name, role, ts[0])
					}
					ids = append(ids, p[1]+"/"+p[2])
				}
				if !c.sampled {
					continue
				}
				// The sampled ones reach the collector: ingress, the two
				// streams' spans and the attempt's.
				traceID := strings.Split(ids[0], "/")[0]
				spans := rx.Trace(t, traceID, 4, 15*time.Second)
				byID := map[string]otlpserver.Span{}
				var ingress otlpserver.Span
				for _, sp := range spans {
					byID[sp.SpanID] = sp
					if sp.Name == "ingress" {
						ingress = sp
					}
				}
				wantParent := ""
				if c.traceparent != "" {
					wantParent = parent
				}
				if len(spans) != 4 || ingress.Kind != tracepb.Span_SPAN_KIND_SERVER || ingress.Parent != wantParent || ingress.Service != "edge" ||
					ingress.Str("http.status_code") != "200" {
					t.Fatalf("%s: spans %+v, want ingress (parent %q) and 3 children", c.name, spans, wantParent)
				}
				for _, id := range ids {
					sp := byID[strings.Split(id, "/")[1]]
					if sp.Name != ExtProcSpanName || sp.Parent != ingress.SpanID || sp.Kind != tracepb.Span_SPAN_KIND_CLIENT ||
						sp.Str("upstream_cluster") != "ext_proc" || sp.Str("status") != "canceled" {
						t.Errorf("%s: the injected span %s is %+v", c.name, id, sp)
					}
				}
				var attempt otlpserver.Span
				for _, sp := range spans {
					if sp.Name == "router pool/a egress" {
						attempt = sp
					}
				}
				if attempt.Parent != ingress.SpanID || attempt.Str("http.status_code") != "200" || attempt.Str("retry.count") != "" {
					t.Errorf("%s: attempt span %+v", c.name, attempt)
				}
			}
			if percent == 0 {
				// Nothing was sampled but the client's sampled trace (2
				// requests' worth of spans would be 8; only its 4 came).
				e.Close() //nolint:errcheck // flushes
				if n := len(rx.Spans()); n != 4 {
					t.Errorf("%d spans exported at random_sampling 0, want only the client-sampled request's 4", n)
				}
			}
		})
	}
}

// TestEnvoyTracingUnsupported: tracing settings the harness does not play
// make Start fail, naming the field.
func TestEnvoyTracingUnsupported(t *testing.T) {
	proc := startProc(t, &fakeProc{handle: func(string, *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) { return nil, nil }})
	for _, c := range []struct{ extra, want string }{
		{"\n            client_sampling: {value: 10}", "tracing: unsupported by the harness: client_sampling"},
		{"\n                sampler: {name: x, typed_config: {\"@type\": type.googleapis.com/google.protobuf.Empty}}", "typed_config: unsupported by the harness: sampler"},
	} {
		y := renderBootstrap(t, bsParams{Proc: proc, PoolA: []endpoint{{"127.0.0.1:1", 0, "a"}}, RouterFilterOn: true,
			HCMExtra: fmt.Sprintf(tracingHCM, 100, c.extra)})
		bs, err := LoadBootstrapYAML(y)
		if err != nil {
			t.Fatal(err)
		}
		e, err := Start(context.Background(), bs, Options{ListenAddr: "127.0.0.1:0"})
		if err == nil {
			e.Close() //nolint:errcheck
			t.Errorf("Start accepted %q", c.extra)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Start: %v, want %q", err, c.want)
		}
	}
}
