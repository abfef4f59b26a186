package budget

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	life  Lifetimes
}

// Lifetimes are how long a reservation lives without news, derived from
// the route's timeouts (the caller computes them from the Envoy config).
type Lifetimes struct {
	// Hold covers one attempt until its answer streams: the wait for
	// response headers (per_try_timeout) plus the first stretch of the
	// stream, after which the upstream role renews it.
	Hold time.Duration
	// Stream is what each renewal of a live stream adds.
	Stream time.Duration
	// Grace is how long a failed attempt's reservation waits for Envoy's
	// next attempt (back-off plus the upstream filter's message timeout)
	// before it is released.
	Grace time.Duration
}

// Default lifetimes, for an engine built without them: those of llmproc's
// default Envoy timeouts (per_try_timeout 120s, idle_timeout 300s).
const (
	defaultHold   = 13 * time.Minute
	defaultStream = 11 * time.Minute
	defaultGrace  = 35 * time.Second
)

// Options configures an Engine.
type Options struct {
	Budgets    []config.Budget
	RateLimits []config.RateLimit
	Store      Store
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Lifetimes of reservations (defaults where zero).
	Lifetimes Lifetimes
	// ModelName maps a model named in a budget to its registry name
	// (aliases to the model); nil keeps names as written. Requests must
	// name the registry model too (Request.Model).
	ModelName func(string) string
}

// Request is what the engine needs to know about a request before it is sent.
type Request struct {
	// Tenant is the tenant header's value; requests without one count
	// together as the tenant "".
	Tenant string
	// Model is the registry model the request is priced at (an alias or
	// a routing rule's target resolved), or the name asked for when no
	// registry model applies.
	Model string
	// WorstPico and WorstTokens are the most the request can cost: the
	// estimated input plus max_tokens, at the model's prices, saturated at
	// math.MaxInt64 (which fits no limit).
	WorstPico   int64
	WorstTokens int64
	// Key, when set, is the client key's own budget and rate limit,
	// charged in addition to every rule that applies to the tenant.
	Key *KeyLimits
}

// KeyLimits are a client key's own budget (Budget's Pico and Tokens in
// Window) and rate limit (RateLimit's Tokens and Requests per minute); a
// zero Limit is none. The counters are the key's, by its public id.
type KeyLimits struct {
	ID        string
	Window    Window
	Budget    Limit
	RateLimit Limit
}

// Reservation is a request's hold on its budgets, to be settled or released.
// The zero Reservation (no rule applied) settles and releases as a no-op.
type Reservation struct {
	// ID is random (128 bits, hex): unique across replicas and restarts.
	ID      string
	Charges []Charge
}

// NewEngine compiles the budgets and rate limits of o.
func NewEngine(o Options) (*Engine, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	life := o.Lifetimes
	life.Hold, life.Stream, life.Grace = cmp.Or(life.Hold, defaultHold), cmp.Or(life.Stream, defaultStream), cmp.Or(life.Grace, defaultGrace)
	name := o.ModelName
	if name == nil {
		name = func(s string) string { return s }
	}
	e := &Engine{store: o.Store, now: now, life: life}
	for _, b := range o.Budgets {
		s, err := ParseScope(b.Scope)
		if err != nil {
			return nil, fmt.Errorf("budget %q: %w", b.Name, err)
		}
		w, err := ParseWindow(b.Window)
		if err != nil {
			return nil, fmt.Errorf("budget %q: %w", b.Name, err)
		}
		var models []string
		for _, m := range b.Models {
			models = append(models, name(m))
		}
		e.rules = append(e.rules, rule{
			name: b.Name, scope: s, window: w, models: models, capPico: b.MaxRequestUSD.Pico,
			limit: Limit{Pico: b.LimitUSD.Pico, Tokens: b.LimitTokens},
		})
	}
	for _, r := range o.RateLimits {
		e.rules = append(e.rules, rule{
			name: r.Name, rateLimit: true, scope: Tenant, window: Minute, tenants: r.Tenants,
			limit: Limit{Tokens: r.TPM, Requests: r.RPM},
		})
	}
	return e, nil
}

// Lifetimes returns the engine's reservation lifetimes.
func (e *Engine) Lifetimes() Lifetimes { return e.life }

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
		_, keep := ru.window.Bounds(end) // the next window's end
		c := Charge{
			Budget: ru.name, RateLimit: ru.rateLimit, ResetAt: end, KeepUntil: keep,
			Key:  key(kind, ru.name, ru.scope, r.Tenant, r.Model, start),
			Pico: pico, Tokens: max(r.WorstTokens, 0), Requests: 1,
		}
		// A request larger than the limit itself never fits: refused here,
		// so no sum near math.MaxInt64 reaches a store.
		if !fits(Charge{}, c, ru.limit) {
			return Reservation{}, exceeded(c)
		}
		charges = append(charges, c)
		limits = append(limits, ru.limit)
	}
	if k := r.Key; k != nil {
		var err error
		if charges, limits, err = keyCharges(k, r, now, charges, limits); err != nil {
			return Reservation{}, err
		}
	}
	if len(charges) == 0 {
		return Reservation{}, nil
	}
	id := newID()
	if err := e.store.Reserve(ctx, id, charges, limits, e.life.Hold); err != nil {
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

// Release gives res back: no provider served the request, or it was served
// from cache.
func (e *Engine) Release(ctx context.Context, res Reservation) error {
	if res.ID == "" {
		return nil
	}
	return e.store.Release(ctx, res.ID)
}

// Hold keeps res alive for attempt: ttl is Lifetimes.Hold when the attempt
// starts and Lifetimes.Stream while its answer streams.
func (e *Engine) Hold(ctx context.Context, res Reservation, attempt int, ttl time.Duration) error {
	if res.ID == "" {
		return nil
	}
	return e.store.Hold(ctx, res.ID, max(attempt, 1), ttl)
}

// Await marks attempt failed with another try to come: res is released
// unless a later attempt holds it within Lifetimes.Grace.
func (e *Engine) Await(ctx context.Context, res Reservation, attempt int) error {
	if res.ID == "" {
		return nil
	}
	return e.store.Await(ctx, res.ID, max(attempt, 1), e.life.Grace)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return hex.EncodeToString(b[:])
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
