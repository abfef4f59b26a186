package budget

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// sweepEvery is how often, at most, ended reservations and counters are
// dropped (on the next call after it has passed); a call on one
// reservation ends it at once if its deadline has passed.
const sweepEvery = 100 * time.Millisecond

// Memory is a Store for one replica. It is safe for concurrent use. It
// holds only live reservations and the counters of current and just-ended
// windows: every reservation leaves when it ends.
type Memory struct {
	now func() time.Time

	mu        sync.Mutex
	counters  map[string]*Charge // by Key; amounts, ResetAt and KeepUntil
	held      map[string]*record // by reservation id
	lastSweep time.Time
}

// record is one live reservation.
type record struct {
	charges  []Charge
	attempt  int
	awaiting bool // its last attempt failed; released at deadline
	deadline time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store reading the time from now
// (time.Now if nil).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, counters: map[string]*Charge{}, held: map[string]*record{}}
}

// Reserve implements Store.
func (m *Memory) Reserve(_ context.Context, id string, charges []Charge, limits []Limit, ttl time.Duration) error {
	return m.locked(func(now time.Time) error {
		if _, ok := m.held[id]; ok {
			return nil // the same reservation again: counted once
		}
		for i, c := range charges {
			var cur Charge
			if k := m.counter(c.Key, now); k != nil {
				cur = *k
			}
			if i < len(limits) && !fits(cur, c, limits[i]) {
				return exceeded(c)
			}
		}
		for _, c := range charges {
			k := m.counter(c.Key, now)
			if k == nil {
				k = &Charge{ResetAt: c.ResetAt, KeepUntil: keepUntil(c)}
				m.counters[c.Key] = k
			}
			addTo(k, c, 1)
		}
		if len(charges) > 0 {
			m.held[id] = &record{charges: append([]Charge(nil), charges...), attempt: 1, deadline: now.Add(ttl)}
		}
		return nil
	})
}

// Settle implements Store.
func (m *Memory) Settle(_ context.Context, id string, actual []Charge) error {
	return m.locked(func(now time.Time) error {
		r, ok := m.live(id, now)
		if !ok {
			return ErrUnknownReservation
		}
		delete(m.held, id)
		m.apply(r.charges, now, -1)
		m.apply(actual, now, 1)
		return nil
	})
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, id string) error {
	return m.locked(func(now time.Time) error {
		if _, ok := m.live(id, now); ok {
			m.release(id, now)
		}
		return nil
	})
}

// locked runs f with the lock held, after any sweep that is due.
func (m *Memory) locked(f func(now time.Time) error) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.maybeSweep(now)
	return f(now)
}

func (m *Memory) release(id string, now time.Time) {
	if r, ok := m.held[id]; ok {
		delete(m.held, id)
		m.apply(r.charges, now, -1)
	}
}

// Hold implements Store.
func (m *Memory) Hold(_ context.Context, id string, attempt int, ttl time.Duration) error {
	return m.mark(id, attempt, ttl, false)
}

// Await implements Store.
func (m *Memory) Await(_ context.Context, id string, attempt int, grace time.Duration) error {
	err := m.mark(id, attempt, grace, true)
	if errors.Is(err, ErrUnknownReservation) {
		return nil
	}
	return err
}

func (m *Memory) mark(id string, attempt int, d time.Duration, awaiting bool) error {
	return m.locked(func(now time.Time) error {
		r, ok := m.live(id, now)
		if !ok {
			return ErrUnknownReservation
		}
		if attempt >= r.attempt { // else a later attempt holds it
			r.attempt, r.awaiting, r.deadline = attempt, awaiting, now.Add(d)
		}
		return nil
	})
}

// apply adds sign×charges to the counters they were taken from, while those
// are kept.
func (m *Memory) apply(charges []Charge, now time.Time, sign int64) {
	for _, c := range charges {
		if k := m.counter(c.Key, now); k != nil && k.ResetAt.Equal(c.ResetAt) {
			addTo(k, c, sign)
		}
	}
}

// counter returns the counter for key unless it has been dropped.
func (m *Memory) counter(key string, now time.Time) *Charge {
	k := m.counters[key]
	if k == nil || !now.Before(k.KeepUntil) {
		return nil
	}
	return k
}

func (m *Memory) maybeSweep(now time.Time) {
	if now.Sub(m.lastSweep) < sweepEvery && !now.Before(m.lastSweep) {
		return
	}
	m.lastSweep = now
	for key, k := range m.counters {
		if !now.Before(k.KeepUntil) {
			delete(m.counters, key)
		}
	}
	for id := range m.held {
		m.live(id, now)
	}
}

// live returns the reservation id unless it has ended; one past its
// deadline ends now: released if it was awaiting a retry (none came, so
// nothing was served), else expired with its amounts kept.
func (m *Memory) live(id string, now time.Time) (*record, bool) {
	r, ok := m.held[id]
	if !ok || now.Before(r.deadline) {
		return r, ok
	}
	if r.awaiting {
		m.release(id, now)
	} else {
		delete(m.held, id)
	}
	return nil, false
}

// Spent returns the cost counted under key, after ending the reservations
// whose deadline has passed (a grace with no retry gives its amounts back
// then, not at the next budget check).
func (m *Memory) Spent(_ context.Context, key string) (pico int64, _ error) {
	return pico, m.locked(func(now time.Time) error {
		if k := m.counter(key, now); k != nil {
			pico = k.Pico
		}
		return nil
	})
}

// Len reports how many reservations and counters the store holds.
func (m *Memory) Len() (reservations, counters int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.held), len(m.counters)
}

// keepUntil is when a counter for c may be dropped: KeepUntil, or ResetAt
// for charges made without one.
func keepUntil(c Charge) time.Time {
	if c.KeepUntil.After(c.ResetAt) {
		return c.KeepUntil
	}
	return c.ResetAt
}

// Counters calls each with every counter kept whose key starts with prefix
// and ends with suffix, after ending the reservations whose deadline has
// passed (as Spent does). each runs with the store locked: it must not
// call the store.
func (m *Memory) Counters(_ context.Context, prefix, suffix string, each func(key string, pico int64)) error {
	return m.locked(func(now time.Time) error {
		for key := range m.counters {
			if len(key) >= len(prefix)+len(suffix) && strings.HasPrefix(key, prefix) && strings.HasSuffix(key, suffix) {
				if k := m.counter(key, now); k != nil {
					each(key, k.Pico)
				}
			}
		}
		return nil
	})
}
