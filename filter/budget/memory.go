package budget

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// sweepEvery is how many reservations pass between sweeps of ended windows.
const sweepEvery = 1024

// Memory is a Store for one replica. It is safe for concurrent use.
type Memory struct {
	now func() time.Time

	mu       sync.Mutex
	counters map[string]*Charge // by Key; only amounts and ResetAt are used
	held     map[string][]Charge
	next     uint64
	reserves int
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store reading the time from now
// (time.Now if nil).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, counters: map[string]*Charge{}, held: map[string][]Charge{}}
}

// Reserve implements Store.
func (m *Memory) Reserve(_ context.Context, charges []Charge, limits []Limit) (string, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reserves++
	if m.reserves%sweepEvery == 0 {
		m.sweep(now)
	}
	for i, c := range charges {
		var cur Charge
		if k := m.live(c.Key, now); k != nil {
			cur = *k
		}
		if i < len(limits) && !fits(cur, c, limits[i]) {
			return "", exceeded(c)
		}
	}
	for _, c := range charges {
		k := m.live(c.Key, now)
		if k == nil {
			k = &Charge{ResetAt: c.ResetAt}
			m.counters[c.Key] = k
		}
		add(k, c, 1)
	}
	m.next++
	id := strconv.FormatUint(m.next, 36)
	if len(charges) > 0 {
		m.held[id] = append([]Charge(nil), charges...)
	}
	return id, nil
}

// Settle implements Store.
func (m *Memory) Settle(_ context.Context, id string, actual []Charge) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	held, ok := m.held[id]
	if !ok {
		return ErrUnknownReservation
	}
	delete(m.held, id)
	m.undo(held, now)
	for _, c := range actual {
		if k := m.live(c.Key, now); k != nil && k.ResetAt.Equal(c.ResetAt) {
			add(k, c, 1)
		}
	}
	return nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, id string) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if held, ok := m.held[id]; ok {
		delete(m.held, id)
		m.undo(held, now)
	}
	return nil
}

// undo subtracts reserved charges from counters whose window is still the
// one they were reserved in.
func (m *Memory) undo(held []Charge, now time.Time) {
	for _, c := range held {
		if k := m.live(c.Key, now); k != nil && k.ResetAt.Equal(c.ResetAt) {
			add(k, c, -1)
		}
	}
}

// live returns the counter for key unless its window has ended.
func (m *Memory) live(key string, now time.Time) *Charge {
	k := m.counters[key]
	if k == nil || !now.Before(k.ResetAt) {
		return nil
	}
	return k
}

func (m *Memory) sweep(now time.Time) {
	for key, k := range m.counters {
		if !now.Before(k.ResetAt) {
			delete(m.counters, key)
		}
	}
	// A reservation never settled (its request lost) goes once every
	// window it counts in has ended; until then it stays counted.
	for id, held := range m.held {
		if ended(held, now) {
			delete(m.held, id)
		}
	}
}

func ended(held []Charge, now time.Time) bool {
	for _, c := range held {
		if now.Before(c.ResetAt) {
			return false
		}
	}
	return true
}

// add adds sign×c to k, never going below zero.
func add(k *Charge, c Charge, sign int64) {
	k.Pico = max(0, k.Pico+sign*c.Pico)
	k.Tokens = max(0, k.Tokens+sign*c.Tokens)
	k.Requests = max(0, k.Requests+sign*c.Requests)
}

// Spent returns the cost counted under key in its current window.
func (m *Memory) Spent(_ context.Context, key string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := m.live(key, m.now()); k != nil {
		return k.Pico, nil
	}
	return 0, nil
}
