package feedback

import (
	"context"
	"sync"
	"time"
)

// Local is the in-process tier: at most Max entries, each kept for the ttl
// it was stored with. Every entry of a Store has the same ttl (the window),
// so the order of insertion is the order of expiry: a queue in that order
// finds the expired and, past Max, the oldest entries without a scan. Safe
// for concurrent use.
type Local struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time
	m     map[string]localEntry
	queue []queued // oldest first; an entry stored again leaves a stale item
	seq   uint64
}

type localEntry struct {
	v        []byte
	attempt  int
	deadline time.Time
	seq      uint64 // the queue item that stands for this entry
}

type queued struct {
	key string
	seq uint64
}

// NewLocal returns a Local of at most max entries on clock now (time.Now
// when nil).
func NewLocal(max int, now func() time.Time) *Local {
	if now == nil {
		now = time.Now
	}
	return &Local{max: max, now: now, m: map[string]localEntry{}}
}

// Len is the number of entries held (expired ones not yet dropped included).
func (l *Local) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// Get implements Tier.
func (l *Local) Get(_ context.Context, key string) ([]byte, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[key]
	if !ok || !l.now().Before(e.deadline) {
		return nil, false, nil
	}
	return e.v, true, nil
}

// Put implements Tier.
func (l *Local) Put(_ context.Context, key string, v []byte, attempt int, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if e, ok := l.m[key]; ok && now.Before(e.deadline) && e.attempt > attempt {
		return nil
	}
	l.store(now, key, localEntry{v: v, attempt: attempt, deadline: now.Add(ttl)})
	return nil
}

// Claim implements Tier.
func (l *Local) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if e, ok := l.m[key]; ok && now.Before(e.deadline) {
		return false, nil
	}
	l.store(now, key, localEntry{deadline: now.Add(ttl)})
	return true, nil
}

// store puts e under key after dropping what has expired and, to stay
// within max, the oldest entries. l.mu is held.
func (l *Local) store(now time.Time, key string, e localEntry) {
	delete(l.m, key) // a queue item of an entry stored before goes stale
	for len(l.queue) > 0 {
		q := l.queue[0]
		cur, ok := l.m[q.key]
		if ok && cur.seq == q.seq && now.Before(cur.deadline) && len(l.m) < l.max {
			break
		}
		if ok && cur.seq == q.seq {
			delete(l.m, q.key)
		}
		l.queue[0] = queued{}
		l.queue = l.queue[1:]
	}
	if l.max <= 0 {
		return
	}
	l.seq++
	e.seq = l.seq
	l.m[key] = e
	l.queue = append(l.queue, queued{key: key, seq: l.seq})
}
