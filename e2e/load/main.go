// Command load drives llmproc's ext_proc server the way Envoy would, over
// loopback gRPC, and reports what a request costs the server next to a no-op
// floor answering the same message sequence.
//
//	go run ./e2e/load [-rounds 3] [-cases 2k-json,2k-sse,...] [-concurrency 16]
//	                  [-duration 4s] [-warmup 1s] [-cycles N]
//	                  [-rate 1000 -rate-duration 8s]
//	                  [-config e2e/load/testdata/llmproc.yaml] [-server-cpus 1]
//	                  [-target HOST:PORT -target-pid PID]   (Envoy AI Gateway's sequence)
//	                  [-addr HOST:PORT -pid PID -mode llmproc|noop]
//	                  [-cpuprofile FILE] [-markdown FILE]
//
// A cycle is one request's ext_proc traffic as Envoy sends it with llmproc's
// rendered config (envoy.RouterFilter and envoy.UpstreamFilter): a router
// stream (request headers, the buffered body), then one upstream attempt
// (request headers with the endpoint attributes and the router's metadata,
// the buffered body, response headers, then the response body chunk by
// chunk). Which messages are sent follows the server's replies exactly as
// Envoy would: a mode_override Envoy honours changes the rest of the stream
// (filterSpec.overridden), an immediate response from the router ends the
// request (the cache hit). See cycle. The floor answers every message with
// an empty CONTINUE, so it always gets the full sequence.
//
// Each server runs in its own process, started by the driver, so its CPU time
// can be read from /proc/<pid>/stat before and after each measured window:
// llmproc is built from ./cmd/llmproc and started with a temporary copy of
// the config (free 127.0.0.1 ports, dummy credentials); the floor ("noop") is
// this binary re-executed with -serve-noop, a bare grpc-go ext_proc server
// with the same gRPC options. With -server-cpus the servers run under
// taskset; the driver checks every server thread's Cpus_allowed_list.
//
// The run interleaves the servers: each round measures every case on the
// floor and on llmproc back to back (the order alternating between rounds),
// so a load change on the machine hits both. The table gives each round's
// figures, the medians and the spread of the ratio across rounds.
//
// Every reply is checked; a cycle that gets anything Envoy would not treat as
// the normal answer (an immediate response where none is expected, a missing
// pool header, a damaged stream) stops the run with a non-zero exit, so
// errors are never measured. The run ends by itself, and child servers are
// stopped on every exit, SIGINT included.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

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
	modeTarget  = "target"
)

type options struct {
	mode         string
	cases        []string
	rounds       int
	concurrency  int
	conns        int
	duration     time.Duration
	warmup       time.Duration
	cycles       int64
	rate         int
	rateDuration time.Duration
	rateCase     string
	configPath   string
	addr         string
	pid          int
	target       targetOptions
	cpuprofile   string
	serverCPUs   string
	llmprocBin   string
	markdown     string
	serveNoop    string
	maxMsg       int64
	hold         int    // hold.go: streams held open at once; 0 runs cycles
	heapProfile  string // hold.go: heap profile with the streams open
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var cases string
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mode, "mode", "both", "servers to measure: llmproc, noop (the floor) or both")
	fs.StringVar(&cases, "cases", "all", "comma-separated cases: "+strings.Join(caseNames(), ", ")+" (all: every one)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each measures every case on each server, the servers interleaved")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent cycles (closed loop)")
	fs.IntVar(&o.conns, "conns", 4, "gRPC connections to the server (Envoy opens one per worker thread)")
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "measured time per case, server and round (the window also stops after -cycles)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each window")
	fs.Int64Var(&o.cycles, "cycles", 0, "stop each window after this many cycles (0: only -duration bounds it)")
	fs.IntVar(&o.rate, "rate", 0, "also measure latency at this fixed rate (requests/s, open loop: cycles start on a schedule, latency counts from the scheduled start); 0: off")
	fs.DurationVar(&o.rateDuration, "rate-duration", 8*time.Second, "measured time of each -rate window")
	fs.StringVar(&o.rateCase, "rate-case", case2KJSON, "the case measured at -rate")
	fs.StringVar(&o.configPath, "config", "e2e/load/testdata/llmproc.yaml", "llmproc config: routing for the requests, and what the spawned llmproc serves")
	fs.StringVar(&o.addr, "addr", "", "measure an already-running server at this 127.0.0.1 address instead of spawning one (needs one -mode)")
	fs.IntVar(&o.pid, "pid", 0, "with -addr: the server's process id, to read its CPU time (else CPU is not reported)")
	o.target.register(fs)
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write llmproc's CPU profile of each measured window to FILE.<case>.pprof (turns on listen.pprof)")
	fs.StringVar(&o.llmprocBin, "llmproc-bin", "", "llmproc binary to run (default: go build ./cmd/llmproc into a temp dir)")
	fs.StringVar(&o.serverCPUs, "server-cpus", "", "run the spawned servers under `taskset -c LIST` (run the driver itself under taskset on other CPUs, so driver and server do not compete for a core)")
	fs.StringVar(&o.markdown, "markdown", "", "also write the markdown tables to FILE")
	fs.StringVar(&o.serveNoop, "serve-noop", "", "internal: run the noop ext_proc server on ADDR")
	fs.Int64Var(&o.maxMsg, "max-request-bytes", 8<<20, "internal: the noop server's request body limit")
	fs.IntVar(&o.hold, "hold", 0, "instead of the cases: hold N 2k-sse requests open mid-answer at once and report the server's heap, goroutines and RSS idle, with them open and after (hold.go)")
	fs.StringVar(&o.heapProfile, "heapprofile", "", "with -hold: write llmproc's heap profile with the streams open to FILE")
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
	if cases == "all" {
		o.cases = caseNames()
		if o.target.addr != "" {
			o.cases = targetCaseNames()
		}
	} else {
		for _, c := range strings.Split(cases, ",") {
			if _, ok := caseByName(c); !ok {
				errs = append(errs, fmt.Errorf("-cases: unknown case %q (want %s)", c, strings.Join(caseNames(), ", ")))
			}
			o.cases = append(o.cases, c)
		}
	}
	if !slices.Contains([]string{"both", modeNoop, modeLlmproc}, o.mode) {
		errs = append(errs, fmt.Errorf("-mode %q: want llmproc, noop or both", o.mode))
	}
	if o.rounds < 1 || o.concurrency < 1 || o.conns < 1 {
		errs = append(errs, errors.New("-rounds, -concurrency and -conns must be at least 1"))
	}
	if o.duration <= 0 || o.rateDuration <= 0 {
		errs = append(errs, errors.New("-duration and -rate-duration must be positive: they bound every window"))
	}
	if o.warmup < 0 || o.cycles < 0 || o.rate < 0 {
		errs = append(errs, errors.New("-warmup, -cycles and -rate must not be negative"))
	}
	if _, ok := caseByName(o.rateCase); o.rate > 0 && !ok {
		errs = append(errs, fmt.Errorf("-rate-case: unknown case %q", o.rateCase))
	}
	if o.hold < 0 {
		errs = append(errs, errors.New("-hold must not be negative"))
	}
	if o.hold > 0 {
		o.cases, o.rate = []string{case2KSSE}, 0 // the held requests are 2k-sse cycles
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
	if err := o.target.validate(o); err != nil {
		errs = append(errs, err)
	}
	return o, errors.Join(errs...)
}

