package budget

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/llmproc/llmproc/filter/config"
)

// rule is one budget or rate limit, compiled.
type rule struct {
	name      string
	rateLimit bool
	scope     Scope
	window    Window
	limit     Limit
	models    []string // empty = every model
	tenants   []string // empty = every tenant
	capPico   int64    // max reserved per request; 0 = no cap
}

// Engine turns a request into charges against the configured budgets and
// rate limits and reserves and settles them in a Store. It is safe for
// concurrent use.
type Engine struct {
	rules []rule
	store Store
	now   func() time.Time
}

// Request is what the engine needs to know about a request before it is sent.
type Request struct {
	// Tenant is the tenant header's value; requests without one count
	// together as the tenant "".
	Tenant string
	Model  string
	// WorstPico and WorstTokens are the most the request can cost: the
	// estimated input plus max_tokens, at the model's prices.
	WorstPico   int64
	WorstTokens int64
}

// Reservation is a request's hold on its budgets, to be settled or released.
// The zero Reservation (no rule applied) settles and releases as a no-op.
type Reservation struct {
	ID      string
	Charges []Charge
}

// NewEngine compiles the budgets and rate limits of cfg. now is time.Now if nil.
func NewEngine(budgets []config.Budget, limits []config.RateLimit, store Store, now func() time.Time) (*Engine, error) {
	if now == nil {
		now = time.Now
	}
	e := &Engine{store: store, now: now}
	for _, b := range budgets {
		s, err := ParseScope(b.Scope)
		if err != nil {
			return nil, fmt.Errorf("budget %q: %w", b.Name, err)
		}
		w, err := ParseWindow(b.Window)
		if err != nil {
			return nil, fmt.Errorf("budget %q: %w", b.Name, err)
		}
		e.rules = append(e.rules, rule{
			name: b.Name, scope: s, window: w, models: b.Models, capPico: b.MaxRequestUSD.Pico,
			limit: Limit{Pico: b.LimitUSD.Pico, Tokens: b.LimitTokens},
		})
	}
	for _, r := range limits {
		e.rules = append(e.rules, rule{
			name: r.Name, rateLimit: true, scope: Tenant, window: Minute, tenants: r.Tenants,
			limit: Limit{Tokens: r.TPM, Requests: r.RPM},
		})
	}
	return e, nil
}

// Reserve holds the request's worst case in every budget and rate limit that
// applies to it. If one does not fit, nothing is held and the error is an
// *Exceeded; any other error comes from the store (the caller applies
// on_error).
func (e *Engine) Reserve(ctx context.Context, r Request) (Reservation, error) {
	now := e.now()
	var charges []Charge
	var limits []Limit
	for i := range e.rules {
		ru := &e.rules[i]
		if len(ru.models) > 0 && !slices.Contains(ru.models, r.Model) ||
			len(ru.tenants) > 0 && !slices.Contains(ru.tenants, r.Tenant) {
			continue
		}
		if charges == nil {
			charges = make([]Charge, 0, len(e.rules)-i)
			limits = make([]Limit, 0, len(e.rules)-i)
		}
		start, end := ru.window.Bounds(now)
		kind := "b"
		if ru.rateLimit {
			kind = "r"
		}
		pico := max(r.WorstPico, 0)
		if ru.capPico > 0 {
			pico = min(pico, ru.capPico)
		}
		charges = append(charges, Charge{
			Budget: ru.name, RateLimit: ru.rateLimit, ResetAt: end,
			Key:  key(kind, ru.name, ru.scope, r.Tenant, r.Model, start),
			Pico: pico, Tokens: max(r.WorstTokens, 0), Requests: 1,
		})
		limits = append(limits, ru.limit)
	}
	if len(charges) == 0 {
		return Reservation{}, nil
	}
	id, err := e.store.Reserve(ctx, charges, limits)
	if err != nil {
		return Reservation{}, err
	}
	return Reservation{ID: id, Charges: charges}, nil
}

// Settle replaces res's worst case by the request's actual cost and tokens,
// in the same windows it was reserved in.
func (e *Engine) Settle(ctx context.Context, res Reservation, actualPico, actualTokens int64) error {
	if res.ID == "" {
		return nil
	}
	actual := make([]Charge, len(res.Charges))
	for i, c := range res.Charges {
		c.Pico, c.Tokens = max(actualPico, 0), max(actualTokens, 0)
		actual[i] = c
	}
	return e.store.Settle(ctx, res.ID, actual)
}

// Release gives res back: the request failed or was served from cache.
func (e *Engine) Release(ctx context.Context, res Reservation) error {
	if res.ID == "" {
		return nil
	}
	return e.store.Release(ctx, res.ID)
}

// Figure is one budget's standing in its current window.
type Figure struct {
	Budget    string
	SpentPico int64
	LimitPico int64
}

// Figures reports the global budgets with a USD limit (tenant-scoped budgets
// have a counter per tenant, too many to export). The store must be able to
// read a counter (Memory and Redis can); otherwise Figures is empty.
func (e *Engine) Figures(ctx context.Context) []Figure {
	sp, ok := e.store.(interface {
		Spent(ctx context.Context, key string) (int64, error)
	})
	if !ok {
		return nil
	}
	now := e.now()
	var out []Figure
	for _, ru := range e.rules {
		if ru.rateLimit || ru.scope != Global || ru.limit.Pico == 0 {
			continue
		}
		start, _ := ru.window.Bounds(now)
		spent, err := sp.Spent(ctx, key("b", ru.name, Global, "", "", start))
		if err != nil {
			continue
		}
		out = append(out, Figure{Budget: ru.name, SpentPico: spent, LimitPico: ru.limit.Pico})
	}
	return out
}
