package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"
)

const quickstart = "../../examples/quickstart/llmproc.yaml"

type fixedRuntime struct{ rt *config.Runtime }

func (f fixedRuntime) Load() *config.Runtime { return f.rt }

// quickstartConfig loads the example config: its topology for the workload,
// and a compiled runtime (dummy credentials) for an in-process llmproc.
func quickstartConfig(t *testing.T) (*config.Config, *config.Runtime, *config.Runtime) {
	t.Helper()
	cfg, err := config.Load(quickstart)
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

// TestCycle runs a handful of full cycles against an in-process llmproc and
// the noop floor. Against llmproc, cycle checks what Envoy relies on: the
// forged pool header removed, x-llmproc-pool set with clear_route_cache, the
// upstream :path rewritten with a matching content-length, the backend
// header, every chunk the client gets (usage chunk stripped from the stream)
// and a clean outcome with known usage in the last reply's metadata.
func TestCycle(t *testing.T) {
	cfg, topo, rt := quickstartConfig(t)
	servers := []struct {
		mode string
		srv  extprocv3.ExternalProcessorServer
	}{
		{modeLlmproc, extproc.New(extproc.Options{Config: fixedRuntime{rt}})},
		{modeNoop, newNoop()},
	}
	for _, s := range servers {
		client := serve(t, s.srv, cfg.Limits.MaxRequestBytes)
		for _, answer := range []string{answerJSON, answerSSE} {
			t.Run(s.mode+"/"+answer, func(t *testing.T) {
				w, err := newWorkload(answer, topo, s.mode == modeLlmproc)
				if err != nil {
					t.Fatal(err)
				}
				if w.wantPool != "cheap" || w.wantBackend != "primary" {
					t.Fatalf("workload routes to %s/%s, want cheap/primary", w.wantPool, w.wantBackend)
				}
				for i := range 5 {
					if err := cycle(t.Context(), client, w); err != nil {
						t.Fatalf("cycle %d: %v", i, err)
					}
				}
			})
		}
	}
}

// TestCycleRejectsUnexpectedReplies makes sure the checks are live: an
// immediate response, or the floor's empty replies where llmproc's are
// expected, fail the cycle.
func TestCycleRejectsUnexpectedReplies(t *testing.T) {
	cfg, topo, rt := quickstartConfig(t)
	llmproc := serve(t, extproc.New(extproc.Options{Config: fixedRuntime{rt}}), cfg.Limits.MaxRequestBytes)
	floor := serve(t, newNoop(), cfg.Limits.MaxRequestBytes)

	bad, err := newWorkload(answerSSE, topo, true)
	if err != nil {
		t.Fatal(err)
	}
	bad.routerBody = bodyMsg([]byte(`{"model":`)) // llmproc answers 400
	strict, err := newWorkload(answerJSON, topo, true)
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cycle(t.Context(), tt.client, tt.w)
			if !errors.Is(err, errUnexpected) {
				t.Fatalf("cycle error %v, want an unexpected reply", err)
			}
		})
	}
}

// TestDriveStopsAtCycleLimit checks the cycle bound and that every counted
// cycle has a latency.
func TestDriveStopsAtCycleLimit(t *testing.T) {
	cfg, topo, _ := quickstartConfig(t)
	client := serve(t, newNoop(), cfg.Limits.MaxRequestBytes)
	w, err := newWorkload(answerSSE, topo, false)
	if err != nil {
		t.Fatal(err)
	}
	// The duration only bounds the test; the limit ends the run.
	ph, err := drive(t.Context(), []extprocv3.ExternalProcessorClient{client}, w, 4, time.Minute, 25)
	if err != nil {
		t.Fatal(err)
	}
	if ph.cycles != 25 || len(ph.lat) != 25 {
		t.Fatalf("%d cycles, %d latencies; want 25", ph.cycles, len(ph.lat))
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
