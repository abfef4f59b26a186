package extproc

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/metrics"
)

// testConfig is the registry every extproc test and benchmark runs on; %d is
// limits.max_request_bytes.
const testConfig = `
limits: {max_request_bytes: %d}
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
  - {name: local, schema: openai-compatible, url: "http://127.0.0.1:2/api"}
models:
  - {name: gpt-4o-mini, aliases: [mini], pool: cheap, price: {input: 0.15, output: 0.60, cached_input: 0.075}}
pools:
  - name: cheap
    backends: [{backend: primary, model: gpt-4o-mini-2024-07-18}, {backend: local}]
routes:
  - {name: auto, match: {model: auto}, pool: cheap}
`

type fixedRuntime struct{ rt *config.Runtime }

func (f fixedRuntime) Load() *config.Runtime { return f.rt }

type harness struct {
	t       *testing.T
	client  extprocv3.ExternalProcessorClient
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	srv     *Server
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

// newHarnessWith serves the test config with a response cache when tiers is
// set.
func newHarnessWith(t *testing.T, tiers *CacheTiers) *harness {
	t.Helper()
	return newHarnessFor(t, testRuntime(t, 4096), tiers)
}

// newHarnessFor serves rt.
func newHarnessFor(t *testing.T, rt *config.Runtime, tiers *CacheTiers) *harness {
	t.Helper()
	return newHarnessOpts(t, Options{Config: fixedRuntime{rt}, Cache: tiers})
}

// newHarnessOpts serves a Server built from o, with metrics.
func newHarnessOpts(t *testing.T, o Options) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	o.Metrics = m
	srv := New(o)
	t.Cleanup(srv.Close)
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return lis.Dial() }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &harness{t: t, client: extprocv3.NewExternalProcessorClient(conn), reg: reg, metrics: m, srv: srv}
}

// testRuntime compiles testConfig with a body limit, credentials from a fake
// environment ("sk-" + lowercased variable name).
func testRuntime(tb testing.TB, maxRequestBytes int) *config.Runtime {
	return compileTest(tb, fmt.Sprintf(testConfig, maxRequestBytes))
}

// compileTest compiles a YAML config with credentials from a fake environment
// ("sk-" + lowercased variable name).
func compileTest(tb testing.TB, yaml string) *config.Runtime {
	tb.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		tb.Fatal(err)
	}
	rt, err := config.Compile(cfg, func(k string) string { return "sk-" + strings.ToLower(k) })
	if err != nil {
		tb.Fatal(err)
	}
	return rt
}

// stream opens an ext_proc stream for a role.
func (h *harness) stream(role string) extprocv3.ExternalProcessor_ProcessClient {
	h.t.Helper()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-llmproc-role", role)
	s, err := h.client.Process(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func roundTrip(t *testing.T, s extprocv3.ExternalProcessor_ProcessClient, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	t.Helper()
	if err := s.Send(req); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func hdrs(eos bool, kv ...string) *extprocv3.HttpHeaders {
	m := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return &extprocv3.HttpHeaders{Headers: m, EndOfStream: eos}
}

func reqHeaders(h *extprocv3.HttpHeaders, attrs map[string]string) *extprocv3.ProcessingRequest {
	req := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: h}}
	if attrs != nil {
		fields := map[string]*structpb.Value{}
		for k, v := range attrs {
			fields[k] = structpb.NewStringValue(v)
		}
		req.Attributes = map[string]*structpb.Struct{attrsKey: {Fields: fields}}
	}
	return req
}

func reqBody(body string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}
}

func respHeaders(eos bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hdrs(eos, kv...)}}
}

func respBody(body string, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: eos}}}
}

// decided returns the router's decisions in a reply's llmproc dynamic
// metadata (the string fields).
func decided(resp *extprocv3.ProcessingResponse) map[string]string {
	out := map[string]string{}
	for k, v := range resp.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields() {
		if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			out[k] = s.StringValue
		}
	}
	return out
}

// withDecisions gives an upstream message the router's decisions as Envoy
// forwards them: metadata_context, namespace llmproc.
func withDecisions(req *extprocv3.ProcessingRequest, d map[string]string) *extprocv3.ProcessingRequest {
	fields := map[string]*structpb.Value{}
	for k, v := range d {
		fields[k] = structpb.NewStringValue(v)
	}
	req.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataNamespace: {Fields: fields}}}
	return req
}

// setHeaders flattens a reply's set headers into a map.
func setHeaders(c *extprocv3.CommonResponse) map[string]string {
	out := map[string]string{}
	for _, h := range c.GetHeaderMutation().GetSetHeaders() {
		out[h.Header.Key] = string(h.Header.RawValue)
	}
	return out
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
