package identity

import (
	"fmt"
	"slices"

	"github.com/llmproc/llmproc/filter/money"
)

// A key's own access and limits, like a LiteLLM or Portkey "virtual key":
// they live in its record (file or Redis), written by `llmproc keys create`.
// Every list narrows its tenant's (identity.tenants[]): a key never gets
// more than its tenant, and its budget and rate limit are charged in
// addition to the tenant's budgets and rate limits.

// ClientAPIs are the client API names a tenant's or a key's apis take:
// chat (/v1/chat/completions), responses, embeddings, completions,
// messages (Anthropic) and gemini.
var ClientAPIs = []string{"chat", "responses", "embeddings", "completions", "messages", "gemini"}

// Windows are the calendar windows (UTC) a key's budget may use.
var Windows = []string{"minute", "hour", "day", "month"}

// DefaultBudgetWindow is a key budget's window when its record names none.
const DefaultBudgetWindow = "month"

// Budget caps a key's spend and tokens in a calendar window (UTC), as a
// budgets[] entry of scope tenant does for a tenant.
type Budget struct {
	// Window is minute, hour, day or month (default month).
	Window string `json:"window,omitempty"`
	// LimitUSD caps the spend in the window ("5", "0.25"), exactly.
	LimitUSD string `json:"limit_usd,omitempty"`
	// LimitTokens caps input+output tokens in the window.
	LimitTokens int64 `json:"limit_tokens,omitempty"`

	pico int64 // LimitUSD parsed, set when the record is indexed
}

// RateLimit caps a key's tokens and requests per minute, as a rate_limits[]
// entry does for a tenant.
type RateLimit struct {
	TPM int64 `json:"tpm,omitempty"`
	RPM int64 `json:"rpm,omitempty"`
}

// WindowName is the budget's window with its default.
func (b *Budget) WindowName() string {
	if b.Window == "" {
		return DefaultBudgetWindow
	}
	return b.Window
}

// LimitPico is LimitUSD in pico-dollars (0 for none); set only on the keys
// a lookup returns.
func (b *Budget) LimitPico() int64 { return b.pico }

// checkLimits validates a record's access lists and limits, naming the
// field (keys[i].budget.limit_usd: …), and parses the budget's amount into
// k (a copy the index owns).
func checkLimits(p string, k *Key) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: "+format, append([]any{p, field}, args...)...))
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"models", k.Models}, {"tools", k.Tools}} {
		for j, v := range l.list {
			if v == "" {
				bad(fmt.Sprintf("%s[%d]", l.field, j), "is empty")
			}
		}
	}
	for j, a := range k.APIs {
		if !slices.Contains(ClientAPIs, a) {
			bad(fmt.Sprintf("apis[%d]", j), "unknown client API %q: want one of %v", a, ClientAPIs)
		}
	}
	if k.MaxRequestBytes < 0 {
		bad("max_request_bytes", "must not be negative")
	}
	if b := k.Budget; b != nil {
		c := *b
		if !slices.Contains(Windows, c.WindowName()) {
			bad("budget.window", "want one of %v, got %q", Windows, c.Window)
		}
		if c.LimitUSD != "" {
			pico, err := money.ParseUSD(c.LimitUSD)
			if err != nil {
				bad("budget.limit_usd", "%v", err)
			}
			c.pico = pico
		}
		if c.LimitTokens < 0 {
			bad("budget.limit_tokens", "must not be negative")
		}
		if c.LimitUSD == "" && c.LimitTokens == 0 {
			bad("budget", "needs limit_usd or limit_tokens")
		}
		k.Budget = &c
	}
	if rl := k.RateLimit; rl != nil {
		if rl.TPM < 0 {
			bad("rate_limit.tpm", "must not be negative")
		}
		if rl.RPM < 0 {
			bad("rate_limit.rpm", "must not be negative")
		}
		if rl.TPM == 0 && rl.RPM == 0 {
			bad("rate_limit", "needs tpm or rpm")
		}
	}
	return errs
}

// MaxBytes is the smaller of limit and the key's max_request_bytes (k may
// be nil), and whether the key's is the one that binds.
func (k *Key) MaxBytes(limit int64) (int64, bool) {
	if k == nil || k.MaxRequestBytes <= 0 || k.MaxRequestBytes >= limit {
		return limit, false
	}
	return k.MaxRequestBytes, true
}
