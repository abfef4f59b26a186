package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The stream-holding mode (-hold N) measures what an open stream costs the
// server: N slow pass-through requests held open mid-answer at once. Each
// held request has done its router stream (request headers, body, close)
// and, on its upstream stream, the request headers and body, the response
// headers and the first SSE chunk, each answered; then it waits, as a
// stream whose provider is slow to send the next token does. The server's
// heap (after a forced GC, from the pprof and /metrics endpoints), its
// goroutines and its RSS are read idle, with the N streams open, and again
// after they have all been finished (the rest of the answer sent and checked,
// the stream closed).

// holdOpeners bounds how many held requests are being opened at once.
const holdOpeners = 64

// memSample is what the server holds at one moment.
type memSample struct {
	heapInuse, heapAlloc, stackInuse int64 // bytes; -1 when unknown
	goroutines                       int64 // -1 when unknown
	rss                              int64 // bytes; -1 when unknown
}

// hold runs the stream-holding measurement against each target, with the
// 2 KB SSE case's workload for it (loads[case2KSSE]).
func hold(ctx context.Context, targets map[string]*child, modes []string, loads map[string]map[string]*workload, o options, stdout, stderr io.Writer) error {
	for _, m := range modes {
		fmt.Fprintf(stderr, "holding %d streams open on the %s server (%d gRPC connections)\n", o.hold, targets[m].name, o.conns)
		r, err := holdOnce(ctx, targets[m], loads[case2KSSE][m], o, stderr)
		if err != nil {
			return fmt.Errorf("%s server: %w", targets[m].name, err)
		}
		printHold(stdout, targets[m].name, o, r)
	}
	return nil
}

type holdResult struct {
	idle, open, after memSample
	opened            time.Duration
}

func holdOnce(ctx context.Context, t *child, w *workload, o options, stderr io.Writer) (holdResult, error) {
	var r holdResult
	clients := make([]extprocv3.ExternalProcessorClient, o.conns)
	for i := range clients {
		conn, err := grpc.NewClient("passthrough:///"+t.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return r, err
		}
		defer conn.Close()
		clients[i] = extprocv3.NewExternalProcessorClient(conn)
	}
	pid := t.procID()
	// A few full cycles first, so that what is built on the first request
	// is in the idle figure, not in the per-stream one.
	if _, err := drive(ctx, clients, w, 4, time.Minute, 64); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	var err error
	if r.idle, err = sample(ctx, t, pid); err != nil {
		return r, err
	}

	// Each held request is a full cycle (every reply checked as in the
	// measured runs) whose upstream stream stops after the first response
	// chunk until release is closed. At most holdOpeners are being opened
	// at once, as a burst would be spread over Envoy's workers.
	var (
		opened, ended sync.WaitGroup
		release       = make(chan struct{})
		openers       = make(chan struct{}, holdOpeners)
		mu            sync.Mutex
		first         error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return first
	}
	start := time.Now()
	opened.Add(o.hold)
	for i := range o.hold {
		openers <- struct{}{}
		if failed() != nil {
			<-openers
			opened.Add(i - o.hold) // the rest are never started
			break
		}
		hw := *w
		reached := false
		hw.hold = func() {
			reached = true
			<-openers
			opened.Done()
			<-release
		}
		ended.Go(func() {
			_, err := runCycle(ctx, clients[i%len(clients)], &hw)
			if !reached {
				<-openers
				opened.Done()
				if err == nil {
					err = fmt.Errorf("%w: the cycle ended without reaching its first response chunk", errUnexpected)
				}
			}
			if err != nil {
				fail(fmt.Errorf("held stream %d: %w", i, err))
			}
		})
	}
	opened.Wait()
	r.opened = time.Since(start)
	if err := failed(); err != nil {
		close(release)
		ended.Wait()
		return r, err
	}
	if r.open, err = sample(ctx, t, pid); err != nil {
		close(release)
		ended.Wait()
		return r, err
	}
	if o.heapProfile != "" && t.httpAddr != "" {
		if err := saveHeapProfile(ctx, t.httpAddr, o.heapProfile); err != nil {
			close(release)
			ended.Wait()
			return r, err
		}
		fmt.Fprintf(stderr, "heap profile with %d streams open: %s\n", o.hold, o.heapProfile)
	}
	close(release)
	ended.Wait()
	if err := failed(); err != nil {
		return r, fmt.Errorf("finishing held streams: %w", err)
	}
	// The server ends a stream's handler just after its last reply; give
	// the goroutines a moment to return before the last reading.
	for range 50 {
		if r.after, err = sample(ctx, t, pid); err != nil {
			return r, err
		}
		if r.after.goroutines < 0 || r.after.goroutines <= r.idle.goroutines+int64(o.hold/100) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if t.cmd != nil {
		if err := t.alive(); err != nil {
			return r, err
		}
	}
	return r, nil
}

// sample reads the server's memory: heap and goroutines from llmproc's
// /metrics after a GC forced through pprof, RSS from /proc/<pid>/status.
func sample(ctx context.Context, t *child, pid int) (memSample, error) {
	s := memSample{heapInuse: -1, heapAlloc: -1, stackInuse: -1, goroutines: -1, rss: -1}
	if t.httpAddr != "" {
		// ?gc=1 runs a GC before writing the profile: what follows is the
		// live heap, not garbage not yet collected. Twice: what sync.Pools
		// held at the first GC survives it (the pools' victim cache).
		for range 2 {
			if _, err := httpGet(ctx, "http://"+t.httpAddr+"/debug/pprof/heap?gc=1"); err != nil {
				return s, fmt.Errorf("forcing a GC (is listen.pprof honoured?): %w", err)
			}
		}
		body, err := httpGet(ctx, "http://"+t.httpAddr+"/metrics")
		if err != nil {
			return s, err
		}
		m := gauges(body)
		for name, dst := range map[string]*int64{
			"go_memstats_heap_inuse_bytes": &s.heapInuse, "go_memstats_heap_alloc_bytes": &s.heapAlloc,
			"go_memstats_stack_inuse_bytes": &s.stackInuse, "go_goroutines": &s.goroutines,
		} {
			if v, ok := m[name]; ok {
				*dst = int64(v)
			}
		}
	}
	if pid > 0 {
		rss, err := vmRSS(pid)
		if err != nil {
			return s, err
		}
		s.rss = rss
	}
	return s, nil
}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

// gauges reads unlabelled samples of a Prometheus text exposition.
func gauges(b []byte) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// vmRSS reads a process's resident set size from /proc/<pid>/status.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("server RSS: %w (the driver reads /proc, so it needs Linux)", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("server RSS: /proc/%d/status: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("server RSS: no VmRSS in /proc/<pid>/status")
}

