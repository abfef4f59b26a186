package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"
)

const (
	quickstart = "../../examples/quickstart/llmproc.yaml"
	loadConfig = "testdata/llmproc.yaml"
)

// TestMain lets the test binary serve as the floor when run() re-executes
// it (os.Executable) with -serve-noop.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve-noop" {
		if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// loadTopology loads the load config: its topology for the workloads, and
// a compiled runtime (dummy credentials) for an in-process llmproc.
func loadTopology(t *testing.T, path string) (*config.Config, *config.Runtime, *config.Runtime) {
	t.Helper()
	setAWSDummies()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := config.Topology(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Compile(cfg, func(string) string { return "sk-test" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg, topo, rt
}

func mustServer(t *testing.T, cfg *config.Config, rt *config.Runtime) *extproc.Server {
	t.Helper()
	srv, err := llmprocServer(cfg, rt)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// serve runs an ext_proc server on 127.0.0.1:0 and returns a client for it.
func serve(t *testing.T, srv extprocv3.ExternalProcessorServer, maxRequestBytes int64) extprocv3.ExternalProcessorClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpcServer(maxRequestBytes)
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return extprocv3.NewExternalProcessorClient(conn)
}

// TestCycle runs a few cycles of every case against an in-process llmproc
// (every reply checked: see verifyLlmproc) and against the floor with the
// probe-built messages. The cache case's first cycle fills the cache; the
// next ones must be hits answered at the router.
func TestCycle(t *testing.T) {
	cfg, topo, rt := loadTopology(t, loadConfig)
	llmproc := serve(t, mustServer(t, cfg, rt), cfg.Limits.MaxRequestBytes)
	floor := serve(t, newNoop(), cfg.Limits.MaxRequestBytes)
	probe := serve(t, mustServer(t, cfg, rt), cfg.Limits.MaxRequestBytes)
	for _, c := range allCases {
		t.Run(c.name, func(t *testing.T) {
			lw, err := llmprocWorkload(c, topo)
			if err != nil {
				t.Fatal(err)
			}
			fw, err := floorWorkload(t.Context(), c, topo, probe)
			if err != nil {
				t.Fatal(err)
			}
			first := *lw
			first.allowMiss = true
			o, err := runCycle(t.Context(), llmproc, &first)
			if err != nil {
				t.Fatalf("first llmproc cycle: %v", err)
			}
			full := o.msgs
			for i := range 3 {
				o, err := runCycle(t.Context(), llmproc, lw)
				if err != nil {
					t.Fatalf("llmproc cycle %d: %v", i, err)
				}
				if c.cacheHit && (o.immediate == nil || o.msgs != 2) {
					t.Fatalf("llmproc cycle %d: %d messages, immediate %v; want a hit after the router's 2", i, o.msgs, o.immediate != nil)
				}
			}
			fo, err := runCycle(t.Context(), floor, fw)
			if err != nil {
				t.Fatalf("floor cycle: %v", err)
			}
			// The floor always gets the full sequence: router 2, upstream
			// headers, body, response headers and every chunk.
			if want := 5 + len(fw.chunks); fo.msgs != want {
				t.Errorf("floor cycle sent %d messages, want %d", fo.msgs, want)
			}
			if !c.cacheHit && full > fo.msgs {
				t.Errorf("llmproc cycle sent %d messages, more than the full sequence (%d)", full, fo.msgs)
			}
			if got := fw.upHeaders.GetAttributes()[attrsKey].GetFields()[extproc.AttrBackend].GetStringValue(); got != lw.backend {
				t.Errorf("floor's upstream attributes name backend %q, want %q", got, lw.backend)
			}
		})
	}
}

// TestCycleRejectsUnexpectedReplies makes sure the checks are live: an
// immediate response, or the floor's empty replies where llmproc's are
// expected, or a cache miss where a hit is required, fail the cycle.
func TestCycleRejectsUnexpectedReplies(t *testing.T) {
	cfg, topo, rt := loadTopology(t, loadConfig)
	llmproc := serve(t, mustServer(t, cfg, rt), cfg.Limits.MaxRequestBytes)
	floor := serve(t, newNoop(), cfg.Limits.MaxRequestBytes)

	c, _ := caseByName(case2KSSE)
	bad, err := llmprocWorkload(c, topo)
	if err != nil {
		t.Fatal(err)
	}
	bad.routerBody = bodyMsg([]byte(`{"model":`)) // llmproc answers 400
	c, _ = caseByName(case2KJSON)
	strict, err := llmprocWorkload(c, topo)
	if err != nil {
		t.Fatal(err)
	}
	c, _ = caseByName(caseCacheHit)
	miss, err := llmprocWorkload(c, topo)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		client extprocv3.ExternalProcessorClient
		w      *workload
	}{
		{"immediate response", llmproc, bad},
		{"noop replies checked as llmproc", floor, strict},
		{"cache miss after warm-up", llmproc, miss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCycle(t.Context(), tt.client, tt.w)
			if !errors.Is(err, errUnexpected) {
				t.Fatalf("cycle error %v, want an unexpected reply", err)
			}
		})
	}
}

// overrider answers like the floor but puts mode_override on its
// upstream request-headers reply, and records the messages it got.
type overrider struct {
	extprocv3.UnimplementedExternalProcessorServer
	mode *extprocfilterv3.ProcessingMode
	mu   sync.Mutex
	got  []string
}

func (s *overrider) Process(st extprocv3.ExternalProcessor_ProcessServer) error {
	n := newNoop()
	upstream := false // the stream's first message carried attributes
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var kind string
		var resp *extprocv3.ProcessingResponse
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			kind, resp = "request_headers", n.replies[0]
			if upstream = req.GetAttributes() != nil; upstream {
				resp = &extprocv3.ProcessingResponse{Response: resp.Response, ModeOverride: s.mode}
			}
		case *extprocv3.ProcessingRequest_RequestBody:
			kind, resp = "request_body", n.replies[1]
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			kind, resp = "response_headers", n.replies[3]
		case *extprocv3.ProcessingRequest_ResponseBody:
			kind, resp = "response_body", n.replies[4]
		}
		if upstream {
			kind = "upstream " + kind
		}
		s.mu.Lock()
		s.got = append(s.got, kind)
		s.mu.Unlock()
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

// TestModeOverride checks the driver follows mode_override on the upstream
// request-headers reply the way Envoy does: the request body is not sent
// when the override says NONE (both body modes are taken from the
// override, so one that leaves response_body_mode unset also stops the
// response body), and the override is ignored when the filter does not
// allow it or allowed_override_modes does not list it.
func TestModeOverride(t *testing.T) {
	_, topo, _ := loadTopology(t, loadConfig)
	none := extprocfilterv3.ProcessingMode_NONE
	streamed := extprocfilterv3.ProcessingMode_STREAMED
	skipBody := &extprocfilterv3.ProcessingMode{RequestBodyMode: none, ResponseBodyMode: streamed}
	tests := []struct {
		name      string
		override  *extprocfilterv3.ProcessingMode
		allow     bool
		allowed   []*extprocfilterv3.ProcessingMode
		upBody    bool
		respChunk int
	}{
		{"no override", nil, true, nil, true, 1},
		{"request body NONE", skipBody, true, nil, false, 1},
		{"only request_body_mode set", &extprocfilterv3.ProcessingMode{RequestBodyMode: none}, true, nil, false, 0},
		{"override not allowed", skipBody, false, nil, true, 1},
		{"not in allowed_override_modes", skipBody, true, []*extprocfilterv3.ProcessingMode{{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED, ResponseBodyMode: streamed}}, true, 1},
		// Envoy compares the effective mode (the filter's header and
		// trailer modes kept) with each entry, request_header_mode aside.
		{"in allowed_override_modes", skipBody, true, []*extprocfilterv3.ProcessingMode{{
			RequestBodyMode: none, ResponseBodyMode: streamed, ResponseHeaderMode: extprocfilterv3.ProcessingMode_SEND,
			RequestTrailerMode: extprocfilterv3.ProcessingMode_SKIP, ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		}}, false, 1},
		{"allowed entry with the header modes unset", skipBody, true, []*extprocfilterv3.ProcessingMode{{RequestBodyMode: none, ResponseBodyMode: streamed}}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &overrider{mode: tt.override}
			client := serve(t, srv, 8<<20)
			c, _ := caseByName(case2KJSON)
			w, err := llmprocWorkload(c, topo)
			if err != nil {
				t.Fatal(err)
			}
			w.check, w.verify = false, nil
			up := *w.upstream
			up.allowOverride, up.allowedModes = tt.allow, tt.allowed
			w.upstream = &up
			if _, err := runCycle(t.Context(), client, w); err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(srv.got, ",")
			if got := strings.Contains(joined, "upstream request_body"); got != tt.upBody {
				t.Errorf("upstream request body sent %v, want %v (%s)", got, tt.upBody, joined)
			}
			if got := strings.Count(joined, "upstream response_body"); got != tt.respChunk {
				t.Errorf("%d upstream response body messages, want %d (%s)", got, tt.respChunk, joined)
			}
			if !strings.HasPrefix(joined, "request_headers,request_body,upstream request_headers") {
				t.Errorf("sequence %s", joined)
			}
		})
	}
}

