package budget

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/filter/config"
)

func usd(t testing.TB, s string) config.USD {
	u, err := config.ParseUSD(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// fakeStore records what the engine asks of it.
type fakeStore struct {
	charges []Charge
	limits  []Limit
	settled []Charge
	err     error
	release string
	id      string
}

func (f *fakeStore) Reserve(_ context.Context, id string, c []Charge, l []Limit, _ time.Duration) error {
	f.charges, f.limits, f.id = c, l, id
	return f.err
}

func (f *fakeStore) Hold(context.Context, string, int, time.Duration) error  { return nil }
func (f *fakeStore) Await(context.Context, string, int, time.Duration) error { return nil }

func (f *fakeStore) Settle(_ context.Context, _ string, a []Charge) error {
	f.settled = a
	return nil
}

func (f *fakeStore) Release(_ context.Context, id string) error {
	f.release = id
	return nil
}

func TestEngineCharges(t *testing.T) {
	now := time.Date(2026, 5, 17, 10, 20, 30, 0, time.UTC)
	budgets := []config.Budget{
		{Name: "all", Scope: "global", Window: "month", LimitUSD: usd(t, "100")},
		{Name: "team", Scope: "tenant", Window: "day", LimitUSD: usd(t, "5"), LimitTokens: 1000, MaxRequestUSD: usd(t, "0.000001")},
		{Name: "big", Scope: "tenant_model", Window: "hour", LimitTokens: 50, Models: []string{"gpt-big"}},
	}
	limits := []config.RateLimit{
		{Name: "default", TPM: 100, RPM: 2},
		{Name: "vip", Tenants: []string{"vip"}, RPM: 100},
	}
	tests := []struct {
		tenant, model string
		want          []Charge
	}{
		{"acme", "gpt-small", []Charge{
			{Budget: "all", Key: "b:all:1777593600", ResetAt: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), KeepUntil: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), Pico: 3_000_000, Tokens: 40, Requests: 1},
			{Budget: "team", Key: `b:team:"acme":1778976000`, ResetAt: time.Date(2026, 5, 18, 0, 0, 0, 0, time.UTC), KeepUntil: time.Date(2026, 5, 19, 0, 0, 0, 0, time.UTC), Pico: 1_000_000, Tokens: 40, Requests: 1},
			{Budget: "default", RateLimit: true, Key: `r:default:"acme":1779013200`, ResetAt: time.Date(2026, 5, 17, 10, 21, 0, 0, time.UTC), KeepUntil: time.Date(2026, 5, 17, 10, 22, 0, 0, time.UTC), Pico: 3_000_000, Tokens: 40, Requests: 1},
		}},
		{"vip", "gpt-big", []Charge{
			{Budget: "all", Key: "b:all:1777593600", ResetAt: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), KeepUntil: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), Pico: 3_000_000, Tokens: 40, Requests: 1},
			{Budget: "team", Key: `b:team:"vip":1778976000`, ResetAt: time.Date(2026, 5, 18, 0, 0, 0, 0, time.UTC), KeepUntil: time.Date(2026, 5, 19, 0, 0, 0, 0, time.UTC), Pico: 1_000_000, Tokens: 40, Requests: 1},
			{Budget: "big", Key: `b:big:"vip":"gpt-big":1779012000`, ResetAt: time.Date(2026, 5, 17, 11, 0, 0, 0, time.UTC), KeepUntil: time.Date(2026, 5, 17, 12, 0, 0, 0, time.UTC), Pico: 3_000_000, Tokens: 40, Requests: 1},
			{Budget: "default", RateLimit: true, Key: `r:default:"vip":1779013200`, ResetAt: time.Date(2026, 5, 17, 10, 21, 0, 0, time.UTC), KeepUntil: time.Date(2026, 5, 17, 10, 22, 0, 0, time.UTC), Pico: 3_000_000, Tokens: 40, Requests: 1},
			{Budget: "vip", RateLimit: true, Key: `r:vip:"vip":1779013200`, ResetAt: time.Date(2026, 5, 17, 10, 21, 0, 0, time.UTC), KeepUntil: time.Date(2026, 5, 17, 10, 22, 0, 0, time.UTC), Pico: 3_000_000, Tokens: 40, Requests: 1},
		}},
	}
	wantLimits := map[string]Limit{
		"all": {Pico: 100_000_000_000_000}, "team": {Pico: 5_000_000_000_000, Tokens: 1000},
		"big": {Tokens: 50}, "default": {Tokens: 100, Requests: 2}, "vip": {Requests: 100},
	}
	for _, tt := range tests {
		f := &fakeStore{}
		e, err := NewEngine(Options{Budgets: budgets, RateLimits: limits, Store: f, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Reserve(context.Background(), Request{Tenant: tt.tenant, Model: tt.model, WorstPico: 3_000_000, WorstTokens: 40})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.charges) != len(tt.want) {
			t.Fatalf("%s/%s: charges %+v\nwant %+v", tt.tenant, tt.model, f.charges, tt.want)
		}
		for i := range tt.want {
			if g, w := f.charges[i], tt.want[i]; g != w {
				t.Errorf("%s/%s: charge %d = %+v\nwant %+v", tt.tenant, tt.model, i, g, w)
			}
			if g, w := f.limits[i], wantLimits[f.charges[i].Budget]; g != w {
				t.Errorf("%s/%s: limit %d = %+v, want %+v", tt.tenant, tt.model, i, g, w)
			}
		}
		if err := e.Settle(context.Background(), res, 7, 9); err != nil {
			t.Fatal(err)
		}
		for i, c := range f.settled {
			want := tt.want[i]
			want.Pico, want.Tokens = 7, 9
			if c != want {
				t.Errorf("settled %d = %+v, want %+v", i, c, want)
			}
		}
		if err := e.Release(context.Background(), res); err != nil || f.release != f.id || len(f.id) != 32 {
			t.Errorf("Release: %v, store saw %q", err, f.release)
		}
	}
}

