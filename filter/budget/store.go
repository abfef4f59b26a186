package budget

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/llmproc/llmproc/filter/usage"
)

// Charge is an amount added to one counter.
type Charge struct {
	// Budget names the budget or rate limit the counter belongs to.
	Budget string
	// RateLimit is true when Budget names a rate limit.
	RateLimit bool
	// ClientKey is the client key's id when the counter is that key's own
	// budget or rate limit (KeyLimits).
	ClientKey string `json:",omitempty"`
	// Key names the counter: scope and window start included, so a
	// reservation's amounts always go back to the window they were taken in.
	Key string
	// ResetAt is the window end: reservations need a new key from then on.
	ResetAt time.Time
	// KeepUntil is when the counter is dropped: the end of the next
	// window, so a request settled after the boundary still lands in the
	// window it was reserved in.
	KeepUntil time.Time
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

// Store keeps counters and reservations. A reservation ends exactly once:
// settled (Settle), released (Release, or Await with no later attempt in
// time) or expired (its deadline passed while held: its amounts stay
// counted, as the request may have been served). Every operation is
// idempotent: running one twice, or late, never counts twice.
type Store interface {
	// Reserve adds all charges atomically under id if every one fits its
	// limit (limits[i] caps charges[i]); otherwise it adds nothing and
	// returns *Exceeded for the first that does not fit. The reservation
	// is held by attempt 1 for ttl. A Reserve of an id already reserved,
	// or released before (a Reserve that ran late, after its caller gave
	// up), adds nothing.
	Reserve(ctx context.Context, id string, charges []Charge, limits []Limit, ttl time.Duration) error
	// Settle replaces the reservation id by the actual amounts (same keys
	// as reserved; a reserved key missing from actual is released). An
	// unknown id (settled, released or expired) is ErrUnknownReservation
	// and changes nothing.
	Settle(ctx context.Context, id string, actual []Charge) error
	// Release gives the reservation id back. Releasing an unknown id
	// changes no counter; in a store whose calls can run late (Redis) it
	// keeps a Reserve of that id from taking effect afterwards.
	Release(ctx context.Context, id string) error
	// Hold says attempt is alive: the reservation is held for ttl more,
	// unless a later attempt already holds it. ErrUnknownReservation when
	// the store no longer has it.
	Hold(ctx context.Context, id string, attempt int, ttl time.Duration) error
	// Await says attempt failed and Envoy may try again: unless a later
	// attempt holds the reservation within grace, it is released then.
	Await(ctx context.Context, id string, attempt int, grace time.Duration) error
}

// Exceeded is the error of a request that does not fit a budget or rate
// limit. The router answers it with a 429 (budget_exceeded or
// rate_limit_exceeded) and a retry-after up to ResetAt.
type Exceeded struct {
	Budget    string
	RateLimit bool
	// ClientKey is the client key's id when its own limit was exceeded.
	ClientKey string
	ResetAt   time.Time
}

func (e *Exceeded) Error() string {
	kind := "budget"
	if e.RateLimit {
		kind = "rate limit"
	}
	return fmt.Sprintf("%s %q exceeded; resets at %s", kind, e.Budget, e.ResetAt.UTC().Format(time.RFC3339))
}

// ErrUnknownReservation is returned for a reservation the store does not
// hold: already settled or released, or expired.
var ErrUnknownReservation = errors.New("budget: unknown reservation")

func exceeded(c Charge) *Exceeded {
	return &Exceeded{Budget: c.Budget, RateLimit: c.RateLimit, ClientKey: c.ClientKey, ResetAt: c.ResetAt}
}

// fits reports whether adding c to cur stays within l.
func fits(cur, c Charge, l Limit) bool {
	return within(cur.Pico, c.Pico, l.Pico) && within(cur.Tokens, c.Tokens, l.Tokens) && within(cur.Requests, c.Requests, l.Requests)
}

// within reports cur+add <= limit without computing the sum, which could
// wrap; amounts are never negative.
func within(cur, add, limit int64) bool {
	return limit <= 0 || add <= limit-cur
}

// addTo adds sign×c to k, saturating at math.MaxInt64 and never going
// below zero.
func addTo(k *Charge, c Charge, sign int64) {
	k.Pico = moved(k.Pico, c.Pico, sign)
	k.Tokens = moved(k.Tokens, c.Tokens, sign)
	k.Requests = moved(k.Requests, c.Requests, sign)
}

func moved(cur, v, sign int64) int64 {
	if sign > 0 {
		return usage.AddSat(cur, v)
	}
	return max(0, cur-v)
}