// TestDriveStopsAtCycleLimit checks the cycle bound and that every counted
// cycle has a latency.
func TestDriveStopsAtCycleLimit(t *testing.T) {
	cfg, topo, rt := loadTopology(t, loadConfig)
	client := serve(t, newNoop(), cfg.Limits.MaxRequestBytes)
	probe := serve(t, mustServer(t, cfg, rt), cfg.Limits.MaxRequestBytes)
	c, _ := caseByName(case2KSSE)
	w, err := floorWorkload(t.Context(), c, topo, probe)
	if err != nil {
		t.Fatal(err)
	}
	// The duration only bounds the test; the limit ends the run.
	ph, err := drive(t.Context(), []extprocv3.ExternalProcessorClient{client}, w, 4, time.Minute, 25)
	if err != nil {
		t.Fatal(err)
	}
	if ph.cycles != 25 || len(ph.lat) != 25 || ph.msgs != 5+sseEvents {
		t.Fatalf("%d cycles, %d latencies, %d messages a cycle; want 25, 25, %d", ph.cycles, len(ph.lat), ph.msgs, 5+sseEvents)
	}
}

// TestDriveRate checks the open loop starts the scheduled number of cycles
// and measures each from its scheduled start.
func TestDriveRate(t *testing.T) {
	cfg, topo, rt := loadTopology(t, loadConfig)
	client := serve(t, newNoop(), cfg.Limits.MaxRequestBytes)
	probe := serve(t, mustServer(t, cfg, rt), cfg.Limits.MaxRequestBytes)
	c, _ := caseByName(case2KJSON)
	w, err := floorWorkload(t.Context(), c, topo, probe)
	if err != nil {
		t.Fatal(err)
	}
	ph, err := driveRate(t.Context(), []extprocv3.ExternalProcessorClient{client}, w, 500, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(ph.lat) != 50 {
		t.Fatalf("%d cycles, want 50", len(ph.lat))
	}
	for i, l := range ph.lat {
		if l <= 0 {
			t.Fatalf("cycle %d has no latency", i)
		}
	}
}

// TestRunSpawned is `make load` in miniature: the driver builds and spawns
// llmproc and the floor, runs two short rounds of three cases and a short
// rate window, and prints the tables.
func TestRunSpawned(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and spawns llmproc")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	var out, errOut bytes.Buffer
	md := filepath.Join(t.TempDir(), "load.md")
	args := []string{"-config", loadConfig, "-rounds", "2", "-cycles", "15", "-duration", "20s", "-warmup", "0", "-concurrency", "2", "-conns", "1",
		"-cases", "2k-json,cache-hit,bedrock-stream", "-rate", "200", "-rate-duration", "100ms", "-markdown", md}
	if err := run(t.Context(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.Bytes())
	}
	for _, want := range []string{"pinning: driver may run on CPUs", "pinning: llmproc server pid", "| 2 KB request, JSON answer |", "| Bedrock event stream", "added by llmproc at p99"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.Bytes())
		}
	}
	b, err := os.ReadFile(md)
	if err != nil || !bytes.Contains(b, []byte("| case |")) {
		t.Errorf("markdown file: %v %q", err, b)
	}
}