func TestEngineNoRuleApplies(t *testing.T) {
	f := &fakeStore{err: errors.New("must not be called")}
	e, err := NewEngine(Options{Budgets: []config.Budget{{Name: "b", Scope: "global", Window: "day", LimitTokens: 1, Models: []string{"x"}}}, Store: f})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Reserve(context.Background(), Request{Model: "y", WorstTokens: 100})
	if err != nil || res.ID != "" {
		t.Fatalf("Reserve = %+v, %v", res, err)
	}
	if err := e.Settle(context.Background(), res, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.Release(context.Background(), res); err != nil || f.release != "" {
		t.Fatalf("Release = %v, store saw %q", err, f.release)
	}
}

func TestEngineBadConfig(t *testing.T) {
	if _, err := NewEngine(Options{Budgets: []config.Budget{{Name: "b", Scope: "team", Window: "day"}}, Store: NewMemory(nil)}); err == nil {
		t.Error("unknown scope accepted")
	}
	if _, err := NewEngine(Options{Budgets: []config.Budget{{Name: "b", Scope: "global", Window: "week"}}, Store: NewMemory(nil)}); err == nil {
		t.Error("unknown window accepted")
	}
}

// TestEngineExceeded: the engine's *Exceeded names the rule, says whether it
// is a rate limit and when it resets.
func TestEngineExceeded(t *testing.T) {
	now := time.Date(2026, 5, 17, 10, 20, 30, 0, time.UTC)
	e, err := NewEngine(Options{
		Budgets:    []config.Budget{{Name: "day", Scope: "tenant", Window: "day", LimitUSD: usd(t, "0.000001")}},
		RateLimits: []config.RateLimit{{Name: "rpm", RPM: 1}},
		Store:      NewMemory(func() time.Time { return now }), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.Reserve(ctx, Request{Tenant: "a", WorstPico: 1}); err != nil {
		t.Fatal(err)
	}
	var ex *Exceeded
	if _, err := e.Reserve(ctx, Request{Tenant: "a", WorstPico: 1}); !errors.As(err, &ex) || ex.Budget != "rpm" || !ex.RateLimit ||
		!ex.ResetAt.Equal(time.Date(2026, 5, 17, 10, 21, 0, 0, time.UTC)) {
		t.Fatalf("second request in the minute: %v", err)
	}
	now = now.Add(time.Minute)
	if _, err := e.Reserve(ctx, Request{Tenant: "a", WorstPico: 1_000_000}); !errors.As(err, &ex) || ex.Budget != "day" || ex.RateLimit ||
		!ex.ResetAt.Equal(time.Date(2026, 5, 18, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("over the day budget: %v", err)
	}
	if _, err := e.Reserve(ctx, Request{Tenant: "b", WorstPico: 1_000_000}); err != nil {
		t.Fatalf("another tenant: %v", err)
	}
}

func benchEngine(b *testing.B, s Store) {
	e, err := NewEngine(Options{
		Budgets: []config.Budget{
			{Name: "all", Scope: "global", Window: "month", LimitUSD: usd(b, "1000000")},
			{Name: "team", Scope: "tenant_model", Window: "day", LimitUSD: usd(b, "1000000")},
		},
		RateLimits: []config.RateLimit{{Name: "rl", TPM: 1 << 60, RPM: 1 << 60}}, Store: s})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	r := Request{Tenant: "acme", Model: "gpt-4o-mini", WorstPico: 2_500_000_000, WorstTokens: 5000}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := e.Reserve(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Settle(ctx, res, 1_000_000_000, 1200); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEngineMemory(b *testing.B) { benchEngine(b, NewMemory(nil)) }

func BenchmarkEngineRedis(b *testing.B) {
	srv := redisserver.Start(b)
	r := NewRedis(RedisOptions{Addr: srv.Addr(), Timeout: time.Second})
	defer r.Close()
	benchEngine(b, r)
}
