package config

import (
	"strings"
	"testing"
)

func TestParseUSD(t *testing.T) {
	tests := []struct {
		in   string
		pico int64
		ok   bool
	}{
		{"25.50", 25_500_000_000_000, true},
		{"0.000000000001", 1, true},
		{"1", 1_000_000_000_000, true},
		{".5", 500_000_000_000, true},
		{"1000000", 1_000_000 * 1_000_000_000_000, true},
		{"0.0000000000001", 0, false},
		{"1000001", 0, false},
		{"-1", 0, false},
		{"1e3", 0, false},
		{"", 0, false},
		{".", 0, false},
	}
	for _, tt := range tests {
		u, err := ParseUSD(tt.in)
		if (err == nil) != tt.ok || u.Pico != tt.pico {
			t.Errorf("ParseUSD(%q) = %d, %v; want %d, ok=%v", tt.in, u.Pico, err, tt.pico, tt.ok)
		}
	}
}

const budgetBase = `
backends: [{name: b, schema: openai, url: "https://api.openai.com"}]
pools: [{name: p, backends: [{backend: b}]}]
models: [{name: m, pool: p}]
`

func TestBudgetsParse(t *testing.T) {
	cfg, err := Parse([]byte(budgetBase + `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
budgets:
  - {name: team-day, scope: tenant, window: day, limit_usd: "25.10", max_request_usd: "0.5", models: [m]}
  - {name: all, scope: global, window: month, limit_tokens: 1000000}
rate_limits:
  - {name: default, tpm: 10000, rpm: 60}
budget_store: {on_error: closed, tenant_header: x-tenant, redis: {addr: "127.0.0.1:6379", timeout: 20ms}}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Budgets[0]
	if b.LimitUSD.Pico != 25_100_000_000_000 || b.MaxRequestUSD.Pico != 500_000_000_000 || b.Models[0] != "m" {
		t.Errorf("budget[0] = %+v", b)
	}
	if cfg.Budgets[1].LimitTokens != 1_000_000 || cfg.RateLimits[0].TPM != 10000 || cfg.RateLimits[0].RPM != 60 {
		t.Errorf("budgets = %+v, rate_limits = %+v", cfg.Budgets, cfg.RateLimits)
	}
	if s := cfg.BudgetStore; s.OnError != "closed" || s.TenantHeader != "x-tenant" || s.Redis.Timeout.Milliseconds() != 20 {
		t.Errorf("budget_store = %+v", s)
	}
}

func TestBudgetsInvalid(t *testing.T) {
	tests := []struct {
		yaml string
		want []string
	}{
		{`budgets: [{name: a, scope: team, window: week, limit_usd: "1"}]`,
			[]string{`budgets[0].scope: unknown value "team"`, `budgets[0].window: unknown value "week"`}},
		{`budgets: [{name: a, scope: global, window: day}]`,
			[]string{"budgets[0]: needs limit_usd or limit_tokens"}},
		{`budgets: [{name: a, scope: global, window: day, limit_tokens: -1, max_request_usd: "0"}, {name: a, scope: global, window: day, limit_usd: "1", models: [x, x]}]`,
			[]string{"budgets[0].limit_tokens: must not be negative", "budgets[0].max_request_usd: must be positive",
				`budgets[1].name: duplicate budget name "a"`, `budgets[1].models[1]: empty or repeated model "x"`}},
		{`rate_limits: [{name: r}, {name: s, tpm: -1, rpm: 1, tenants: [""]}]`,
			[]string{"rate_limits[0]: needs tpm or rpm", "rate_limits[1].tpm: must not be negative", "rate_limits[1].tenants[0]: is empty"}},
		{`budget_store: {on_error: maybe, tenant_header: "a b", redis: {addr: nowhere}}`,
			[]string{`budget_store.on_error: unknown value "maybe"`, `budget_store.tenant_header: invalid header name "a b"`, `budget_store.redis.addr: want host:port`}},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(budgetBase + tt.yaml))
		if err == nil {
			t.Errorf("%s: no error", tt.yaml)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n got %v\nwant it to contain %q", tt.yaml, err, w)
			}
		}
	}
	if _, err := Parse([]byte(budgetBase + `budgets: [{name: a, scope: global, window: day, limit_usd: "1.0000000000001"}]`)); err == nil || !strings.Contains(err.Error(), "decimal places") {
		t.Errorf("13 decimal places: %v", err)
	}
}