func TestWriteConfig(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "llmproc.yaml")
	if err := writeConfig(quickstart, dst, "127.0.0.1:40001", "127.0.0.1:40002", true); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(dst)
	if err != nil {
		t.Fatal(err)
	}
	if got.Listen.GRPC != "127.0.0.1:40001" || got.Listen.HTTP != "127.0.0.1:40002" || !got.Listen.Pprof {
		t.Errorf("listen %+v", got.Listen)
	}
	orig, err := config.Load(quickstart)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Backends) != len(orig.Backends) || len(got.Pools) != len(orig.Pools) || len(got.Routes) != len(orig.Routes) {
		t.Errorf("the copy lost sections: %+v", got)
	}
	env := credentialEnv(orig, nil)
	for _, b := range orig.Backends {
		if b.Credential.Env == "" || os.Getenv(b.Credential.Env) != "" {
			continue
		}
		found := false
		for _, kv := range env {
			if len(kv) > len(b.Credential.Env) && kv[:len(b.Credential.Env)+1] == b.Credential.Env+"=" {
				found = true
			}
		}
		if !found {
			t.Errorf("no dummy %s in %q", b.Credential.Env, env)
		}
	}
}

func TestCPUTime(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := cpuTime(-1); err == nil {
		t.Error("no error for a missing process")
	}
}

