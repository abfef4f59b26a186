package budget

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/filter/config"
)

// lifecycleStore is a store under test with a clock the test moves: the
// memory store reads a fake clock, Redis its own, so advancing sleeps.
type lifecycleStore struct {
	Store
	advance func(time.Duration)
	spent   func(key string) int64
}

func memoryLifecycle(t *testing.T) lifecycleStore {
	var mu sync.Mutex
	now := time.Now()
	m := NewMemory(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	return lifecycleStore{Store: m,
		advance: func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() },
		spent:   func(k string) int64 { v, _ := m.Spent(context.Background(), k); return v }}
}

func redisLifecycle(t *testing.T) func(t *testing.T) lifecycleStore {
	stores := redisStores(t)
	return func(t *testing.T) lifecycleStore {
		r := stores(t).(*Redis)
		return lifecycleStore{Store: r, advance: time.Sleep,
			spent: func(k string) int64 {
				v, err := r.Spent(context.Background(), k)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}}
	}
}

func TestMemoryLifecycle(t *testing.T) { lifecycle(t, memoryLifecycle) }
func TestRedisLifecycle(t *testing.T)  { lifecycle(t, redisLifecycle(t)) }

// lifecycle checks that every reservation ends exactly once: settled,
// released (at once, or after a failed attempt's grace with no retry), or
// expired with its amounts kept.
func lifecycle(t *testing.T, stores func(t *testing.T) lifecycleStore) {
	const grace, short = 100 * time.Millisecond, 250 * time.Millisecond
	ctx := context.Background()
	lim := []Limit{{Pico: 1000}}
	tests := []struct {
		name string
		run  func(t *testing.T, s lifecycleStore, id string)
		want int64 // counted under k:a at the end
	}{
		{"failed attempt, no retry: released after the grace", func(t *testing.T, s lifecycleStore, id string) {
			must(t, s.Await(ctx, id, 1, grace))
		}, 0},
		{"failed attempt, retry holds it, retry settles", func(t *testing.T, s lifecycleStore, id string) {
			must(t, s.Await(ctx, id, 1, grace))
			must(t, s.Hold(ctx, id, 2, time.Hour))
			s.advance(short)
			sweep(t, s)
			must(t, s.Settle(ctx, id, []Charge{ch("a", 30, 0, 1)}))
		}, 30},
		{"late failure of an earlier attempt is ignored", func(t *testing.T, s lifecycleStore, id string) {
			must(t, s.Hold(ctx, id, 2, time.Hour))
			must(t, s.Await(ctx, id, 1, grace))
		}, 100},
		{"earlier attempt fails after the retry ended: stays released", func(t *testing.T, s lifecycleStore, id string) {
			must(t, s.Hold(ctx, id, 2, time.Hour))
			must(t, s.Release(ctx, id))
			must(t, s.Await(ctx, id, 1, grace))
		}, 0},
		{"release then settle counts nothing", func(t *testing.T, s lifecycleStore, id string) {
			must(t, s.Release(ctx, id))
			if err := s.Settle(ctx, id, []Charge{ch("a", 30, 0, 1)}); !errors.Is(err, ErrUnknownReservation) {
				t.Fatalf("Settle after Release = %v", err)
			}
			must(t, s.Release(ctx, id))
		}, 0},
		{"settle then release counts the actual once", func(t *testing.T, s lifecycleStore, id string) {
			must(t, s.Settle(ctx, id, []Charge{ch("a", 30, 0, 1)}))
			must(t, s.Release(ctx, id))
			if err := s.Settle(ctx, id, []Charge{ch("a", 30, 0, 1)}); !errors.Is(err, ErrUnknownReservation) {
				t.Fatalf("second Settle = %v", err)
			}
		}, 30},
		{"reserving the same id twice counts once", func(t *testing.T, s lifecycleStore, id string) {
			must(t, s.Reserve(ctx, id, []Charge{ch("a", 100, 0, 1)}, lim, time.Hour))
		}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stores(t)
			id := newID()
			must(t, s.Reserve(ctx, id, []Charge{ch("a", 100, 0, 1)}, lim, time.Hour))
			tt.run(t, s, id)
			s.advance(short)
			sweep(t, s)
			if got := s.spent("k:a"); got != tt.want {
				t.Fatalf("counted %d, want %d", got, tt.want)
			}
		})
	}
	// The spent gauge reads Spent alone: a failed attempt's grace that ran
	// out with no retry (its last attempt never reached llmproc) must show
	// as released without a Reserve to sweep it. Before, the gauge kept the
	// worst case until the next request.
	t.Run("grace over, no retry: Spent shows it released", func(t *testing.T) {
		s := stores(t)
		id := newID()
		must(t, s.Reserve(ctx, id, []Charge{ch("a", 100, 0, 1)}, lim, time.Hour))
		must(t, s.Await(ctx, id, 1, grace))
		if got := s.spent("k:a"); got != 100 {
			t.Fatalf("awaiting a retry: counted %d, want the worst case 100", got)
		}
		s.advance(short)
		if got := s.spent("k:a"); got != 0 {
			t.Fatalf("after the grace: counted %d, want 0", got)
		}
	})
	t.Run("held past its deadline: expired, amounts kept", func(t *testing.T) {
		s := stores(t)
		id := newID()
		must(t, s.Reserve(ctx, id, []Charge{ch("a", 100, 0, 1)}, lim, grace))
		s.advance(short)
		sweep(t, s)
		if err := s.Settle(ctx, id, []Charge{ch("a", 1, 0, 1)}); !errors.Is(err, ErrUnknownReservation) {
			t.Fatalf("Settle after expiry = %v", err)
		}
		if got := s.spent("k:a"); got != 100 {
			t.Fatalf("counted %d, want the worst case 100", got)
		}
	})
	t.Run("a live stream's renewals keep it", func(t *testing.T) {
		s := stores(t)
		id := newID()
		must(t, s.Reserve(ctx, id, []Charge{ch("a", 100, 0, 1)}, lim, short))
		for range 4 {
			s.advance(short / 2)
			must(t, s.Hold(ctx, id, 1, short))
		}
		sweep(t, s)
		must(t, s.Settle(ctx, id, []Charge{ch("a", 7, 0, 1)}))
		if got := s.spent("k:a"); got != 7 {
			t.Fatalf("counted %d, want 7", got)
		}
	})
	t.Run("settled after the window ended: lands in its window", func(t *testing.T) {
		s := stores(t)
		id := newID()
		c := ch("w", 100, 0, 1)
		c.ResetAt = time.Now().Add(short / 2).Truncate(time.Millisecond)
		must(t, s.Reserve(ctx, id, []Charge{c}, lim, time.Hour))
		s.advance(short)
		c.Pico = 42
		must(t, s.Settle(ctx, id, []Charge{c}))
		if got := s.spent("k:w"); got != 42 {
			t.Fatalf("old window counts %d, want 42", got)
		}
	})
	t.Run("saturates instead of wrapping", func(t *testing.T) {
		s := stores(t)
		for range 2 {
			must(t, s.Reserve(ctx, newID(), []Charge{ch("o", math.MaxInt64, math.MaxInt64, 1)}, []Limit{{}}, time.Hour))
		}
		if got := s.spent("k:o"); got != math.MaxInt64 {
			t.Fatalf("counted %d, want math.MaxInt64", got)
		}
		if err := s.Reserve(ctx, newID(), []Charge{ch("o", 1, 0, 1)}, []Limit{{Pico: math.MaxInt64}}, time.Hour); err == nil {
			t.Fatal("a full counter took one more pico")
		}
	})
}

