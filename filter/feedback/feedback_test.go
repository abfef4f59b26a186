package feedback

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/filter/redisconn"
)

// clock is a settable time for the tiers and the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)} }

func rec(tenant, id string, attempt int, backend string, at time.Time) Record {
	return Record{Attempts: attempt, RequestID: id, Tenant: tenant, Model: "gpt-4o-mini", Backend: backend,
		Pool: "cheap", Route: "by-model", Client: "openai", Time: at}
}

func TestLocal(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	l := NewLocal(3, c.now)
	for _, k := range []string{"a", "b", "c"} {
		_ = l.Put(ctx, k, []byte(k), 1, time.Hour)
	}
	// A later attempt replaces an earlier one, never the reverse.
	_ = l.Put(ctx, "a", []byte("a2"), 2, time.Hour)
	_ = l.Put(ctx, "a", []byte("a1"), 1, time.Hour)
	if v, ok, _ := l.Get(ctx, "a"); !ok || string(v) != "a2" {
		t.Errorf("a = %q %v, want the second attempt's", v, ok)
	}
	// Past max the oldest goes: b (a was stored again after it).
	_ = l.Put(ctx, "d", []byte("d"), 1, time.Hour)
	if _, ok, _ := l.Get(ctx, "b"); ok || l.Len() != 3 {
		t.Errorf("b kept past max, %d entries", l.Len())
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok, _ := l.Get(ctx, k); !ok {
			t.Errorf("%s dropped", k)
		}
	}
	// Expired entries are not served, and are dropped by the next store.
	c.add(time.Hour)
	if _, ok, _ := l.Get(ctx, "d"); ok {
		t.Error("d served past its ttl")
	}
	_ = l.Put(ctx, "e", []byte("e"), 1, time.Hour)
	if l.Len() != 1 {
		t.Errorf("%d entries after expiry, want 1", l.Len())
	}
	// Claims: once per ttl.
	if ok, _ := l.Claim(ctx, "x", time.Minute); !ok {
		t.Error("first claim refused")
	}
	if ok, _ := l.Claim(ctx, "x", time.Minute); ok {
		t.Error("second claim accepted")
	}
	c.add(time.Minute)
	if ok, _ := l.Claim(ctx, "x", time.Minute); !ok {
		t.Error("claim after the ttl refused")
	}
}

// TestLocalBounded: however many records go through, the tier holds at
// most max entries and its queue does not grow with overwrites.
func TestLocalBounded(t *testing.T) {
	ctx := context.Background()
	l := NewLocal(100, nil)
	for i := range 10_000 {
		k := string(rune('a' + i%300))
		_ = l.Put(ctx, k, []byte{1}, i, time.Hour)
	}
	if n := l.Len(); n != 100 {
		t.Errorf("%d entries, want 100", n)
	}
	if q := len(l.queue); q > 200 {
		t.Errorf("queue of %d items for 100 entries", q)
	}
}

func newRedisTier(t *testing.T, addr string) *Redis {
	t.Helper()
	r := NewRedis(redisconn.New(redisconn.Options{Addr: addr, Timeout: time.Second, PoolSize: 2}), "test:")
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// TestStoreAcrossReplicas: two stores sharing one Redis, as two replicas
// do. A record put through one is found through the other for its tenant
// only, within the window only; a later attempt's record wins whatever the
// order the writes land in; a claim is taken once for both.
func TestStoreAcrossReplicas(t *testing.T) {
	srv := redisserver.Start(t)
	c := newClock()
	store := func() *Store {
		return &Store{Local: NewLocal(1000, c.now), Shared: newRedisTier(t, srv.Addr()), Window: time.Hour, Now: c.now,
			OnError: func(op string, err error) { t.Errorf("shared tier %s: %v", op, err) }}
	}
	a, b := store(), store()
	ctx := context.Background()
	// Written directly (Put writes Redis in the background).
	put := func(s *Store, r Record) {
		t.Helper()
		if err := s.Shared.Put(ctx, recordKey(r.Tenant, r.RequestID), r.Encode(), r.Attempts, s.Window); err != nil {
			t.Fatal(err)
		}
	}
	put(a, rec("team-a", "req-1", 2, "anthropic", c.now()))
	put(a, rec("team-a", "req-1", 1, "openai", c.now())) // the first attempt's write lands last
	got, ok := b.Get(ctx, "team-a", "req-1")
	if !ok || got.Backend != "anthropic" || got.Attempts != 2 || got.Model != "gpt-4o-mini" || got.Route != "by-model" {
		t.Errorf("replica b: %+v %v, want the second attempt's record", got, ok)
	}
	if _, ok := b.Get(ctx, "team-b", "req-1"); ok {
		t.Error("another tenant's request found")
	}
	if !b.Claim(ctx, "team-a", "req-1") || a.Claim(ctx, "team-a", "req-1") {
		t.Error("claim not once across replicas")
	}
	// Put reaches Redis in the background.
	a.Put(rec("team-a", "req-2", 1, "openai", c.now()))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := b.Get(ctx, "team-a", "req-2"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica b never found req-2")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Past the window: not found, whatever Redis still holds.
	c.add(time.Hour)
	if _, ok := b.Get(ctx, "team-a", "req-1"); ok {
		t.Error("record found past the window")
	}
}

// TestStoreSharedDown: with Redis unreachable the in-process tier answers
// and decides claims; every failure is reported.
func TestStoreSharedDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	c := newClock()
	var errs []string
	var mu sync.Mutex
	s := &Store{Local: NewLocal(10, c.now), Shared: newRedisTier(t, addr), Window: time.Hour, Now: c.now,
		OnError: func(op string, err error) { mu.Lock(); errs = append(errs, op); mu.Unlock() }}
	ctx := context.Background()
	s.Put(rec("t", "r", 1, "openai", c.now()))
	if got, ok := s.Get(ctx, "t", "r"); !ok || got.Backend != "openai" {
		t.Errorf("in-process record not found: %+v", got)
	}
	if !s.Claim(ctx, "t", "r") || s.Claim(ctx, "t", "r") {
		t.Error("claims not decided in process")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) < 3 {
		t.Errorf("failures reported: %v", errs)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := rec("t", "id", 3, "b", time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))
	r.AttemptBackends, r.TraceID, r.SpanID, r.Class = []string{"a", "b"}, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "code"
	b := r.Encode()
	if string(b[:13]) != `{"attempts":3` {
		t.Fatalf("the record does not start with its attempts: %s", b)
	}
	got, err := Decode(b)
	if err != nil || got.TraceID != r.TraceID || !got.Time.Equal(r.Time) || len(got.AttemptBackends) != 2 {
		t.Errorf("%+v %v", got, err)
	}
	if _, err := Decode([]byte("{")); err == nil {
		t.Error("bad record decoded")
	}
}
