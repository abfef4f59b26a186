package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/llmproc/llmproc/filter/money"
)

// Budget caps spend or tokens in a calendar window (UTC), for everyone, per
// tenant or per tenant and model.
type Budget struct {
	Name string `yaml:"name"`
	// Scope is global, tenant or tenant_model.
	Scope string `yaml:"scope"`
	// Window is minute, hour, day or month, aligned to the UTC calendar.
	Window string `yaml:"window"`
	// LimitUSD caps the spend in the window; unset means no USD limit.
	LimitUSD USD `yaml:"limit_usd"`
	// LimitTokens caps input+output tokens in the window; 0 means no limit.
	LimitTokens int64 `yaml:"limit_tokens"`
	// Models, when set, limits the budget to requests for these model names.
	Models []string `yaml:"models"`
	// MaxRequestUSD, when set, caps the worst case reserved for one request.
	MaxRequestUSD USD `yaml:"max_request_usd"`
}

// RateLimit caps tokens and requests per minute for each tenant.
type RateLimit struct {
	Name string `yaml:"name"`
	// Tenants, when set, limits the rule to these tenants; otherwise every
	// tenant gets its own counters.
	Tenants []string `yaml:"tenants"`
	// TPM caps input+output tokens per minute; 0 means no token limit.
	TPM int64 `yaml:"tpm"`
	// RPM caps requests per minute; 0 means no request limit.
	RPM int64 `yaml:"rpm"`
}

// BudgetStore says where budget and rate-limit counters live.
type BudgetStore struct {
	// Redis, when set, shares the counters between replicas; otherwise each
	// replica counts in memory.
	Redis *BudgetRedis `yaml:"redis"`
	// OnError is what a request gets when the store fails: "open" (default)
	// lets it through, "closed" refuses it.
	OnError string `yaml:"on_error"`
	// TenantHeader names the request header holding the tenant; empty means
	// cache.tenant_header.
	TenantHeader string `yaml:"tenant_header"`
}

// BudgetRedis is the shared budget store.
type BudgetRedis struct {
	Addr     string     `yaml:"addr"`
	Password Credential `yaml:"password"`
	// Timeout bounds each Redis call (default 50ms).
	Timeout Duration `yaml:"timeout"`
}

// USD is a non-negative dollar amount parsed without floating point. Its
// exact value is Pico pico-dollars (1e-12 USD).
type USD struct {
	Text string
	Pico int64
	Set  bool
}

// UnmarshalYAML reads the scalar's literal text, so 0.1 stays exactly 0.1.
func (u *USD) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "want a USD amount like \"25.50\", got %s", describe(n))
	}
	v, err := ParseUSD(n.Value)
	if err != nil {
		return nodeError(n, "%v", err)
	}
	*u = v
	return nil
}

// MarshalYAML writes the original text.
func (u USD) MarshalYAML() (any, error) { return u.Text, nil }

// ParseUSD parses an amount such as "25.50" into pico-dollars.
func ParseUSD(s string) (USD, error) {
	pico, err := money.ParseUSD(s)
	if err != nil {
		return USD{}, err
	}
	return USD{Text: strings.TrimSpace(s), Pico: pico, Set: true}, nil
}

// validateBudgets checks budgets, rate_limits and budget_store.
func (v *validator) validateBudgets(c *Config) {
	names := map[string]bool{}
	for i, b := range c.Budgets {
		p := fmt.Sprintf("budgets[%d]", i)
		v.name(p+".name", b.Name, names, "budget")
		v.oneOf(p+".scope", b.Scope, "global", "tenant", "tenant_model")
		v.oneOf(p+".window", b.Window, "minute", "hour", "day", "month")
		if b.LimitTokens < 0 {
			v.add(p+".limit_tokens", "must not be negative")
		}
		if !b.LimitUSD.Set && b.LimitTokens == 0 {
			v.add(p, "needs limit_usd or limit_tokens")
		}
		if b.MaxRequestUSD.Set && b.MaxRequestUSD.Pico == 0 {
			v.add(p+".max_request_usd", "must be positive")
		}
		for j, m := range b.Models {
			if m == "" || slices.Index(b.Models, m) != j {
				v.add(fmt.Sprintf("%s.models[%d]", p, j), "empty or repeated model %q", m)
			}
		}
	}
	rl := map[string]bool{}
	for i, r := range c.RateLimits {
		p := fmt.Sprintf("rate_limits[%d]", i)
		v.name(p+".name", r.Name, rl, "rate limit")
		if r.TPM < 0 {
			v.add(p+".tpm", "must not be negative")
		}
		if r.RPM < 0 {
			v.add(p+".rpm", "must not be negative")
		}
		if r.TPM == 0 && r.RPM == 0 {
			v.add(p, "needs tpm or rpm")
		}
		for j, t := range r.Tenants {
			if t == "" {
				v.add(fmt.Sprintf("%s.tenants[%d]", p, j), "is empty")
			}
		}
	}
	s := c.BudgetStore
	if s.OnError != "" {
		v.oneOf("budget_store.on_error", s.OnError, "open", "closed")
	}
	if s.TenantHeader != "" && !validHeaderName(s.TenantHeader) {
		v.add("budget_store.tenant_header", "invalid header name %q", s.TenantHeader)
	}
	if r := s.Redis; r != nil {
		v.addr("budget_store.redis.addr", r.Addr)
		if r.Password.Env != "" && r.Password.File != "" {
			v.add("budget_store.redis.password", "set env or file, not both")
		}
		if r.Timeout.Duration < 0 {
			v.add("budget_store.redis.timeout", "must not be negative")
		}
	}
}
