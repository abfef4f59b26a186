package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmproc/llmproc/e2e/redisserver"
)

// hangGuard only catches a call that never returns; it is not a timing
// assertion (the bound under test is Timeout, far below it).
const hangGuard = 30 * time.Second

func testKey(s string) Key { return Key(sha256.Sum256([]byte(s))) }

func testEntry(body string) Entry {
	return Entry{Completion: []byte(body), Stored: time.Unix(1_780_000_000, 123_456_789)}
}

func newTestRedis(t testing.TB, addr, prefix string) *Redis {
	t.Helper()
	r := NewRedis(RedisOptions{Addr: addr, KeyPrefix: prefix, Timeout: time.Second})
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// rawClient talks to the test server directly, to look at what Redis holds.
func rawClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func mustGet(t *testing.T, r *Redis, k Key) (Entry, bool) {
	t.Helper()
	e, ok, err := r.Get(context.Background(), k)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return e, ok
}

func sameEntry(a, b Entry) bool {
	return bytes.Equal(a.Completion, b.Completion) && a.Stored.Equal(b.Stored)
}

func TestRedisRoundTrip(t *testing.T) {
	srv := redisserver.Start(t)
	r := newTestRedis(t, srv.Addr(), "llmproc:")
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		entry Entry
	}{
		{"json", testEntry(`{"id":"chatcmpl-1","object":"chat.completion"}`)},
		{"empty completion", testEntry("")},
		{"binary", Entry{Completion: []byte{0, 1, 2, 0xff, '\r', '\n'}, Stored: time.Unix(0, 1)}},
		{"zero time", Entry{Completion: []byte("x"), Stored: time.Unix(0, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := testKey(tc.name)
			if err := r.Set(ctx, k, tc.entry, time.Minute); err != nil {
				t.Fatalf("Set: %v", err)
			}
			got, ok := mustGet(t, r, k)
			if !ok {
				t.Fatal("Get after Set: miss")
			}
			if !sameEntry(got, tc.entry) {
				t.Errorf("Get = {%q, %v}, want {%q, %v}", got.Completion, got.Stored, tc.entry.Completion, tc.entry.Stored)
			}
		})
	}
}

func TestRedisMiss(t *testing.T) {
	srv := redisserver.Start(t)
	r := newTestRedis(t, srv.Addr(), "llmproc:")
	if _, ok := mustGet(t, r, testKey("never stored")); ok {
		t.Fatal("Get of a key never stored: hit")
	}
}

func TestRedisKeyLayoutAndTTL(t *testing.T) {
	srv := redisserver.Start(t)
	r := newTestRedis(t, srv.Addr(), "tenant-x:")
	k := testKey("layout")
	ttl := 90 * time.Second
	if err := r.Set(context.Background(), k, testEntry("{}"), ttl); err != nil {
		t.Fatalf("Set: %v", err)
	}
	raw := rawClient(t, srv.Addr())
	want := "tenant-x:" + hex.EncodeToString(k[:])
	keys, err := raw.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != want {
		t.Fatalf("keys = %q, want [%q]", keys, want)
	}
	left, err := raw.PTTL(context.Background(), want).Result()
	if err != nil {
		t.Fatal(err)
	}
	if left <= 0 || left > ttl {
		t.Errorf("PTTL = %v, want in (0, %v]", left, ttl)
	}
}

func TestRedisTTLExpiry(t *testing.T) {
	srv := redisserver.Start(t)
	r := newTestRedis(t, srv.Addr(), "llmproc:")
	k := testKey("short-lived")
	if err := r.Set(context.Background(), k, testEntry("{}"), 150*time.Millisecond); err != nil {
		t.Fatalf("Set: %v", err)
	}
	deadline := time.Now().Add(hangGuard)
	for {
		if _, ok := mustGet(t, r, k); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry with a 150ms TTL still served after %v", hangGuard)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestRedisRejectsNonPositiveTTL(t *testing.T) {
	srv := redisserver.Start(t)
	r := newTestRedis(t, srv.Addr(), "llmproc:")
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := r.Set(context.Background(), testKey("no ttl"), testEntry("{}"), ttl); err == nil {
			t.Errorf("Set with ttl %v: nil error", ttl)
		}
	}
	if _, ok := mustGet(t, r, testKey("no ttl")); ok {
		t.Error("an entry without TTL was stored")
	}
}

func TestRedisCorruptValueIsError(t *testing.T) {
	srv := redisserver.Start(t)
	r := newTestRedis(t, srv.Addr(), "llmproc:")
	k := testKey("corrupt")
	raw := rawClient(t, srv.Addr())
	if err := raw.Set(context.Background(), "llmproc:"+hex.EncodeToString(k[:]), "short", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.Get(context.Background(), k); !errors.Is(err, ErrBadEntry) || ok {
		t.Fatalf("Get of a value that is no encoded entry = ok %v, err %v; want ErrBadEntry", ok, err)
	}
}

// Two replicas with the same prefix share entries; another prefix does not
// see them.
func TestRedisSharedAndPrefixIsolation(t *testing.T) {
	srv := redisserver.Start(t)
	replicaA := newTestRedis(t, srv.Addr(), "llmproc:")
	replicaB := newTestRedis(t, srv.Addr(), "llmproc:")
	other := newTestRedis(t, srv.Addr(), "staging:")
	k := testKey("shared")
	e := testEntry(`{"id":"shared"}`)
	if err := replicaA.Set(context.Background(), k, e, time.Minute); err != nil {
		t.Fatalf("Set on replica A: %v", err)
	}
	got, ok := mustGet(t, replicaB, k)
	if !ok || !sameEntry(got, e) {
		t.Fatalf("replica B: ok=%v entry %q, want the entry replica A stored", ok, got.Completion)
	}
	if _, ok := mustGet(t, other, k); ok {
		t.Fatal("a client with another prefix saw the entry")
	}
	// The other prefix's own entry under the same key stays apart.
	if err := other.Set(context.Background(), k, testEntry("other"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := mustGet(t, replicaB, k); !sameEntry(got, e) {
		t.Fatalf("after the other prefix's Set, replica B reads %q", got.Completion)
	}
}

// callsReturn runs Get and Set against r and fails if either succeeds, or if
// either never returns.
func callsReturn(t *testing.T, r *Redis, what string) {
	t.Helper()
	type result struct {
		op  string
		err error
	}
	results := make(chan result, 2)
	go func() {
		_, _, err := r.Get(context.Background(), testKey("k"))
		results <- result{"Get", err}
	}()
	go func() {
		results <- result{"Set", r.Set(context.Background(), testKey("k"), testEntry("{}"), time.Minute)}
	}()
	guard := time.After(hangGuard)
	for range 2 {
		select {
		case res := <-results:
			if res.err == nil {
				t.Errorf("%s against %s: nil error", res.op, what)
			}
		case <-guard:
			t.Fatalf("a call against %s did not return", what)
		}
	}
}

func TestRedisKilledServerErrors(t *testing.T) {
	srv := redisserver.Start(t)
	r := newTestRedis(t, srv.Addr(), "llmproc:")
	k := testKey("before the crash")
	if err := r.Set(context.Background(), k, testEntry("{}"), time.Minute); err != nil {
		t.Fatalf("Set while up: %v", err)
	}
	srv.Kill()
	callsReturn(t, r, "a killed server")

	// When Redis comes back (empty: no persistence), the client recovers.
	srv.Restart()
	deadline := time.Now().Add(hangGuard)
	for {
		err := r.Set(context.Background(), k, testEntry("{}"), time.Minute)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client did not recover after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := mustGet(t, r, k); !ok {
		t.Fatal("miss after recovery")
	}
}

// A server that accepts connections and never answers stands for a Redis that
// hangs; the client must give up at its Timeout.
func TestRedisHungServerErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	r := NewRedis(RedisOptions{Addr: l.Addr().String(), Timeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	callsReturn(t, r, "a server that never answers")
}

func TestRedisNothingListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := NewRedis(RedisOptions{Addr: addr, Timeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	callsReturn(t, r, "a port nothing listens on")
}

// BenchmarkRedisGetHit reads one 8 KB entry from a local redis-server: the
// shared tier's cost on a hit, loopback round trip included.
//
//	go test -run='^$' -bench=RedisGetHit -benchmem -count=10 ./filter/cache | benchstat -
func BenchmarkRedisGetHit(b *testing.B) {
	srv := redisserver.Start(b)
	r := newTestRedis(b, srv.Addr(), "llmproc:")
	k := testKey("bench")
	e := testEntry(string(bytes.Repeat([]byte("a"), 8<<10)))
	ctx := context.Background()
	if err := r.Set(ctx, k, e, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := r.Get(ctx, k); err != nil || !ok {
			b.Fatalf("Get: ok=%v err=%v", ok, err)
		}
	}
}