func caseNames() []string {
	var out []string
	for _, c := range allCases {
		out = append(out, c.name)
	}
	return out
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.serveNoop != "" {
		return serveNoop(ctx, o.serveNoop, o.maxMsg)
	}
	setAWSDummies()
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return err
	}
	modes := []string{modeNoop, modeLlmproc}
	switch {
	case o.target.addr != "":
		modes = []string{modeNoop, modeTarget}
	case o.mode != "both":
		modes = []string{o.mode}
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
		switch {
		case m == modeTarget:
			targets[m] = &child{name: o.target.kind, addr: o.target.addr, pid: o.target.pid}
		case o.addr != "":
			targets[m] = &child{name: m, addr: o.addr, pid: o.pid}
		default:
			fmt.Fprintf(stderr, "starting %s server\n", m)
			c, err := startServer(ctx, m, o, cfg, dir)
			if err != nil {
				return err
			}
			targets[m] = c
		}
	}

	fmt.Fprintln(stderr, "building workloads (probing an in-process llmproc for the floor's upstream messages)")
	loads, err := buildWorkloads(ctx, o, cfg, modes)
	if err != nil {
		return err
	}

	if o.hold > 0 {
		return hold(ctx, targets, modes, loads, o, stdout, stderr)
	}
	rep := &report{opts: o, modes: modes}
	if rep.driver, err = processAffinity(os.Getpid()); err != nil {
		return err
	}
	for round := 1; round <= o.rounds; round++ {
		for _, name := range o.cases {
			order := slices.Clone(modes)
			if round%2 == 0 {
				slices.Reverse(order)
			}
			for _, m := range order {
				w := loads[name][m]
				fmt.Fprintf(stderr, "round %d/%d: %s on %s (%s warm-up, %s)\n", round, o.rounds, name, targets[m].name, o.warmup, o.duration)
				r, err := measure(ctx, targets[m], w, o, round)
				if err != nil {
					return fmt.Errorf("round %d, %s on %s: %w", round, name, targets[m].name, err)
				}
				r.mode = m
				rep.results = append(rep.results, r)
			}
		}
		if o.rate > 0 {
			order := slices.Clone(modes)
			if round%2 == 0 {
				slices.Reverse(order)
			}
			for _, m := range order {
				w := loads[o.rateCase][m]
				fmt.Fprintf(stderr, "round %d/%d: %s at %d req/s on %s (%s warm-up, %s)\n", round, o.rounds, o.rateCase, o.rate, targets[m].name, o.warmup, o.rateDuration)
				r, err := measureRate(ctx, targets[m], w, o, round)
				if err != nil {
					return fmt.Errorf("round %d, %s at %d req/s on %s: %w", round, o.rateCase, o.rate, targets[m].name, err)
				}
				r.mode = m
				rep.rates = append(rep.rates, r)
			}
		}
	}
	for _, m := range modes {
		rep.servers = append(rep.servers, serverInfo{mode: m, child: targets[m]})
	}
	rep.print(stdout)
	if o.markdown != "" {
		f, err := os.Create(o.markdown)
		if err != nil {
			return err
		}
		rep.printMarkdown(f)
		if err := f.Close(); err != nil {
			return err
		}
	}
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
	if err := writeConfig(o.configPath, cfgPath, addr, httpAddr, o.cpuprofile != "" || o.hold > 0); err != nil {
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
