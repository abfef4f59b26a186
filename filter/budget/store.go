package budget

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Charge is an amount added to one counter.
type Charge struct {
	// Budget names the budget or rate limit the counter belongs to.
	Budget string
	// RateLimit is true when Budget names a rate limit.
	RateLimit bool
	// Key names the counter: scope and window start included.
	Key string
	// ResetAt is the window end; the counter is gone after it.
	ResetAt time.Time
	// Pico is USD in pico-dollars (1e-12).
	Pico int64
	// Tokens and Requests are counted alongside.
	Tokens   int64
	Requests int64
}

// Limit caps one counter; a zero field means that quantity is not limited.
type Limit struct {
	Pico, Tokens, Requests int64
}

// Store keeps counters and reservations.
type Store interface {
	// Reserve adds all charges atomically if every one fits its limit
	// (limits[i] caps charges[i]); otherwise it adds nothing and returns
	// *Exceeded for the first that does not fit.
	Reserve(ctx context.Context, charges []Charge, limits []Limit) (id string, err error)
	// Settle replaces the reservation id by the actual amounts (same keys
	// as reserved; a reserved key missing from actual is released).
	Settle(ctx context.Context, id string, actual []Charge) error
	// Release removes the reservation id. Releasing an unknown or already
	// settled reservation does nothing.
	Release(ctx context.Context, id string) error
}

// Exceeded is the error of a request that does not fit a budget or rate
// limit. The router answers it with a 429 (budget_exceeded or
// rate_limit_exceeded) and a retry-after up to ResetAt.
type Exceeded struct {
	Budget    string
	RateLimit bool
	ResetAt   time.Time
}

func (e *Exceeded) Error() string {
	kind := "budget"
	if e.RateLimit {
		kind = "rate limit"
	}
	return fmt.Sprintf("%s %q exceeded; resets at %s", kind, e.Budget, e.ResetAt.UTC().Format(time.RFC3339))
}

// ErrUnknownReservation is returned by Settle for a reservation the store
// does not hold: already settled or released, or expired.
var ErrUnknownReservation = errors.New("budget: unknown reservation")

func exceeded(c Charge) *Exceeded {
	return &Exceeded{Budget: c.Budget, RateLimit: c.RateLimit, ResetAt: c.ResetAt}
}

// fits reports whether adding c to cur stays within l.
func fits(cur, c Charge, l Limit) bool {
	return within(cur.Pico, c.Pico, l.Pico) && within(cur.Tokens, c.Tokens, l.Tokens) && within(cur.Requests, c.Requests, l.Requests)
}

func within(cur, add, limit int64) bool {
	return limit <= 0 || cur+add <= limit
}
