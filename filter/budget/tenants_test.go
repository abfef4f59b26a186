package budget

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/filter/config"
)

// tenantBudgets: one budget of each scope, plus a tenant budget without a
// USD limit (not listed: there is no bar to draw).
func tenantBudgets(t *testing.T) []config.Budget {
	return []config.Budget{
		{Name: "all", Scope: "global", Window: "month", LimitUSD: usd(t, "100")},
		{Name: "team", Scope: "tenant", Window: "day", LimitUSD: usd(t, "1")},
		{Name: "pair", Scope: "tenant_model", Window: "month", LimitUSD: usd(t, "2")},
		{Name: "tokens", Scope: "tenant", Window: "day", LimitTokens: 1_000_000},
	}
}

// spendAs reserves and settles pico for tenant on model, at the engine's
// clock.
func spendAs(t *testing.T, e *Engine, tenant, model string, pico int64) {
	t.Helper()
	ctx := context.Background()
	res, err := e.Reserve(ctx, Request{Tenant: tenant, Model: model, WorstPico: 2 * pico, WorstTokens: 10})
	if err != nil {
		t.Fatalf("reserve %q: %v", tenant, err)
	}
	if err := e.Settle(ctx, res, pico, 5); err != nil {
		t.Fatalf("settle %q: %v", tenant, err)
	}
}

// tenantFigures checks TenantFigures against what two engines (two
// replicas on the same store, or one when the store is per replica) spent.
func tenantFigures(t *testing.T, a, b *Engine, yesterday *Engine) {
	ctx := context.Background()
	// Tenants whose names would confuse a key parser or a glob pattern,
	// the no-tenant "", and 30 more with distinct amounts.
	odd := []string{`a"b:1`, "*", "[x]?", "", `\`, "ü"}
	for i, tn := range odd {
		spendAs(t, a, tn, "m1", int64(1000+i))
	}
	for i := range 30 {
		e := a
		if i%2 == 1 {
			e = b
		}
		spendAs(t, e, fmt.Sprintf("t%02d", i), "m1", int64(10_000+i*100))
	}
	// t29 also spends on another model: one tenant counter, two pair counters.
	spendAs(t, b, "t29", "m2", 7)
	// A reservation still held counts its worst case.
	if _, err := a.Reserve(ctx, Request{Tenant: "held", Model: "m1", WorstPico: 50_000, WorstTokens: 1}); err != nil {
		t.Fatal(err)
	}
	// Yesterday's spend is in its own day window: not listed today.
	if yesterday != nil {
		spendAs(t, yesterday, "t00", "m1", 900_000)
		spendAs(t, yesterday, "old", "m1", 900_000)
	}

	figs := a.TenantFigures(ctx, 3)
	if len(figs) != 2 || figs[0].Budget != "team" || figs[1].Budget != "pair" {
		t.Fatalf("figures %+v: want team and pair (the global one and the token-only one are not listed)", figs)
	}
	team, pair := figs[0], figs[1]
	if team.Scope != Tenant || team.LimitPico != 1_000_000_000_000 || team.Partial {
		t.Errorf("team %+v", team)
	}
	want := []TenantSpend{{Tenant: "held", SpentPico: 50_000}, {Tenant: "t29", SpentPico: 12_907}, {Tenant: "t28", SpentPico: 12_800}}
	if fmt.Sprint(team.Top) != fmt.Sprint(want) {
		t.Errorf("team top %+v, want %+v", team.Top, want)
	}
	// 6 odd + 30 + held = 37 counters, 3 listed; the rest's spend summed.
	var rest int64
	for i := range 28 {
		rest += int64(10_000 + i*100)
	}
	for i := range odd {
		rest += int64(1000 + i)
	}
	if team.More != 34 || team.MorePico != rest {
		t.Errorf("team more %d / %d, want 34 / %d", team.More, team.MorePico, rest)
	}
	wantPair := []TenantSpend{{Tenant: "held", Model: "m1", SpentPico: 50_000}, {Tenant: "t29", Model: "m1", SpentPico: 12_900}, {Tenant: "t28", Model: "m1", SpentPico: 12_800}}
	if pair.Scope != TenantModel || fmt.Sprint(pair.Top) != fmt.Sprint(wantPair) || pair.More != 35 || pair.MorePico != rest+7 {
		t.Errorf("pair %+v, want top %+v and 35 more", pair, wantPair)
	}

	// Every counter, when asked for all: the odd names read back exactly.
	all := b.TenantFigures(ctx, 100)
	got := map[string]int64{}
	for _, ts := range all[0].Top {
		got[ts.Tenant] = ts.SpentPico
	}
	if len(got) != 37 || all[0].More != 0 || all[0].MorePico != 0 {
		t.Errorf("all tenants: %d listed, %d more", len(got), all[0].More)
	}
	for i, tn := range odd {
		if got[tn] != int64(1000+i) {
			t.Errorf("tenant %q: %d, want %d", tn, got[tn], 1000+i)
		}
	}
	if _, ok := got["old"]; ok {
		t.Error("yesterday's counter is listed today")
	}
	if none := a.TenantFigures(ctx, 0); len(none[0].Top) != 0 || none[0].More != 37 {
		t.Errorf("top 0: %+v", none[0])
	}
}

func TestTenantFiguresMemory(t *testing.T) {
	now := time.Now()
	m := NewMemory(func() time.Time { return now })
	e, err := NewEngine(Options{Budgets: tenantBudgets(t), Store: m, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	y, err := NewEngine(Options{Budgets: tenantBudgets(t)[1:2], Store: m, Now: func() time.Time { return now.AddDate(0, 0, -1) }})
	if err != nil {
		t.Fatal(err)
	}
	tenantFigures(t, e, e, y)
}

// TestTenantFiguresRedis: two replicas' engines on one Redis, which holds
// other keys too (a response cache, another store's counters): each lists
// both replicas' tenants and nothing else.
func TestTenantFiguresRedis(t *testing.T) {
	srv := redisserver.Start(t)
	store := func(prefix string) *Redis {
		r := NewRedis(RedisOptions{Addr: srv.Addr(), KeyPrefix: prefix, Timeout: 5 * time.Second})
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	engine := func(s Store, now func() time.Time, budgets []config.Budget) *Engine {
		e, err := NewEngine(Options{Budgets: budgets, Store: s, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	p := c.Pipeline()
	for i := range 5000 {
		p.Set(ctx, fmt.Sprintf("llmproc:cache:%d", i), "x", time.Hour)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// Another fleet's store, on a prefix our prefix matches as a glob
	// pattern (unless it is escaped).
	all := tenantBudgets(t)
	spendAs(t, engine(store("ox:"), time.Now, all), "intruder", "m1", 1)

	a, b := engine(store("o*:"), time.Now, all), engine(store("o*:"), time.Now, all)
	// Yesterday, in the day budget only (the month may have turned too).
	y := engine(store("o*:"), func() time.Time { return time.Now().AddDate(0, 0, -1) }, all[1:2])
	tenantFigures(t, a, b, y)

	// Redis down: the figures say they are partial rather than failing.
	srv.Kill()
	for _, f := range a.TenantFigures(ctx, 3) {
		if !f.Partial || len(f.Top) != 0 {
			t.Errorf("Redis down: %+v", f)
		}
	}
}
