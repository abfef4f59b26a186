// Command load drives llmproc's ext_proc server the way Envoy would, over
// loopback gRPC, and reports what a request costs the server.
//
//	go run ./e2e/load [-mode llmproc|noop|both] [-answer json|sse|both]
//	                  [-concurrency 16] [-duration 10s] [-cycles N]
//	                  [-config examples/quickstart/llmproc.yaml] [-addr HOST:PORT -pid PID]
//	                  [-cpuprofile FILE]
//
// A cycle is one request's ext_proc traffic: a router stream (request headers,
// the buffered 2 KB body) then one upstream attempt (request headers with the
// endpoint attributes, the body, response headers, then either one JSON body
// or a 50-event SSE stream sent chunk by chunk in lock-step). See cycle.
//
// Each server runs in its own process, started by the driver, so its CPU time
// can be read from /proc/<pid>/stat before and after the measured window:
// llmproc is built from ./cmd/llmproc and started with a temporary copy of
// the config (free 127.0.0.1 ports, dummy credentials); the floor ("noop") is
// this binary re-executed with -serve-noop, a bare ext_proc server with the
// same gRPC options that answers every message with an empty CONTINUE. The
// ratio of llmproc's CPU per cycle to the floor's is llmproc's own overhead.
//
// Every reply is checked; a cycle that gets anything Envoy would not treat as
// the normal answer (an immediate response, a missing pool header, a damaged
// stream) stops the run with a non-zero exit, so errors are never measured.
// The run ends by itself after -duration (or -cycles), and child servers are
// stopped on every exit, SIGINT included.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/llmproc/llmproc/filter/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "load:", err)
		}
		os.Exit(1)
	}
}

// Server kinds.
const (
	modeNoop    = "noop"
	modeLlmproc = "llmproc"
)

type options struct {
	mode, answer string
	concurrency  int
	conns        int
	duration     time.Duration
	warmup       time.Duration
	cycles       int64
	configPath   string
	addr         string
	pid          int
	cpuprofile   string
	serverCPUs   string
	llmprocBin   string
	serveNoop    string
	maxMsg       int64
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mode, "mode", "both", "server to measure: llmproc, noop (the floor) or both")
	fs.StringVar(&o.answer, "answer", "both", "provider answer: json (one chunk), sse (50-event stream) or both")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent cycles")
	fs.IntVar(&o.conns, "conns", 4, "gRPC connections to the server (Envoy opens one per worker thread)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per answer and server (the run also stops after -cycles)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each measurement")
	fs.Int64Var(&o.cycles, "cycles", 0, "stop after this many measured cycles (0: only -duration bounds the run)")
	fs.StringVar(&o.configPath, "config", "examples/quickstart/llmproc.yaml", "llmproc config: routing for the request, and what the spawned llmproc serves")
	fs.StringVar(&o.addr, "addr", "", "measure an already-running server at this 127.0.0.1 address instead of spawning one (needs one -mode)")
	fs.IntVar(&o.pid, "pid", 0, "with -addr: the server's process id, to read its CPU time (else CPU is not reported)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write llmproc's CPU profile of each measured window to FILE.<answer>.pprof (turns on listen.pprof)")
	fs.StringVar(&o.llmprocBin, "llmproc-bin", "", "llmproc binary to run (default: go build ./cmd/llmproc into a temp dir)")
	fs.StringVar(&o.serverCPUs, "server-cpus", "", "run the spawned servers under `taskset -c LIST` (with the driver itself under taskset on other CPUs, driver and server stop competing for a core)")
	fs.StringVar(&o.serveNoop, "serve-noop", "", "internal: run the noop ext_proc server on ADDR")
	fs.Int64Var(&o.maxMsg, "max-request-bytes", 8<<20, "internal: the noop server's request body limit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.serveNoop != "" {
		return o, nil
	}
	var errs []error
	if !slices.Contains([]string{"both", modeNoop, modeLlmproc}, o.mode) {
		errs = append(errs, fmt.Errorf("-mode %q: want llmproc, noop or both", o.mode))
	}
	if !slices.Contains([]string{"both", answerJSON, answerSSE}, o.answer) {
		errs = append(errs, fmt.Errorf("-answer %q: want json, sse or both", o.answer))
	}
	if o.concurrency < 1 || o.conns < 1 {
		errs = append(errs, errors.New("-concurrency and -conns must be at least 1"))
	}
	if o.duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive: it bounds every run"))
	}
	if o.warmup < 0 || o.cycles < 0 {
		errs = append(errs, errors.New("-warmup and -cycles must not be negative"))
	}
	if o.addr != "" {
		if o.mode == "both" {
			errs = append(errs, errors.New("-addr measures one server: set -mode llmproc or -mode noop"))
		}
		if !strings.HasPrefix(o.addr, "127.0.0.1:") {
			errs = append(errs, fmt.Errorf("-addr %q: the driver only uses 127.0.0.1", o.addr))
		}
		if o.cpuprofile != "" {
			errs = append(errs, errors.New("-cpuprofile needs the driver to start llmproc (no -addr)"))
		}
	}
	return o, errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.serveNoop != "" {
		return serveNoop(ctx, o.serveNoop, o.maxMsg)
	}
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return err
	}
	topo, err := config.Topology(cfg)
	if err != nil {
		return err
	}
	modes := []string{modeNoop, modeLlmproc}
	if o.mode != "both" {
		modes = []string{o.mode}
	}
	answers := []string{answerJSON, answerSSE}
	if o.answer != "both" {
		answers = []string{o.answer}
	}

	dir, err := os.MkdirTemp("", "llmproc-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	targets := map[string]*child{}
	defer func() {
		for _, c := range targets {
			c.stop()
		}
	}()
	for _, m := range modes {
		if o.addr != "" {
			targets[m] = &child{name: m, addr: o.addr}
			continue
		}
		fmt.Fprintf(stderr, "starting %s server\n", m)
		c, err := startServer(ctx, m, o, cfg, dir)
		if err != nil {
			return err
		}
		targets[m] = c
	}

	var results []result
	for _, a := range answers {
		for _, m := range modes {
			w, err := newWorkload(a, topo, m == modeLlmproc)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "measuring %s answer, %s server: %s warm-up, then %s\n", a, m, o.warmup, o.duration)
			r, err := measure(ctx, targets[m], w, o, dir)
			if err != nil {
				return fmt.Errorf("%s answer, %s server: %w", a, m, err)
			}
			results = append(results, r)
		}
	}
	printTable(stdout, results, o)
	return nil
}

