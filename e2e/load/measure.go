package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// result is one measured window: a case on a server in a round.
type result struct {
	caseName, mode string
	round          int
	conc           int
	cycles         int64
	elapsed        time.Duration
	p50, p99       time.Duration
	cpu            time.Duration // server CPU over the window; -1 when unknown
	msgs           int           // ext_proc messages Envoy sent per cycle
	chunks         int           // response body chunks per answer
}

func (r result) perSecond() float64 { return float64(r.cycles) / r.elapsed.Seconds() }

func (r result) cpuPerCycle() time.Duration {
	if r.cpu < 0 || r.cycles == 0 {
		return -1
	}
	return r.cpu / time.Duration(r.cycles)
}

// dial opens conns gRPC connections to addr.
func dial(addr string, conns int) ([]extprocv3.ExternalProcessorClient, func(), error) {
	var cs []*grpc.ClientConn
	closeAll := func() {
		for _, c := range cs {
			c.Close()
		}
	}
	var clients []extprocv3.ExternalProcessorClient
	for range conns {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		cs = append(cs, conn)
		clients = append(clients, extprocv3.NewExternalProcessorClient(conn))
	}
	return clients, closeAll, nil
}

// measure warms the server up, then runs cycles for the measured window and
// reads the server's CPU time around it.
func measure(ctx context.Context, target *child, w *workload, o options, round int) (result, error) {
	clients, closeAll, err := dial(target.addr, o.conns)
	if err != nil {
		return result{}, err
	}
	defer closeAll()
	if err := warmUp(ctx, clients, w, o); err != nil {
		return result{}, err
	}
	pid := target.procID()
	if err := target.checkPinned(); err != nil {
		return result{}, err
	}
	var prof chan error
	if o.cpuprofile != "" && target.httpAddr != "" {
		prof = make(chan error, 1)
		path := fmt.Sprintf("%s.%s.pprof", strings.TrimSuffix(o.cpuprofile, ".pprof"), w.name)
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
	if err := target.alive(); err != nil {
		return result{}, err
	}
	if prof != nil {
		if err := <-prof; err != nil {
			return result{}, err
		}
	}
	r := result{caseName: w.name, round: round, conc: o.concurrency, cycles: ph.cycles, elapsed: ph.elapsed, cpu: -1, msgs: ph.msgs, chunks: len(w.chunks)}
	if pid > 0 {
		r.cpu = cpu1 - cpu0
	}
	slices.Sort(ph.lat)
	r.p50, r.p99 = percentile(ph.lat, 0.50), percentile(ph.lat, 0.99)
	return r, nil
}

// warmUp runs unmeasured cycles for o.warmup; with no warm-up, the cache
// case still gets the one cycle that fills the cache.
func warmUp(ctx context.Context, clients []extprocv3.ExternalProcessorClient, w *workload, o options) error {
	warm := *w
	warm.allowMiss = true
	d, limit := o.warmup, int64(0)
	if d <= 0 {
		if !w.spec.cacheHit {
			return nil
		}
		d, limit = time.Minute, 1
	}
	if _, err := drive(ctx, clients, &warm, o.concurrency, d, limit); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
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
	msgs    int             // messages per cycle (the last cycle's)
}

// runCycle runs one cycle and checks its outcome.
func runCycle(ctx context.Context, c extprocv3.ExternalProcessorClient, w *workload) (outcome, error) {
	o, err := cycle(ctx, c, w)
	if err == nil && w.verify != nil {
		err = w.verify(w, o)
	}
	return o, err
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
		msgs    atomic.Int64
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
				o, err := runCycle(abortCtx, c, w)
				if err != nil {
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
				msgs.Store(int64(o.msgs))
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
	return phase{cycles: int64(len(all)), elapsed: elapsed, lat: all, msgs: int(msgs.Load())}, nil
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
