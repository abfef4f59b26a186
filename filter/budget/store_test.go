package budget

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/redisserver"
)

// newStore returns an empty store; each call is independent of the others.
type newStore func(t *testing.T) Store

func memoryStores(t *testing.T) newStore {
	return func(t *testing.T) Store { return NewMemory(nil) }
}

func redisStores(t *testing.T) newStore {
	srv := redisserver.Start(t)
	var n atomic.Int64
	return func(t *testing.T) Store {
		r := NewRedis(RedisOptions{Addr: srv.Addr(), KeyPrefix: fmt.Sprintf("t%d:", n.Add(1)), Timeout: 5 * time.Second})
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
}

func TestMemoryConformance(t *testing.T) { conformance(t, memoryStores(t)) }
func TestRedisConformance(t *testing.T)  { conformance(t, redisStores(t)) }

var reset = time.Now().Add(time.Hour).Truncate(time.Millisecond)

func ch(name string, pico, tokens, requests int64) Charge {
	return Charge{Budget: name, Key: "k:" + name, ResetAt: reset, KeepUntil: reset.Add(time.Hour), Pico: pico, Tokens: tokens, Requests: requests}
}

// ttl is a reservation lifetime no test reaches unless it means to.
const ttl = time.Hour

// step is one operation on a store and what it must return. Reserve steps
// save their id under save; settle and release use the id saved as use.
type step struct {
	op       string // reserve, settle, release
	charges  []Charge
	limits   []Limit
	save     string
	use      string
	exceeded string // reserve: the budget named by *Exceeded
	unknown  bool   // settle: ErrUnknownReservation
}

func conformance(t *testing.T, stores newStore) {
	const big = 500_000_000_000_000_000 // beyond 2^53: must stay exact
	usd := []Limit{{Pico: 100}}
	tests := []struct {
		name  string
		steps []step
	}{
		{"fits then exceeds", []step{
			{op: "reserve", charges: []Charge{ch("a", 60, 0, 1)}, limits: usd},
			{op: "reserve", charges: []Charge{ch("a", 40, 0, 1)}, limits: usd},
			{op: "reserve", charges: []Charge{ch("a", 1, 0, 1)}, limits: usd, exceeded: "a"},
		}},
		{"all or nothing", []step{
			{op: "reserve", charges: []Charge{ch("a", 50, 0, 1), ch("b", 50, 0, 1)}, limits: []Limit{{Pico: 100}, {Pico: 40}}, exceeded: "b"},
			{op: "reserve", charges: []Charge{ch("a", 100, 0, 1)}, limits: usd},
		}},
		{"settle lowers", []step{
			{op: "reserve", charges: []Charge{ch("a", 80, 0, 1)}, limits: usd, save: "x"},
			{op: "settle", charges: []Charge{ch("a", 30, 0, 1)}, use: "x"},
			{op: "reserve", charges: []Charge{ch("a", 71, 0, 1)}, limits: usd, exceeded: "a"},
			{op: "reserve", charges: []Charge{ch("a", 70, 0, 1)}, limits: usd},
		}},
		{"settle raises past the limit", []step{
			{op: "reserve", charges: []Charge{ch("a", 10, 0, 1)}, limits: usd, save: "x"},
			{op: "settle", charges: []Charge{ch("a", 150, 0, 1)}, use: "x"},
			{op: "reserve", charges: []Charge{ch("a", 0, 0, 1)}, limits: usd, exceeded: "a"},
		}},
		{"settle twice", []step{
			{op: "reserve", charges: []Charge{ch("a", 10, 0, 1)}, limits: usd, save: "x"},
			{op: "settle", charges: []Charge{ch("a", 5, 0, 1)}, use: "x"},
			{op: "settle", charges: []Charge{ch("a", 5, 0, 1)}, use: "x", unknown: true},
			{op: "reserve", charges: []Charge{ch("a", 95, 0, 1)}, limits: usd},
		}},
		{"release", []step{
			{op: "reserve", charges: []Charge{ch("a", 100, 0, 1)}, limits: usd, save: "x"},
			{op: "reserve", charges: []Charge{ch("a", 1, 0, 1)}, limits: usd, exceeded: "a"},
			{op: "release", use: "x"},
			{op: "release", use: "x"},
			{op: "settle", charges: []Charge{ch("a", 100, 0, 1)}, use: "x", unknown: true},
			{op: "reserve", charges: []Charge{ch("a", 100, 0, 1)}, limits: usd},
		}},
		{"settle releases keys it does not name", []step{
			{op: "reserve", charges: []Charge{ch("a", 100, 0, 1), ch("b", 100, 0, 1)}, limits: []Limit{{Pico: 100}, {Pico: 100}}, save: "x"},
			{op: "settle", charges: []Charge{ch("a", 100, 0, 1)}, use: "x"},
			{op: "reserve", charges: []Charge{ch("b", 100, 0, 1)}, limits: usd},
			{op: "reserve", charges: []Charge{ch("a", 1, 0, 1)}, limits: usd, exceeded: "a"},
		}},
		{"tokens and requests", []step{
			{op: "reserve", charges: []Charge{ch("r", 0, 600, 1)}, limits: []Limit{{Tokens: 1000, Requests: 2}}},
			{op: "reserve", charges: []Charge{ch("r", 0, 401, 1)}, limits: []Limit{{Tokens: 1000, Requests: 2}}, exceeded: "r"},
			{op: "reserve", charges: []Charge{ch("r", 0, 400, 1)}, limits: []Limit{{Tokens: 1000, Requests: 2}}},
			{op: "reserve", charges: []Charge{ch("r", 0, 0, 1)}, limits: []Limit{{Requests: 2}}, exceeded: "r"},
		}},
		{"no limit", []step{
			{op: "reserve", charges: []Charge{ch("a", big, big, 1)}, limits: []Limit{{}}},
			{op: "reserve", charges: []Charge{ch("a", big, big, 1)}, limits: []Limit{{}}},
		}},
		{"exact beyond 2^53", []step{
			{op: "reserve", charges: []Charge{ch("a", big-1, 0, 1)}, limits: []Limit{{Pico: big}}, save: "x"},
			{op: "reserve", charges: []Charge{ch("a", 2, 0, 1)}, limits: []Limit{{Pico: big}}, exceeded: "a"},
			{op: "reserve", charges: []Charge{ch("a", 1, 0, 1)}, limits: []Limit{{Pico: big}}},
			{op: "release", use: "x"},
			{op: "reserve", charges: []Charge{ch("a", big-1, 0, 1)}, limits: []Limit{{Pico: big}}},
			{op: "reserve", charges: []Charge{ch("a", 1, 0, 1)}, limits: []Limit{{Pico: big}}, exceeded: "a"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stores(t)
			ctx := context.Background()
			ids := map[string]string{}
			for i, st := range tt.steps {
				switch st.op {
				case "reserve":
					id := newID()
					err := s.Reserve(ctx, id, st.charges, st.limits, ttl)
					var ex *Exceeded
					switch {
					case st.exceeded == "" && err != nil:
						t.Fatalf("step %d: Reserve: %v", i, err)
					case st.exceeded != "" && (!errors.As(err, &ex) || ex.Budget != st.exceeded || !ex.ResetAt.Equal(reset)):
						t.Fatalf("step %d: Reserve = %v, want budget %q exceeded, reset %s", i, err, st.exceeded, reset)
					}
					if st.save != "" {
						ids[st.save] = id
					}
				case "settle":
					err := s.Settle(ctx, ids[st.use], st.charges)
					if st.unknown != errors.Is(err, ErrUnknownReservation) || !st.unknown && err != nil {
						t.Fatalf("step %d: Settle = %v, want unknown=%v", i, err, st.unknown)
					}
				case "release":
					if err := s.Release(ctx, ids[st.use]); err != nil {
						t.Fatalf("step %d: Release: %v", i, err)
					}
				}
			}
		})
	}

	t.Run("concurrent", func(t *testing.T) {
		s := stores(t)
		const limit, worst, workers, each = 1000, 10, 32, 8
		var spent atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					id := newID()
					err := s.Reserve(context.Background(), id, []Charge{ch("a", worst, 0, 1)}, []Limit{{Pico: limit}}, ttl)
					var ex *Exceeded
					if errors.As(err, &ex) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					if i%3 == 0 {
						if err := s.Release(context.Background(), id); err != nil {
							errs <- err
						}
						continue
					}
					actual := int64(1 + (w+i)%worst)
					if err := s.Settle(context.Background(), id, []Charge{ch("a", actual, 0, 1)}); err != nil {
						errs <- err
						continue
					}
					spent.Add(actual)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got := spent.Load(); got > limit {
			t.Fatalf("settled %d pico past the limit %d", got, limit)
		}
		// What the counter holds is exactly what was settled: a
		// reservation of the rest fits, one more pico does not.
		rest := limit - spent.Load()
		if err := s.Reserve(context.Background(), newID(), []Charge{ch("a", rest+1, 0, 0)}, []Limit{{Pico: limit}}, ttl); err == nil {
			t.Fatalf("counter below the settled %d", spent.Load())
		}
		if err := s.Reserve(context.Background(), newID(), []Charge{ch("a", rest, 0, 0)}, []Limit{{Pico: limit}}, ttl); err != nil {
			t.Fatalf("counter above the settled %d: %v", spent.Load(), err)
		}
	})
}

// TestConcurrentNeverOverReserves has many goroutines race for a limit that
// is not a multiple of the reservation: the winners' total stays within it.
func TestConcurrentNeverOverReserves(t *testing.T) {
	srv := redisserver.Start(t)
	replica := func() Store {
		r := NewRedis(RedisOptions{Addr: srv.Addr(), KeyPrefix: "replicas:", Timeout: 5 * time.Second})
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	replicas := []Store{replica(), replica(), replica()}
	for name, stores := range map[string]newStore{
		"memory": memoryStores(t),
		"redis":  redisStores(t),
		// Three replicas, each with its own client, share one Redis.
		"redis three clients": func(t *testing.T) Store { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			s := stores(t)
			pick := func(w int) Store {
				if s == nil {
					return replicas[w%len(replicas)]
				}
				return s
			}
			const limit, worst, workers = 995, 10, 64
			var won atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := pick(w)
					for range 4 {
						if err := s.Reserve(context.Background(), newID(), []Charge{ch("a", worst, 0, 1)}, []Limit{{Pico: limit}}, ttl); err == nil {
							won.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if got := won.Load() * worst; got != limit/worst*worst {
				t.Fatalf("reserved %d, want %d", got, limit/worst*worst)
			}
		})
	}
}