func TestAffinity(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	a, err := processAffinity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.allowed) == 0 || a.threads == 0 || !a.ran.subsetOf(a.allowed) {
		t.Fatalf("affinity %+v", a)
	}
	if _, err := checkPinned("self", os.Getpid(), cpuSet{a.allowed[len(a.allowed)-1] + 1}); err == nil {
		t.Error("no error for a CPU set the process is not pinned to")
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in, out string
		err     bool
	}{{"1", "1", false}, {"0-2,5", "0-2,5", false}, {"3,1,2", "1-3", false}, {"", "none", false}, {"2-1", "", true}, {"x", "", true}}
	for _, tt := range tests {
		got, err := parseCPUList(tt.in)
		if (err != nil) != tt.err || (err == nil && got.String() != tt.out) {
			t.Errorf("parseCPUList(%q) = %s, %v; want %s (error %v)", tt.in, got, err, tt.out, tt.err)
		}
	}
}

func TestPercentile(t *testing.T) {
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}}
	for _, tt := range tests {
		if got := percentile(lat, tt.q); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.q*100, got, tt.want)
		}
	}
}

// fakeAIGateway answers like Envoy AI Gateway's extproc: the router's
// request-headers reply adds the internal request id, its body reply the
// model header with clear_route_cache; the upstream stream (told apart by
// its attributes) must carry that id and answers its request headers with
// CONTINUE_AND_REPLACE and the body; a streamed answer's response headers
// are answered with mode_override STREAMED. It records what it got.
type fakeAIGateway struct {
	extprocv3.UnimplementedExternalProcessorServer
	mu  sync.Mutex
	got []string
}