// startServer starts one server process on free 127.0.0.1 ports.
func startServer(ctx context.Context, mode string, o options, cfg *config.Config, dir string) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, mode+".log")
	if mode == modeNoop {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return start(ctx, mode, addr, logPath, os.Environ(), o.serverCPUs, self,
			"-serve-noop", addr, "-max-request-bytes", fmt.Sprint(cfg.Limits.MaxRequestBytes))
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "llmproc.yaml")
	if err := writeConfig(o.configPath, cfgPath, addr, httpAddr, o.cpuprofile != ""); err != nil {
		return nil, err
	}
	bin := o.llmprocBin
	if bin == "" {
		if bin, err = buildLlmproc(ctx, dir); err != nil {
			return nil, err
		}
	}
	c, err := start(ctx, mode, addr, logPath, credentialEnv(cfg, os.Environ()), o.serverCPUs, bin, "serve", "-config", cfgPath)
	if err != nil {
		return nil, err
	}
	c.httpAddr = httpAddr
	return c, nil
}

// result is one measured answer × server.
type result struct {
	answer, mode string
	conc         int
	cycles       int64
	elapsed      time.Duration
	p50, p99     time.Duration
	cpu          time.Duration // server CPU over the window; -1 when unknown
}

func (r result) perSecond() float64 { return float64(r.cycles) / r.elapsed.Seconds() }

func (r result) cpuPerCycle() time.Duration {
	if r.cpu < 0 || r.cycles == 0 {
		return -1
	}
	return r.cpu / time.Duration(r.cycles)
}

// measure warms the server up, then runs cycles for the measured window and
// reads the server's CPU time around it.
func measure(ctx context.Context, target *child, w *workload, o options, dir string) (result, error) {
	clients := make([]extprocv3.ExternalProcessorClient, o.conns)
	for i := range clients {
		conn, err := grpc.NewClient("passthrough:///"+target.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return result{}, err
		}
		defer conn.Close()
		clients[i] = extprocv3.NewExternalProcessorClient(conn)
	}
	if o.warmup > 0 {
		if _, err := drive(ctx, clients, w, o.concurrency, o.warmup, 0); err != nil {
			return result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	pid := o.pid
	if target.cmd != nil {
		pid = target.cmd.Process.Pid
	}
	var prof chan error
	if o.cpuprofile != "" && target.httpAddr != "" {
		prof = make(chan error, 1)
		path := fmt.Sprintf("%s.%s.pprof", strings.TrimSuffix(o.cpuprofile, ".pprof"), w.answer)
		go func() { prof <- fetchProfile(ctx, target.httpAddr, o.duration, path) }()
	}
	cpu0, err := serverCPU(pid)
	if err != nil {
		return result{}, err
	}
	ph, err := drive(ctx, clients, w, o.concurrency, o.duration, o.cycles)
	if err != nil {
		return result{}, err
	}
	cpu1, err := serverCPU(pid)
	if err != nil {
		return result{}, err
	}
	if target.cmd != nil {
		if err := target.alive(); err != nil {
			return result{}, err
		}
	}
	if prof != nil {
		if err := <-prof; err != nil {
			return result{}, err
		}
	}
	r := result{answer: w.answer, mode: target.name, conc: o.concurrency, cycles: ph.cycles, elapsed: ph.elapsed, cpu: -1}
	if pid > 0 {
		r.cpu = cpu1 - cpu0
	}
	slices.Sort(ph.lat)
	r.p50, r.p99 = percentile(ph.lat, 0.50), percentile(ph.lat, 0.99)
	return r, nil
}

func serverCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, nil
	}
	return cpuTime(pid)
}

