// Package creds keeps credentials that expire (AWS credentials from the
// default chain, Google access tokens) fresh in the background, so that a
// request never waits on a token endpoint.
//
// Each credential has a key and a fetch function. Ensure starts a goroutine
// that fetches it at once and again ahead of its expiry (five minutes before,
// or halfway through a shorter lifetime); a failed fetch is reported to
// Options.OnError and retried with back-off while the old value, if still
// valid, keeps serving. Get returns the current value without waiting. Only
// when there is no valid value (the first request after start, before the
// first fetch ended, or after the value expired while every refresh failed)
// does a request Wait, for one fetch at most.
package creds

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Fetch gets a credential and the time it expires (zero: never).
type Fetch[T any] func(ctx context.Context) (T, time.Time, error)

// Defaults for Options fields left zero.
const (
	DefaultTimeout = 10 * time.Second
	DefaultMargin  = 5 * time.Minute
	minBackoff     = time.Second
	maxBackoff     = time.Minute
)

// Options configures a Cache.
type Options struct {
	// Timeout bounds one fetch (default 10 s).
	Timeout time.Duration
	// Margin is how long before expiry a credential is refreshed (default
	// five minutes; at most half of its lifetime).
	Margin time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Sleep waits d, or less when kick receives or ctx ends (a timer when
	// nil). Tests replace it to run refreshes without waiting.
	Sleep func(ctx context.Context, d time.Duration, kick <-chan struct{})
	// OnRefresh, when set, is called after every fetch, with its error
	// (nil when it succeeded), from the goroutine that made it, before
	// Wait returns the fetch's result.
	OnRefresh func(key string, err error)
}

// Cache holds credentials by key. It is safe for concurrent use; Close
// stops its goroutines.
type Cache[T any] struct {
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	m      map[string]*entry[T]
}

type entry[T any] struct {
	val     T
	exp     time.Time // zero: never
	has     bool
	err     error         // the last fetch's error
	attempt chan struct{} // closed when the fetch in progress (or the next one) ends
	kick    chan struct{} // asks the goroutine to fetch now
	cancel  context.CancelFunc
}

// New returns an empty cache.
func New[T any](o Options) *Cache[T] {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Margin <= 0 {
		o.Margin = DefaultMargin
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Cache[T]{o: o, ctx: ctx, cancel: cancel, m: map[string]*entry[T]{}}
}

func sleep(ctx context.Context, d time.Duration, kick <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-kick:
	case <-ctx.Done():
	}
}

// Ensure starts keeping key fresh with fetch, unless it already is.
func (c *Cache[T]) Ensure(key string, fetch Fetch[T]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; ok || c.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	e := &entry[T]{attempt: make(chan struct{}), kick: make(chan struct{}, 1), cancel: cancel}
	c.m[key] = e
	c.wg.Go(func() { c.run(ctx, key, e, fetch) })
}

// Has reports whether key is kept (Ensure was called and Retain kept it).
func (c *Cache[T]) Has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[key]
	return ok
}

// Retain stops keeping every key for which keep is false.
func (c *Cache[T]) Retain(keep func(key string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if !keep(k) {
			e.cancel()
			delete(c.m, k)
		}
	}
}

// Close stops every refresh and waits for the goroutines to end.
func (c *Cache[T]) Close() {
	c.cancel()
	c.wg.Wait()
}

// Get returns key's value if it has one that has not expired. It never
// waits.
func (c *Cache[T]) Get(key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok && c.valid(e) {
		return e.val, true
	}
	var zero T
	return zero, false
}

func (c *Cache[T]) valid(e *entry[T]) bool {
	return e.has && (e.exp.IsZero() || c.o.Now().Before(e.exp))
}

// Wait returns key's value, waiting for one fetch (started now if none is
// in progress) when it has no valid value; it returns that fetch's error if
// it failed, or ctx's.
func (c *Cache[T]) Wait(ctx context.Context, key string) (T, error) {
	var zero T
	c.mu.Lock()
	e, ok := c.m[key]
	if !ok {
		c.mu.Unlock()
		return zero, fmt.Errorf("credential %q is not kept", key)
	}
	if c.valid(e) {
		defer c.mu.Unlock()
		return e.val, nil
	}
	attempt := e.attempt
	select {
	case e.kick <- struct{}{}:
	default:
	}
	c.mu.Unlock()
	select {
	case <-attempt:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid(e) {
		return e.val, nil
	}
	if e.err != nil {
		return zero, e.err
	}
	return zero, fmt.Errorf("credential %q is no longer kept", key)
}

// run fetches key until ctx ends: ahead of each expiry, and after a failure
// with back-off (1 s doubling to 1 min), or at once when kicked.
func (c *Cache[T]) run(ctx context.Context, key string, e *entry[T], fetch Fetch[T]) {
	// stopped ends a Wait that is still waiting when the key is dropped.
	stopped := func() {
		c.mu.Lock()
		e.err = ctx.Err()
		close(e.attempt)
		c.mu.Unlock()
	}
	backoff := minBackoff
	for {
		fctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
		v, exp, err := fetch(fctx)
		cancel()
		if ctx.Err() != nil {
			stopped()
			return
		}
		now := c.o.Now()
		if err == nil && !exp.IsZero() && !exp.After(now) {
			err = fmt.Errorf("the credential fetched expired at %s", exp.Format(time.RFC3339))
		}
		if c.o.OnRefresh != nil { // before waiters see the result: they may count on it
			c.o.OnRefresh(key, err)
		}
		c.mu.Lock()
		if err == nil {
			e.val, e.exp, e.has = v, exp, true
		}
		e.err = err
		close(e.attempt)
		e.attempt = make(chan struct{})
		select { // this fetch served every request that asked for one
		case <-e.kick:
		default:
		}
		c.mu.Unlock()
		var d time.Duration
		switch {
		case err != nil:
			d, backoff = backoff, min(2*backoff, maxBackoff)
		case exp.IsZero():
			// It never expires; fetch again only when a request asks.
			d, backoff = 1<<62, minBackoff
		default:
			life := exp.Sub(now)
			d, backoff = life-min(c.o.Margin, life/2), minBackoff
		}
		c.o.Sleep(ctx, d, e.kick)
		if ctx.Err() != nil {
			stopped()
			return
		}
	}
}