// saveHeapProfile writes llmproc's heap profile (after a GC) to path.
func saveHeapProfile(ctx context.Context, httpAddr, path string) error {
	b, err := httpGet(ctx, "http://"+httpAddr+"/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return os.WriteFile(path, b, 0o644)
}

// printHold prints the three readings and the cost of one open stream.
func printHold(out io.Writer, mode string, o options, r holdResult) {
	fmt.Fprintf(out, "hold: %s server, %d pass-through streams open at once (router stream done; upstream past response headers and the first of %d SSE chunks, then waiting), %d gRPC connections; opened in %s\n",
		mode, o.hold, sseEvents, o.conns, r.opened.Round(time.Millisecond))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tidle\topen\tafter\tper open stream\t")
	row := func(name string, f func(memSample) int64, unit string) {
		idle, open, after := f(r.idle), f(r.open), f(r.after)
		if idle < 0 || open < 0 || after < 0 {
			fmt.Fprintf(tw, "%s\tn/a\tn/a\tn/a\tn/a\t\n", name)
			return
		}
		per := float64(open-idle) / float64(o.hold)
		if unit == "" {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t\n", name, idle, open, after, per)
			return
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f KB\t\n", name, mib(idle), mib(open), mib(after), per/1024)
	}
	row("heap in use", func(s memSample) int64 { return s.heapInuse }, "B")
	row("heap live objects", func(s memSample) int64 { return s.heapAlloc }, "B")
	row("goroutine stacks", func(s memSample) int64 { return s.stackInuse }, "B")
	row("goroutines", func(s memSample) int64 { return s.goroutines }, "")
	row("RSS", func(s memSample) int64 { return s.rss }, "B")
	tw.Flush()
	fmt.Fprintln(out)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