// phase is what one drive call observed.
type phase struct {
	cycles  int64
	elapsed time.Duration
	lat     []time.Duration // one per completed cycle
}

// drive runs cycles on conc workers until d has passed or limit cycles
// (when > 0) have started, and waits for the cycles in flight. The first
// failed cycle stops every worker and is returned.
func drive(ctx context.Context, clients []extprocv3.ExternalProcessorClient, w *workload, conc int, d time.Duration, limit int64) (phase, error) {
	abortCtx, abort := context.WithCancel(ctx)
	defer abort()
	var (
		stop    atomic.Bool
		started atomic.Int64
		done    atomic.Int64
		mu      sync.Mutex
		first   error
		lat     = make([][]time.Duration, conc)
		wg      sync.WaitGroup
	)
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	t0 := time.Now()
	for i := range conc {
		c := clients[i%len(clients)]
		wg.Go(func() {
			for !stop.Load() {
				if limit > 0 && started.Add(1) > limit {
					return
				}
				t := time.Now()
				if err := cycle(abortCtx, c, w); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("cycle failed after %d completed cycles: %w", done.Load(), err)
					}
					mu.Unlock()
					stop.Store(true)
					abort()
					return
				}
				lat[i] = append(lat[i], time.Since(t))
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	if err := ctx.Err(); err != nil {
		return phase{}, fmt.Errorf("interrupted: %w", err)
	}
	if first != nil {
		return phase{}, first
	}
	all := slices.Concat(lat...)
	return phase{cycles: int64(len(all)), elapsed: elapsed, lat: all}, nil
}

// percentile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// fetchProfile saves llmproc's CPU profile over d from its pprof endpoint.
func fetchProfile(ctx context.Context, httpAddr string, d time.Duration, path string) error {
	secs := int(math.Ceil(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", httpAddr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("cpu profile: %s: %s (is listen.pprof honoured?)", resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("cpu profile: %w", err)
	}
	return f.Close()
}

// printTable prints one row per answer × server, with llmproc's CPU per
// cycle as a multiple of the noop floor's for the same answer.
func printTable(out io.Writer, rs []result, o options) {
	floor := map[string]time.Duration{}
	for _, r := range rs {
		if r.mode == modeNoop {
			floor[r.answer] = r.cpuPerCycle()
		}
	}
	fmt.Fprintf(out, "cycle: router stream + upstream stream, 2 KB request; json = 1 body chunk, sse = %d chunks in lock-step\n", sseEvents)
	fmt.Fprintf(out, "machine: %d CPUs shared by driver and server; server CPU from /proc/<pid>/stat (10 ms ticks)\n\n", runtime.NumCPU())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "answer\tserver\tconc\tcycles\treq/s\tp50\tp99\tserver-CPU/cycle\tratio-to-floor\tserver-cores\t")
	for _, r := range rs {
		cpu, ratio, cores := "n/a", "", "n/a"
		if c := r.cpuPerCycle(); c >= 0 {
			cpu = fmtDur(c)
			cores = fmt.Sprintf("%.2f", r.cpu.Seconds()/r.elapsed.Seconds())
			if f, ok := floor[r.answer]; ok && r.mode != modeNoop && f > 0 {
				ratio = fmt.Sprintf("%.2fx", float64(c)/float64(f))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n",
			r.answer, r.mode, r.conc, r.cycles, r.perSecond(), fmtDur(r.p50), fmtDur(r.p99), cpu, ratio, cores)
	}
	tw.Flush()
	if o.cpuprofile != "" {
		fmt.Fprintln(out, "\n(llmproc was profiled during its windows; its CPU includes the profiler's small overhead)")
	}
}

// fmtDur prints a duration with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
