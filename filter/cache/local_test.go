package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"testing"
	"time"
)

func newTestLocal(t testing.TB, memoryMB int, ttl time.Duration) (*Local, *time.Time) {
	t.Helper()
	l, err := NewLocal(memoryMB, ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	now := time.Unix(1767225600, 0)
	l.now = func() time.Time { return now }
	return l, &now
}

func keyN(i int) Key { return sha256.Sum256(fmt.Appendf(nil, "key %d", i)) }

func TestLocalSetGet(t *testing.T) {
	ctx := context.Background()
	l, now := newTestLocal(t, 8, time.Hour)
	e := Entry{Completion: []byte(`{"id":"x"}`), Stored: now.Add(-time.Second)}
	if _, ok, err := l.Get(ctx, keyN(1)); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	if err := l.Set(ctx, keyN(1), e, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, ok, err := l.Get(ctx, keyN(1))
	if !ok || err != nil {
		t.Fatalf("after Set: ok=%v err=%v", ok, err)
	}
	if !bytes.Equal(got.Completion, e.Completion) || !got.Stored.Equal(e.Stored) {
		t.Errorf("Get = %+v, want %+v", got, e)
	}
	if _, ok, _ := l.Get(ctx, keyN(2)); ok {
		t.Error("another key hit")
	}
	if l.Len() != 1 {
		t.Errorf("Len = %d, want 1", l.Len())
	}
	if s := l.Stats(); s.Hits != 1 || s.Misses != 2 {
		t.Errorf("Stats = %+v, want 1 hit, 2 misses", s)
	}
	if err := l.Set(ctx, keyN(1), Entry{Completion: []byte(`{"id":"y"}`), Stored: *now}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := l.Get(ctx, keyN(1)); string(got.Completion) != `{"id":"y"}` {
		t.Errorf("after overwrite: %s", got.Completion)
	}
}

// TestLocalTTL moves the Local's clock: bigcache's own clock is not
// settable, so expiry is the deadline Local stores with each value.
func TestLocalTTL(t *testing.T) {
	ctx := context.Background()
	l, now := newTestLocal(t, 8, time.Hour)
	e := Entry{Completion: []byte(`{}`), Stored: *now}
	if err := l.Set(ctx, keyN(1), e, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Set(ctx, keyN(2), e, 0); err != nil { // a zero ttl stores nothing
		t.Fatal(err)
	}
	for _, step := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {time.Minute - time.Nanosecond, true}, {time.Minute, false}, {time.Hour, false}} {
		*now = e.Stored.Add(step.at)
		if _, ok, _ := l.Get(ctx, keyN(1)); ok != step.want {
			t.Errorf("at +%s: hit=%v, want %v", step.at, ok, step.want)
		}
	}
	if _, ok, _ := l.Get(ctx, keyN(2)); ok {
		t.Error("zero-ttl entry stored")
	}
}

func TestLocalSizeBound(t *testing.T) {
	ctx := context.Background()
	l, now := newTestLocal(t, 1, time.Hour)
	val := bytes.Repeat([]byte("x"), 10<<10)
	const n = 400 // 4 MB into a 1 MB tier
	for i := range n {
		if err := l.Set(ctx, keyN(i), Entry{Completion: val, Stored: *now}, time.Hour); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
	}
	if l.Bytes() > 1<<20 {
		t.Errorf("Bytes = %d, over the 1 MB bound", l.Bytes())
	}
	if l.Len() >= n/2 || l.Len() == 0 {
		t.Errorf("Len = %d of %d entries; want the bound to have evicted most", l.Len(), n)
	}
	if l.Evictions() == 0 || l.Evictions()+int64(l.Len()) != n {
		t.Errorf("Evictions = %d, Len = %d, want a sum of %d", l.Evictions(), l.Len(), n)
	}
	if _, ok, _ := l.Get(ctx, keyN(n-1)); !ok {
		t.Error("newest entry evicted")
	}
	if _, ok, _ := l.Get(ctx, keyN(0)); ok {
		t.Error("oldest entry kept")
	}
	entries, b, ev := l.Figures()
	if entries != int64(l.Len()) || b != l.Bytes() || ev != l.Evictions() {
		t.Errorf("Figures = %d, %d, %d", entries, b, ev)
	}
	// An entry larger than the whole tier fails with an error, not a panic.
	if err := l.Set(ctx, keyN(-1), Entry{Completion: make([]byte, 2<<20)}, time.Hour); err == nil {
		t.Error("Set of an entry over the bound succeeded")
	}
}

func TestNewLocalRejects(t *testing.T) {
	for _, c := range []struct {
		mb  int
		ttl time.Duration
	}{{0, time.Hour}, {-1, time.Hour}, {1, 0}, {1, -time.Second}} {
		if l, err := NewLocal(c.mb, c.ttl); err == nil {
			l.Close()
			t.Errorf("NewLocal(%d, %s) succeeded", c.mb, c.ttl)
		}
	}
}

func TestShardsFor(t *testing.T) {
	for _, c := range []struct{ mb, entry, want int }{
		{1, 0, 1}, {2, 0, 2}, {3, 0, 2}, {64, 0, 64}, {100, 0, 64}, {256, 0, 256}, {4096, 0, 256},
		// Room for two entries of maxEntryBytes (plus headers) in each shard.
		{64, 1 << 20, 16}, {64, 1000, 32}, {64, 4 << 20, 4}, {1, 4 << 20, 1}, {4096, 1 << 20, 256},
	} {
		if got := shardsFor(c.mb, c.entry); got != c.want {
			t.Errorf("shardsFor(%d, %d) = %d, want %d", c.mb, c.entry, got, c.want)
		}
	}
}

// A Local sized for large entries holds one larger than NewLocal's 1 MB
// shards could, and Delete removes it once.
func TestLocalForLargeEntriesAndDelete(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocalFor(16, time.Hour, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	k := keyN(7)
	big := Entry{Completion: bytes.Repeat([]byte("x"), 2<<20), Stored: time.Now()}
	if err := l.Set(ctx, k, big, time.Hour); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := l.Get(ctx, k); !ok || err != nil || len(e.Completion) != 2<<20 {
		t.Fatalf("Get: %d bytes, %v, %v", len(e.Completion), ok, err)
	}
	for i, want := range []bool{true, false} {
		if ok, err := l.Delete(ctx, k); ok != want || err != nil {
			t.Errorf("Delete %d: %v, %v; want %v", i, ok, err, want)
		}
	}
	if _, ok, _ := l.Get(ctx, k); ok {
		t.Error("found after Delete")
	}
}

func TestEntryEncodeDecode(t *testing.T) {
	for _, e := range []Entry{
		{Completion: []byte(`{"id":"chatcmpl-1"}`), Stored: time.Unix(1767225600, 123456789)},
		{Completion: []byte{}, Stored: time.Unix(0, 0)},
		{Completion: bytes.Repeat([]byte{0xff, 0}, 1000), Stored: time.Unix(-5, 0)},
		{Completion: []byte(`{}`), Stored: time.Unix(7, 0), RequestID: "5a7c0e2b-req"},
	} {
		got, err := Decode(e.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Completion, e.Completion) || !got.Stored.Equal(e.Stored) || got.RequestID != e.RequestID {
			t.Errorf("round trip: got %+v, want %+v", got, e)
		}
	}
	for _, b := range [][]byte{nil, []byte("L"), []byte("L\x01short"), []byte("X\x01\x00\x00\x00\x00\x00\x00\x00\x00{}"), []byte("L\x02\x00\x00\x00\x00\x00\x00\x00\x00{}"), []byte("L\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00{}")} {
		if _, err := Decode(b); err == nil {
			t.Errorf("Decode(%q) succeeded", b)
		}
	}
}

// TestEntryVersion1: entries written by older replicas (no request id) are
// still read.
func TestEntryVersion1(t *testing.T) {
	got, err := Decode([]byte("L\x01\x00\x00\x00\x00\x00\x00\x00\x07{}"))
	if err != nil || string(got.Completion) != "{}" || got.RequestID != "" || got.Stored.UnixNano() != 7 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func BenchmarkLocalGetHit(b *testing.B) {
	ctx := context.Background()
	l, now := newTestLocal(b, 64, time.Hour)
	k := keyN(1)
	if err := l.Set(ctx, k, Entry{Completion: bytes.Repeat([]byte("x"), 8<<10), Stored: *now}, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := l.Get(ctx, k); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// TestLocalEmptyIsSmall: an empty in-process tier allocates little, whatever
// its bound; memory comes as entries arrive (it preallocated 10 MB at the
// default 256 MB before, which every GC counted as live heap).
func TestLocalEmptyIsSmall(t *testing.T) {
	for _, tc := range []struct {
		memoryMB, maxEntry int
	}{{256, 0}, {4096, 0}, {64, 1 << 20}} {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		l, err := NewLocalFor(tc.memoryMB, time.Minute, tc.maxEntry)
		if err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&m1)
		_ = l.Close()
		if got := m1.TotalAlloc - m0.TotalAlloc; got > 2<<20 {
			t.Errorf("NewLocalFor(%d MB, max entry %d) allocated %d bytes, want at most 2 MiB", tc.memoryMB, tc.maxEntry, got)
		}
	}
}

// TestLocalGrowsToItsBound: entries beyond the initial sizing are kept, up
// to the memory bound.
func TestLocalGrowsToItsBound(t *testing.T) {
	l, err := NewLocal(1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), 8<<10)
	var keys []Key
	for i := range 64 { // 512 KiB of entries into a 1 MB tier
		var k Key
		k[0], k[1] = byte(i), 0xaa
		keys = append(keys, k)
		if err := l.Set(ctx, k, Entry{Completion: body}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range keys {
		if _, ok, err := l.Get(ctx, k); err != nil || !ok {
			t.Fatalf("entry %d: ok=%v err=%v", i, ok, err)
		}
	}
}
