package budget

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llmproc/llmproc/filter/config"
)

// A client key's own budget and rate limit are charged in addition to the
// rules, in counters of their own per key and window; refusing names the
// key; settling replaces the worst case there too.
func TestKeyLimits(t *testing.T) {
	now := time.Date(2026, 5, 17, 10, 20, 30, 0, time.UTC)
	mem := NewMemory(func() time.Time { return now })
	e, err := NewEngine(Options{Store: mem, Now: func() time.Time { return now },
		Budgets: []config.Budget{{Name: "team", Scope: "tenant", Window: "day", LimitUSD: usd(t, "1")}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keyA := &KeyLimits{ID: "0123456789ab", Window: Day, Budget: Limit{Pico: 300}, RateLimit: Limit{Requests: 10}}
	keyB := &KeyLimits{ID: "ba9876543210", Window: Day, Budget: Limit{Pico: 300}}
	req := func(k *KeyLimits) Request {
		return Request{Tenant: "t", Model: "m", WorstPico: 100, WorstTokens: 10, Key: k}
	}

	res, err := e.Reserve(ctx, req(keyA))
	if err != nil || len(res.Charges) != 3 {
		t.Fatalf("reserve: %v, %+v; want the tenant rule, the key's budget and its rate limit", err, res.Charges)
	}
	keys := map[string]bool{}
	for _, c := range res.Charges {
		keys[c.Key] = true
		if c.Budget != "team" && c.ClientKey != keyA.ID {
			t.Errorf("charge %+v does not name the key", c)
		}
	}
	if len(keys) != 3 {
		t.Fatalf("counters %v, want three distinct", keys)
	}
	// Settled at 50: the key's budget now holds 50, room for two more of 100.
	if err := e.Settle(ctx, res, 50, 5); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.Reserve(ctx, req(keyA)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.Reserve(ctx, req(keyA))
	var ex *Exceeded
	if !errors.As(err, &ex) || ex.ClientKey != keyA.ID || ex.RateLimit || !ex.ResetAt.Equal(time.Date(2026, 5, 18, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("the key's fourth request: %v (%+v), want its day budget exceeded", err, ex)
	}
	// Another key of the same tenant has counters of its own.
	if _, err := e.Reserve(ctx, req(keyB)); err != nil {
		t.Fatalf("key B: %v", err)
	}
	// The tenant's rule counted every key: 50 + 2×100 + 100 held.
	for _, c := range res.Charges {
		if c.Budget == "team" {
			if got, _ := mem.Spent(ctx, c.Key); got != 350 {
				t.Errorf("tenant spent %d, want 350", got)
			}
		}
	}
	// A worst case larger than the key's limit never reaches the store.
	big := req(keyB)
	big.WorstPico = 301
	if _, err := e.Reserve(ctx, big); !errors.As(err, &ex) || ex.ClientKey != keyB.ID {
		t.Fatalf("a request over the key's whole budget: %v", err)
	}
	// No rule and no key: no reservation.
	if res, err := e.Reserve(ctx, Request{Tenant: "other-engine"}); err != nil || res.ID == "" {
		// the tenant rule applies to every tenant, so a reservation is made
		t.Fatalf("tenant rule: %v %+v", err, res)
	}
	bare, _ := NewEngine(Options{Store: mem})
	if res, err := bare.Reserve(ctx, Request{Tenant: "t", WorstPico: 1}); err != nil || res.ID != "" {
		t.Fatalf("no rules, no key: %v %+v", err, res)
	}
	if res, err := bare.Reserve(ctx, Request{Tenant: "t", WorstPico: 1, Key: &KeyLimits{ID: "0123456789ab"}}); err != nil || res.ID != "" {
		t.Fatalf("a key without limits: %v %+v", err, res)
	}
}
