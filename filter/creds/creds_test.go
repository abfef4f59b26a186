package creds

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeTime is a clock the test moves and a Sleep that reports each wait
// and returns only when the test releases it (or a kick or the end comes):
// refreshes run step by step, with no timing in the assertions.
type fakeTime struct {
	mu      sync.Mutex
	now     time.Time
	slept   chan time.Duration
	release chan struct{}
}

func newFakeTime() *fakeTime {
	return &fakeTime{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), slept: make(chan time.Duration), release: make(chan struct{})}
}

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration, kick <-chan struct{}) {
	select {
	case f.slept <- d:
	case <-ctx.Done():
		return
	}
	select {
	case <-f.release:
	case <-kick:
	case <-ctx.Done():
	}
}

// result is what a scripted fetch returns.
type result struct {
	val  string
	life time.Duration // 0: never expires
	err  error
}

// script serves fetches from a channel, so the test decides what each
// fetch returns and when.
type script struct {
	ft      *fakeTime
	started chan struct{}
	results chan result
}

func (s *script) fetch(ctx context.Context) (string, time.Time, error) {
	select {
	case s.started <- struct{}{}:
	case <-ctx.Done():
		return "", time.Time{}, ctx.Err()
	}
	select {
	case r := <-s.results:
		var exp time.Time
		if r.life != 0 {
			exp = s.ft.Now().Add(r.life)
		}
		return r.val, exp, r.err
	case <-ctx.Done():
		return "", time.Time{}, ctx.Err()
	}
}

type refreshLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *refreshLog) add(_ string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *refreshLog) failures() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.errs {
		if e != nil {
			n++
		}
	}
	return n
}

func start(t *testing.T) (*Cache[string], *fakeTime, *script, *refreshLog) {
	ft := newFakeTime()
	log := &refreshLog{}
	c := New[string](Options{Now: ft.Now, Sleep: ft.Sleep, OnRefresh: log.add})
	t.Cleanup(c.Close)
	s := &script{ft: ft, started: make(chan struct{}), results: make(chan result)}
	c.Ensure("k", s.fetch)
	return c, ft, s, log
}

// primed is start after a first fetch of v1, valid an hour.
func primed(t *testing.T) (*Cache[string], *fakeTime, *script, *refreshLog) {
	c, ft, s, log := start(t)
	<-s.started
	s.results <- result{val: "v1", life: time.Hour}
	wantSleep(t, ft, 55*time.Minute)
	return c, ft, s, log
}

func wantSleep(t *testing.T, ft *fakeTime, want time.Duration) {
	t.Helper()
	if got := <-ft.slept; got != want {
		t.Fatalf("refresh sleeps %v, want %v", got, want)
	}
}

func wantGet(t *testing.T, c *Cache[string], want string) {
	t.Helper()
	got, ok := c.Get("k")
	if want == "" && ok || want != "" && (!ok || got != want) {
		t.Fatalf("Get = %q, %v; want %q", got, ok, want)
	}
}

// The first fetch starts at Ensure; until it ends there is no value, and a
// request that cannot do without waits for that one fetch.
func TestFirstFetch(t *testing.T) {
	c, ft, s, _ := start(t)
	<-s.started
	wantGet(t, c, "")
	done := make(chan string)
	go func() {
		v, err := c.Wait(context.Background(), "k")
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	s.results <- result{val: "v1", life: time.Hour}
	if v := <-done; v != "v1" {
		t.Fatalf("Wait = %q", v)
	}
	wantSleep(t, ft, 55*time.Minute)
	wantGet(t, c, "v1")
}

// A credential is refreshed in the background ahead of its expiry: five
// minutes before, or halfway through a short lifetime.
func TestRefreshAheadOfExpiry(t *testing.T) {
	c, ft, s, log := primed(t)
	ft.advance(55 * time.Minute)
	ft.release <- struct{}{}
	<-s.started
	wantGet(t, c, "v1") // still valid while the refresh runs
	s.results <- result{val: "v2", life: 8 * time.Minute}
	wantSleep(t, ft, 4*time.Minute) // half of a lifetime shorter than twice the margin
	wantGet(t, c, "v2")
	if log.failures() != 0 {
		t.Errorf("%d failures reported", log.failures())
	}
}

// A slow token endpoint holds up only the background refresh: requests get
// the valid value at once.
func TestSlowRefreshDoesNotBlock(t *testing.T) {
	c, ft, s, _ := primed(t)
	ft.release <- struct{}{}
	<-s.started // the refresh is now waiting on the endpoint
	for range 3 {
		wantGet(t, c, "v1")
		if v, err := c.Wait(context.Background(), "k"); v != "v1" || err != nil {
			t.Fatalf("Wait = %q, %v while a refresh is in progress", v, err)
		}
	}
	s.results <- result{val: "v2", life: time.Hour}
	wantSleep(t, ft, 55*time.Minute)
	wantGet(t, c, "v2")
}

// A failed refresh is reported and retried with back-off; the old value
// serves while it is valid. Once it has expired, a request waits for one
// fetch (started at once, not after the back-off) and gets its error.
func TestFailedRefresh(t *testing.T) {
	c, ft, s, log := primed(t)
	ft.advance(55 * time.Minute)
	ft.release <- struct{}{}
	<-s.started
	s.results <- result{err: errors.New("token endpoint: 503")}
	wantSleep(t, ft, time.Second)
	wantGet(t, c, "v1")
	ft.release <- struct{}{}
	<-s.started
	s.results <- result{err: errors.New("token endpoint: 503")}
	wantSleep(t, ft, 2*time.Second)
	if n := log.failures(); n != 2 {
		t.Errorf("%d failures reported, want 2", n)
	}

	ft.advance(10 * time.Minute) // v1 has expired
	wantGet(t, c, "")
	errc := make(chan error)
	go func() {
		_, err := c.Wait(context.Background(), "k")
		errc <- err
	}()
	<-s.started // the waiting request kicked the back-off short
	s.results <- result{err: errors.New("token endpoint: 503")}
	if err := <-errc; err == nil || err.Error() != "token endpoint: 503" {
		t.Fatalf("Wait error %v", err)
	}
	wantSleep(t, ft, 4*time.Second)
}

// A fetch that returns an already expired credential is a failure, not a
// value (and not a refresh loop with no pause).
func TestFetchedExpired(t *testing.T) {
	c, ft, s, log := start(t)
	<-s.started
	s.results <- result{val: "v1", life: -time.Second}
	wantSleep(t, ft, time.Second)
	wantGet(t, c, "")
	if log.failures() != 1 {
		t.Errorf("%d failures, want 1", log.failures())
	}
}

// A credential that never expires is fetched once.
func TestNeverExpires(t *testing.T) {
	c, ft, s, _ := start(t)
	<-s.started
	s.results <- result{val: "static"}
	if d := <-ft.slept; d < 100*365*24*time.Hour {
		t.Errorf("sleeps %v after a credential that never expires", d)
	}
	wantGet(t, c, "static")
}

// Retain and Close stop refreshes; a Wait on a key no longer kept fails.
func TestRetainAndClose(t *testing.T) {
	c, _, s, _ := primed(t)
	c.Retain(func(string) bool { return false })
	if c.Has("k") {
		t.Error("k still kept")
	}
	if _, err := c.Wait(context.Background(), "k"); err == nil {
		t.Error("Wait on a dropped key succeeded")
	}
	c.Close() // returns: the goroutine ended
	c.Ensure("k", s.fetch)
	if c.Has("k") {
		t.Error("Ensure after Close started a refresh")
	}
}