func (f *fakeAIGateway) Process(st extprocv3.ExternalProcessor_ProcessServer) error {
	upstream, stream := false, false
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		cr := &extprocv3.CommonResponse{}
		resp := &extprocv3.ProcessingResponse{}
		kind := ""
		switch r := req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			kind = "request_headers"
			upstream = req.GetAttributes() != nil
			if upstream {
				id, _ := headerList(r.RequestHeaders.GetHeaders().GetHeaders()).get("x-ai-eg-internal-req-id")
				if id != "req-1" || !strings.Contains(req.GetAttributes()[attrsKey].GetFields()["xds.upstream_host_metadata"].GetStringValue(), "per_route_rule_backend_name") {
					return errors.New("upstream stream without the router's id or the endpoint metadata")
				}
				cr.Status = extprocv3.CommonResponse_CONTINUE_AND_REPLACE
				cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(`{"model":"x"}`)}}
			} else {
				cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-ai-eg-internal-req-id", RawValue: []byte("req-1")}}}}
			}
			resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: cr}}
		case *extprocv3.ProcessingRequest_RequestBody:
			kind = "request_body"
			stream = gjson.GetBytes(r.RequestBody.GetBody(), "stream").Bool()
			cr.ClearRouteCache = true
			cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-ai-eg-model", RawValue: []byte(gjson.GetBytes(r.RequestBody.GetBody(), "model").String())}}}}
			resp.Response = &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cr}}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			kind = "response_headers"
			if stream {
				resp.ModeOverride = &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}
			}
			resp.Response = &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: cr}}
		case *extprocv3.ProcessingRequest_ResponseBody:
			kind = "response_body"
			resp.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: cr}}
		}
		if upstream {
			kind = "upstream " + kind
		}
		f.mu.Lock()
		f.got = append(f.got, kind)
		f.mu.Unlock()
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

// TestTargetAIGateway checks the -target sequence against a server that
// answers like Envoy AI Gateway: router request headers and body, the
// upstream request headers only (body NONE, responses SKIP), then the
// response on the router stream — one buffered message for JSON, every
// chunk once its response-headers reply overrode the body to STREAMED.
func TestTargetAIGateway(t *testing.T) {
	to := targetOptions{addr: "127.0.0.1:1", kind: "aigw", backend: "default/openai/route/llm/rule/0/ref/0", route: "llm"}
	for _, tt := range []struct {
		name     string
		respBody int
	}{{case2KJSON, 1}, {case2KSSE, sseEvents}} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAIGateway{}
			client := serve(t, f, 8<<20)
			c, _ := caseByName(tt.name)
			w, err := to.workload(c, true)
			if err != nil {
				t.Fatal(err)
			}
			o, err := runCycle(t.Context(), client, w)
			if err != nil {
				t.Fatal(err)
			}
			want := "request_headers,request_body,upstream request_headers,response_headers" + strings.Repeat(",response_body", tt.respBody)
			if got := strings.Join(f.got, ","); got != want {
				t.Errorf("sequence\n%s\nwant\n%s", got, want)
			}
			if string(o.upBody) != `{"model":"x"}` {
				t.Errorf("the provider gets %q, want the upstream reply's body", o.upBody)
			}
			fw, err := to.workload(c, false)
			if err != nil {
				t.Fatal(err)
			}
			fo, err := runCycle(t.Context(), serve(t, newNoop(), 8<<20), fw)
			if err != nil {
				t.Fatal(err)
			}
			if fo.msgs != 4+1 {
				t.Errorf("the floor got %d messages in the AI Gateway sequence, want 5 (the buffered response body once)", fo.msgs)
			}
		})
	}
}

// TestRunTarget runs the driver's -target mode end to end against the fake
// AI Gateway (in this process, so its CPU is the test's) next to a spawned
// floor, and checks the tables name the target.
func TestRunTarget(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpcServer(8 << 20)
	extprocv3.RegisterExternalProcessorServer(gs, &fakeAIGateway{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	var out, errOut bytes.Buffer
	args := []string{"-config", loadConfig, "-target", lis.Addr().String(), "-target-pid", strconv.Itoa(os.Getpid()),
		"-rounds", "1", "-cycles", "10", "-duration", "20s", "-warmup", "0", "-concurrency", "2", "-conns", "1", "-cases", "2k-json,2k-sse"}
	if err := run(t.Context(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.Bytes())
	}
	for _, want := range []string{"msgs/cycle floor / aigw", "| 2 KB request, 50-chunk SSE answer | 5 / 54 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.Bytes())
		}
	}
}
