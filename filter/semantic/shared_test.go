package semantic

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/filter/redisconn"
)

// sameDigits is a test guard: the two texts hold the same digits.
func sameDigits(a, b string) bool {
	digits := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, s)
	}
	return digits(a) == digits(b)
}

func newTier(t *testing.T, sh *Shared) *Tier {
	t.Helper()
	tr, err := NewTier(Options{Threshold: 0.8, MaxEntries: 100, MaxBucketEntries: 10, TTL: time.Hour,
		Vectors: StandInVectors{Dims: 128}, Guard: sameDigits, Shared: sh, SharedTimeout: time.Second,
		Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestSharedAcrossReplicas: what replica A stores, replica B (its own
// index, the same Redis) finds; the guard refuses a changed number; with
// Redis gone each replica still answers from what it holds.
func TestSharedAcrossReplicas(t *testing.T) {
	srv := redisserver.Start(t)
	client := func() *Shared {
		c := redisconn.New(redisconn.Options{Addr: srv.Addr(), Timeout: time.Second, PoolSize: 2})
		t.Cleanup(func() { _ = c.Close() })
		return NewShared(c, "test:", time.Hour, 10)
	}
	a, b := newTier(t, client()), newTier(t, client())
	ctx := context.Background()
	bk := bucketOf("faq")
	if err := a.Store(ctx, bk, "Can I return an item within 30 days?", entryOf("e1"), "req-1", t0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		text    string
		outcome string
	}{
		{"can I return an item within 30 days", LookupHit},
		{"Can I return an item within 60 days?", LookupGuarded},
		{"How do I change my shipping address?", LookupMiss},
	}
	for _, c := range cases {
		m, ok, outcome := b.Lookup(ctx, bk, c.text)
		if outcome != c.outcome || ok != (c.outcome == LookupHit) {
			t.Errorf("%q: outcome %s, want %s", c.text, outcome, c.outcome)
		}
		if ok && (m.Entry != entryOf("e1") || m.RequestID != "req-1" || m.Similarity < 0.8) {
			t.Errorf("%q: match %+v", c.text, m)
		}
	}
	// A second lookup reads nothing new; B's index holds the record once.
	b.Lookup(ctx, bk, "can I return an item within 30 days")
	if n := b.Index().Len(); n != 1 {
		t.Errorf("B holds %d records, want 1", n)
	}
	srv.Kill()
	var failed []string
	b.o.OnSharedError = func(op string, _ error) { failed = append(failed, op) }
	if _, ok, _ := b.Lookup(ctx, bk, "can I return an item within 30 days"); !ok {
		t.Errorf("with Redis down, B lost what it had read")
	}
	if len(failed) == 0 {
		t.Errorf("a failed sync was not reported")
	}
	if err := b.Store(ctx, bucketOf("other"), "x", entryOf("e2"), "req-2", t0); err == nil {
		t.Errorf("a failed publish was not an error")
	}
}