// sweep makes the store drop what has ended: every Reserve sweeps.
func sweep(t *testing.T, s lifecycleStore) {
	t.Helper()
	must(t, s.Reserve(context.Background(), newID(), nil, nil, time.Hour))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestMemoryTwoReplicas: each replica's ids are its own; replica B never
// settles a reservation of its own for one of replica A's.
func TestMemoryTwoReplicas(t *testing.T) {
	budgets := []config.Budget{{Name: "g", Scope: "global", Window: "day", LimitUSD: usd(t, "1")}}
	a, err := NewEngine(Options{Budgets: budgets, Store: NewMemory(nil)})
	must(t, err)
	bm := NewMemory(nil)
	b, err := NewEngine(Options{Budgets: budgets, Store: bm})
	must(t, err)
	ctx := context.Background()
	ra, err := a.Reserve(ctx, Request{WorstPico: 500})
	must(t, err)
	rb, err := b.Reserve(ctx, Request{WorstPico: 500})
	must(t, err)
	if ra.ID == rb.ID || len(ra.ID) != 32 {
		t.Fatalf("ids %q and %q", ra.ID, rb.ID)
	}
	if err := b.Settle(ctx, ra, 1, 1); !errors.Is(err, ErrUnknownReservation) {
		t.Fatalf("replica B settling A's reservation = %v", err)
	}
	if n, _ := bm.Len(); n != 1 {
		t.Fatalf("replica B holds %d reservations, want its own 1", n)
	}
}

// TestEngineRefusesOverflow: a worst case beyond int64 (saturated) fits no
// limit; it is refused before the store is asked.
func TestEngineRefusesOverflow(t *testing.T) {
	f := &fakeStore{}
	e, err := NewEngine(Options{Store: f, Budgets: []config.Budget{
		{Name: "usd", Scope: "global", Window: "month", LimitUSD: usd(t, "1000")},
	}})
	must(t, err)
	var ex *Exceeded
	if _, err := e.Reserve(context.Background(), Request{WorstPico: math.MaxInt64}); !errors.As(err, &ex) || ex.Budget != "usd" {
		t.Fatalf("Reserve = %v, want usd exceeded", err)
	}
	if f.charges != nil {
		t.Fatal("the store was asked")
	}
}

// TestEngineAliases: a budget naming an alias counts requests for its model.
func TestEngineAliases(t *testing.T) {
	f := &fakeStore{}
	e, err := NewEngine(Options{Store: f, ModelName: func(s string) string {
		if s == "mini" {
			return "gpt-4o-mini"
		}
		return s
	}, Budgets: []config.Budget{{Name: "m", Scope: "global", Window: "day", LimitTokens: 100, Models: []string{"mini"}}}})
	must(t, err)
	if _, err := e.Reserve(context.Background(), Request{Model: "gpt-4o-mini", WorstTokens: 1}); err != nil || len(f.charges) != 1 {
		t.Fatalf("Reserve = %v, charges %+v", err, f.charges)
	}
}

// TestMemoryBounded: with a month window, reservations that end in every
// way leave the store; only the counter stays.
func TestMemoryBounded(t *testing.T) {
	s := memoryLifecycle(t)
	m := s.Store.(*Memory)
	ctx := context.Background()
	for i := range 4000 {
		id := newID()
		must(t, m.Reserve(ctx, id, []Charge{ch("a", 10, 0, 1)}, nil, time.Minute))
		switch i % 4 {
		case 0:
			must(t, m.Settle(ctx, id, []Charge{ch("a", 1, 0, 1)}))
		case 1:
			must(t, m.Release(ctx, id))
		case 2:
			must(t, m.Await(ctx, id, 1, time.Second))
		}
		s.advance(100 * time.Millisecond)
	}
	s.advance(2 * time.Minute)
	sweep(t, s)
	if held, counters := m.Len(); held != 0 || counters != 1 {
		t.Fatalf("%d reservations and %d counters left, want 0 and 1", held, counters)
	}
}

// delayProxy forwards TCP to target, holding each client→server chunk for
// the current delay: a Redis that answers after the client gave up.
type delayProxy struct {
	ln    net.Listener
	delay atomic.Int64
}

func newDelayProxy(t *testing.T, target string) *delayProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &delayProxy{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
			go func() {
				defer u.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						time.Sleep(time.Duration(p.delay.Load()))
						if _, werr := u.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// TestRedisLostAnswers: calls that time out client-side still run in Redis
// later. A lost Reserve must not leave a phantom reservation, and a lost
// Settle, retried, must count once.
func TestRedisLostAnswers(t *testing.T) {
	srv := redisserver.Start(t)
	proxy := newDelayProxy(t, srv.Addr())
	r := NewRedis(RedisOptions{Addr: proxy.ln.Addr().String(), KeyPrefix: "lost:", Timeout: 50 * time.Millisecond})
	defer r.Close()
	direct := NewRedis(RedisOptions{Addr: srv.Addr(), KeyPrefix: "lost:", Timeout: time.Second})
	defer direct.Close()
	ctx := context.Background()
	lim := []Limit{{Pico: 1000}}
	settled := func() {
		proxy.delay.Store(0)
		r.wg.Wait() // background retries done
		time.Sleep(500 * time.Millisecond)
	}

	// Load the scripts first: a stalled EVALSHA of an unknown script does nothing.
	warm := newID()
	must(t, r.Reserve(ctx, warm, []Charge{ch("warm", 1, 0, 1)}, lim, time.Hour))
	must(t, r.Settle(ctx, warm, nil))
	must(t, r.Release(ctx, warm))
	proxy.delay.Store(int64(300 * time.Millisecond))
	for range 5 {
		if err := r.Reserve(ctx, newID(), []Charge{ch("p", 100, 0, 1)}, lim, time.Hour); err == nil {
			t.Fatal("Reserve through a stalled Redis succeeded")
		}
	}
	settled()
	if got, _ := direct.Spent(ctx, "k:p"); got != 0 {
		t.Fatalf("phantom reservations: %d pico counted after lost Reserves", got)
	}

	id := newID()
	must(t, r.Reserve(ctx, id, []Charge{ch("s", 100, 0, 1)}, lim, time.Hour))
	proxy.delay.Store(int64(300 * time.Millisecond))
	if err := r.Settle(ctx, id, []Charge{ch("s", 30, 0, 1)}); err == nil {
		t.Fatal("Settle through a stalled Redis succeeded")
	}
	settled()
	if got, _ := direct.Spent(ctx, "k:s"); got != 30 {
		t.Fatalf("after a lost Settle: %d counted, want 30", got)
	}
}

// TestOvershootThreeReplicasUnderFaults: three replicas, each with its own
// client, share one Redis; two of them reach it through proxies that stall
// on and off (calls time out client-side and run late). Requests are
// served only with a reservation (budget_store.on_error: closed) and each
// costs at most its worst case. The spend served never exceeds the limit
// (overshoot 0), and once the faults stop and background retries finish,
// the counter holds exactly the settled spend: no phantom reservation, no
// settle counted twice or lost.
func TestOvershootThreeReplicasUnderFaults(t *testing.T) {
	srv := redisserver.Start(t)
	var proxies []*delayProxy
	var replicas []*Redis
	for i := range 3 {
		addr := srv.Addr()
		if i > 0 {
			p := newDelayProxy(t, srv.Addr())
			proxies = append(proxies, p)
			addr = p.ln.Addr().String()
		}
		r := NewRedis(RedisOptions{Addr: addr, KeyPrefix: "over:", Timeout: 50 * time.Millisecond})
		t.Cleanup(func() { _ = r.Close() })
		replicas = append(replicas, r)
	}
	ctx := context.Background()
	// Load the scripts on every connection path before the faults start.
	for _, r := range replicas {
		id := newID()
		must(t, r.Reserve(ctx, id, []Charge{ch("warm", 1, 0, 1)}, nil, time.Hour))
		must(t, r.Settle(ctx, id, nil))
		must(t, r.Release(ctx, id))
	}
	stop := make(chan struct{})
	var faults sync.WaitGroup
	for i, p := range proxies {
		faults.Add(1)
		go func() {
			defer faults.Done()
			for on := true; ; on = !on {
				d := time.Duration(0)
				if on {
					d = time.Duration(80+40*i) * time.Millisecond
				}
				p.delay.Store(int64(d))
				select {
				case <-stop:
					p.delay.Store(0)
					return
				case <-time.After(150 * time.Millisecond):
				}
			}
		}()
	}
	const limit, worst, workers, each = 2000, 10, 30, 20
	lim := []Limit{{Pico: limit}}
	var served, settledOK atomic.Int64
	var storeErrors, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := replicas[w%3]
			for i := range each {
				id := newID()
				err := r.Reserve(ctx, id, []Charge{ch("a", worst, 0, 1)}, lim, time.Hour)
				var ex *Exceeded
				switch {
				case errors.As(err, &ex):
					refused.Add(1)
					continue
				case err != nil:
					storeErrors.Add(1) // closed: not served
					continue
				}
				actual := int64(1 + (w*each+i)%worst)
				served.Add(actual)
				if r.Settle(ctx, id, []Charge{ch("a", actual, 0, 1)}) == nil {
					settledOK.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	faults.Wait()
	for _, r := range replicas {
		r.wg.Wait()
	}
	time.Sleep(500 * time.Millisecond) // stalled commands still queued in the proxies
	got, err := replicas[0].Spent(ctx, "k:a")
	must(t, err)
	t.Logf("served %d pico of a %d limit; %d store errors, %d refused, %d settles answered in time; counter %d",
		served.Load(), limit, storeErrors.Load(), refused.Load(), settledOK.Load(), got)
	if served.Load() > limit {
		t.Errorf("served %d pico, over the limit %d", served.Load(), limit)
	}
	if storeErrors.Load() == 0 {
		t.Error("no call timed out: the faults did not bite")
	}
	if got != served.Load() {
		t.Errorf("counter %d, want exactly the served %d", got, served.Load())
	}
}

// TestRedisDownRetries: with Redis down, calls fail at once. A Reserve
// that never reached Redis leaves nothing to undo, so nothing is queued for
// it; Settle and Release are queued to run again (they are idempotent), and
// Close stops them.
func TestRedisDownRetries(t *testing.T) {
	srv := redisserver.Start(t)
	r := NewRedis(RedisOptions{Addr: srv.Addr(), KeyPrefix: "down:", Timeout: 50 * time.Millisecond})
	srv.Kill()
	ctx := context.Background()
	if err := r.Reserve(ctx, newID(), []Charge{ch("a", 1, 0, 1)}, nil, time.Hour); err == nil {
		t.Fatal("Reserve with Redis down succeeded")
	}
	if n := len(r.retries); n != 0 {
		t.Fatalf("%d background retries for a Reserve that never reached Redis", n)
	}
	if err := r.Settle(ctx, newID(), nil); err == nil || errors.Is(err, ErrUnknownReservation) {
		t.Fatalf("Settle with Redis down = %v", err)
	}
	if err := r.Release(ctx, newID()); err == nil {
		t.Fatal("Release with Redis down: no error")
	}
	if n := len(r.retries); n != 2 {
		t.Fatalf("%d background retries, want 2 (the Settle and the Release)", n)
	}
	done := make(chan struct{})
	go func() { _ = r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the background retries")
	}
}

// TestSettleAfterRedisUnreachable: a Settle or Release that could not
// reach Redis at all (no connection could be made) still takes effect once
// Redis is back, so the request counts what it cost, not its worst case.
// Before, only calls whose answer was lost were retried, and a Settle that
// failed to dial left the reservation held (found by
// TestOvershootThreeReplicasUnderFaults under load: dial timeouts and pool
// timeouts).
func TestSettleAfterRedisUnreachable(t *testing.T) {
	srv := redisserver.Start(t)
	gate := newGateProxy(t, srv.Addr())
	r := NewRedis(RedisOptions{Addr: gate.addr, KeyPrefix: "gate:", Timeout: 50 * time.Millisecond})
	defer r.Close()
	direct := NewRedis(RedisOptions{Addr: srv.Addr(), KeyPrefix: "gate:", Timeout: time.Second})
	defer direct.Close()
	ctx := context.Background()

	settled, released := newID(), newID()
	must(t, r.Reserve(ctx, settled, []Charge{ch("s", 100, 0, 1)}, nil, time.Hour))
	must(t, r.Reserve(ctx, released, []Charge{ch("s", 50, 0, 1)}, nil, time.Hour))
	gate.close()
	if err := r.Settle(ctx, settled, []Charge{ch("s", 30, 0, 1)}); err == nil {
		t.Fatal("Settle with Redis unreachable succeeded")
	}
	if err := r.Release(ctx, released); err == nil {
		t.Fatal("Release with Redis unreachable succeeded")
	}
	gate.open(t)
	r.wg.Wait() // the background retries end once they took effect
	if got, _ := direct.Spent(ctx, "k:s"); got != 30 {
		t.Fatalf("%d pico counted, want the settled 30 (100 reserved, 50 released)", got)
	}
}

// gateProxy forwards TCP to target while open; close shuts its listener and
// every connection, so new dials are refused until open listens again on
// the same address.
type gateProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func newGateProxy(t *testing.T, target string) *gateProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	g := &gateProxy{addr: ln.Addr().String(), target: target}
	g.serve(ln)
	t.Cleanup(g.close)
	return g
}

func (g *gateProxy) serve(ln net.Listener) {
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", g.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			g.mu.Lock()
			g.conns = append(g.conns, c, u)
			g.mu.Unlock()
			go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
			go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
		}
	}()
}

func (g *gateProxy) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		_ = g.ln.Close()
		g.ln = nil
	}
	for _, c := range g.conns {
		_ = c.Close()
	}
	g.conns = nil
}

func (g *gateProxy) open(t *testing.T) {
	ln, err := net.Listen("tcp", g.addr)
	must(t, err)
	g.serve(ln)
}
