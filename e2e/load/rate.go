package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// backlog bounds the open-loop queue: once a second's worth of cycles
// (rate × backlog) is in flight, the server (or the driver) is not keeping
// up; the window stops starting cycles, is marked saturated, and the
// cycles in flight finish, so an overloaded run ends instead of queueing
// without end.
const backlog = time.Second

// rateResult is one open-loop window.
type rateResult struct {
	caseName, mode  string
	round, rate     int
	cycles          int64
	elapsed         time.Duration
	p50, p99, p999  time.Duration
	maxLat          time.Duration
	lateStart       time.Duration // how late the driver started a cycle at worst
	cpu             time.Duration
	maxInFlightSeen int64
	saturated       bool // the backlog bound was hit; the window ended early
}

func (r rateResult) cpuPerCycle() time.Duration {
	if r.cpu < 0 || r.cycles == 0 {
		return -1
	}
	return r.cpu / time.Duration(r.cycles)
}

// measureRate runs the case open-loop at o.rate cycles per second: cycle i
// starts at t0 + i/rate whether or not earlier cycles have finished, and its
// latency is measured from that scheduled start, so a server that falls
// behind shows its queueing in the latency (no coordinated omission).
func measureRate(ctx context.Context, target *child, w *workload, o options, round int) (rateResult, error) {
	clients, closeAll, err := dial(target.addr, o.conns)
	if err != nil {
		return rateResult{}, err
	}
	defer closeAll()
	if err := warmUp(ctx, clients, w, o); err != nil {
		return rateResult{}, err
	}
	if err := target.checkPinned(); err != nil {
		return rateResult{}, err
	}
	pid := target.procID()
	cpu0, err := serverCPU(pid)
	if err != nil {
		return rateResult{}, err
	}
	ph, err := driveRate(ctx, clients, w, o.rate, o.rateDuration)
	if err != nil {
		return rateResult{}, err
	}
	cpu1, err := serverCPU(pid)
	if err != nil {
		return rateResult{}, err
	}
	if err := target.alive(); err != nil {
		return rateResult{}, err
	}
	r := rateResult{caseName: w.name, round: round, rate: o.rate, cycles: int64(len(ph.lat)), elapsed: ph.elapsed, cpu: -1,
		lateStart: ph.late, maxInFlightSeen: ph.inFlight, saturated: ph.saturated}
	if pid > 0 {
		r.cpu = cpu1 - cpu0
	}
	slices.Sort(ph.lat)
	r.p50, r.p99, r.p999 = percentile(ph.lat, 0.50), percentile(ph.lat, 0.99), percentile(ph.lat, 0.999)
	r.maxLat = ph.lat[len(ph.lat)-1]
	return r, nil
}

// ratePhase is what one open-loop run observed.
type ratePhase struct {
	lat       []time.Duration
	elapsed   time.Duration
	late      time.Duration
	inFlight  int64
	saturated bool
}

// driveRate starts rate cycles per second for d, each on its own goroutine
// at its scheduled time, and waits for all of them.
func driveRate(ctx context.Context, clients []extprocv3.ExternalProcessorClient, w *workload, rate int, d time.Duration) (ratePhase, error) {
	abortCtx, abort := context.WithCancel(ctx)
	defer abort()
	interval := time.Second / time.Duration(rate)
	n := int(d / interval)
	if n < 1 {
		n = 1
	}
	var (
		lat      = make([]time.Duration, n)
		wg       sync.WaitGroup
		mu       sync.Mutex
		first    error
		inFlight atomic.Int64
		peak     atomic.Int64
		late     time.Duration
		limit    = max(int64(rate)*int64(backlog)/int64(time.Second), 10)
		started  int
		full     bool
	)
	t0 := time.Now().Add(5 * time.Millisecond)
	for i := 0; i < n && abortCtx.Err() == nil; i++ {
		sched := t0.Add(time.Duration(i) * interval)
		if wait := time.Until(sched); wait > 0 {
			time.Sleep(wait)
		} else if -wait > late {
			late = -wait
		}
		if inFlight.Load() >= limit {
			full = true
			break
		}
		if f := inFlight.Add(1); f > peak.Load() {
			peak.Store(f)
		}
		started++
		c := clients[i%len(clients)]
		wg.Go(func() {
			defer inFlight.Add(-1)
			_, err := runCycle(abortCtx, c, w)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("cycle %d of %d: %w", i, n, err)
				}
				mu.Unlock()
				abort()
				return
			}
			lat[i] = time.Since(sched)
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	if err := ctx.Err(); err != nil {
		return ratePhase{}, fmt.Errorf("interrupted: %w", err)
	}
	if first != nil {
		return ratePhase{}, first
	}
	return ratePhase{lat: lat[:started], elapsed: elapsed, late: late, inFlight: peak.Load(), saturated: full}, nil
}
