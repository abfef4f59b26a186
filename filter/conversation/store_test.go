package conversation

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/llmproc/llmproc/filter/cache"
)

// mapTier is a Tier in a map, which can be made to fail.
type mapTier struct {
	mu   sync.Mutex
	m    map[cache.Key]cache.Entry
	fail bool
	sets chan struct{}
}

func newMapTier() *mapTier {
	return &mapTier{m: map[cache.Key]cache.Entry{}, sets: make(chan struct{}, 16)}
}

var errDown = errors.New("down")

func (t *mapTier) Get(_ context.Context, k cache.Key) (cache.Entry, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fail {
		return cache.Entry{}, false, errDown
	}
	e, ok := t.m[k]
	return e, ok, nil
}

func (t *mapTier) Set(_ context.Context, k cache.Key, e cache.Entry, _ time.Duration) error {
	t.mu.Lock()
	defer func() { t.mu.Unlock(); t.sets <- struct{}{} }()
	if t.fail {
		return errDown
	}
	t.m[k] = e
	return nil
}

func (t *mapTier) Delete(_ context.Context, k cache.Key) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fail {
		return false, errDown
	}
	_, ok := t.m[k]
	delete(t.m, k)
	return ok, nil
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1767225600, 0)
	// Two replicas: their own local tiers, one shared tier.
	shared := newMapTier()
	var errs []string
	a := &Store{Local: newMapTier(), Shared: shared, TTL: time.Hour, MaxBytes: 1 << 10, Now: func() time.Time { return now },
		OnError: func(op string, _ error) { errs = append(errs, op) }}
	b := &Store{Local: newMapTier(), Shared: shared, TTL: time.Hour, MaxBytes: 1 << 10, Now: func() time.Time { return now }}
	rec := Record{Input: []byte(`[]`), Response: []byte(`{"id":"resp_1","output":[]}`)}
	if !a.Put("t1", rec) {
		t.Fatal("Put refused a small record")
	}
	<-shared.sets
	if got, ok := b.Get(ctx, "t1", "resp_1"); !ok || got.ID() != "resp_1" {
		t.Errorf("the other replica: %+v, %v", got, ok)
	}
	if _, ok := b.Get(ctx, "t2", "resp_1"); ok {
		t.Error("another tenant found the record")
	}
	if _, ok := b.Get(ctx, "t1", "resp_2"); ok {
		t.Error("an unknown id was found")
	}
	// Deleted through b, gone for a too, though a's local tier had it.
	if !b.Delete(ctx, "t1", "resp_1") {
		t.Error("Delete found nothing")
	}
	if _, ok := a.Get(ctx, "t1", "resp_1"); ok {
		t.Error("found through a after the delete through b")
	}
	if b.Delete(ctx, "t1", "resp_1") {
		t.Error("a second Delete found it")
	}
	// The shared tier down: the local tier answers.
	a.Put("t1", rec)
	<-shared.sets
	shared.mu.Lock()
	shared.fail = true
	shared.mu.Unlock()
	if _, ok := a.Get(ctx, "t1", "resp_1"); !ok {
		t.Error("the local tier did not answer with the shared one down")
	}
	if len(errs) == 0 || errs[0] != "get" {
		t.Errorf("shared-tier errors reported: %v", errs)
	}
	// Past the TTL: gone; over MaxBytes or without an id: not kept.
	now = now.Add(time.Hour)
	if _, ok := a.Get(ctx, "t1", "resp_1"); ok {
		t.Error("found past the TTL")
	}
	big := Record{Input: []byte(`["` + string(make([]byte, 2000)) + `"]`), Response: []byte(`{"id":"resp_3"}`)}
	if a.Put("t1", big) || a.Put("t1", Record{Input: []byte(`[]`), Response: []byte(`{}`)}) {
		t.Error("kept a record over the bound or without an id")
	}
}
