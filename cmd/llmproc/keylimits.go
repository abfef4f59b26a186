package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/llmproc/llmproc/filter/identity"
)

// limitFlags are a key's own access lists and limits on `llmproc keys
// create`: each narrows its tenant's (identity.tenants[]), and the budget
// and rate limit are charged in addition to the tenant's. Names follow the
// config's: budgets[].limit_usd/limit_tokens/window, rate_limits[].tpm/rpm,
// identity.tenants[].apis/tools/max_request_bytes.
type limitFlags struct {
	apis, tools            string
	maxRequestBytes        int64
	budgetUSD, budgetWin   string
	budgetTokens, tpm, rpm int64
}

func (l *limitFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.apis, "apis", "", "comma-separated client APIs the key may call: "+strings.Join(identity.ClientAPIs, ", ")+" (default: its tenant's)")
	fs.StringVar(&l.tools, "tools", "", "comma-separated tool-name globs the key may offer a model (default: its tenant's)")
	fs.Int64Var(&l.maxRequestBytes, "max-request-bytes", 0, "the key's request body limit, below its tenant's (default: its tenant's)")
	fs.StringVar(&l.budgetUSD, "budget-usd", "", "the key's own USD budget per -budget-window, e.g. 5 or 0.25")
	fs.Int64Var(&l.budgetTokens, "budget-tokens", 0, "the key's own token budget (input+output) per -budget-window")
	fs.StringVar(&l.budgetWin, "budget-window", "", "the budget's UTC calendar window: minute, hour, day or month (default month)")
	fs.Int64Var(&l.tpm, "tpm", 0, "the key's own rate limit: tokens per minute")
	fs.Int64Var(&l.rpm, "rpm", 0, "the key's own rate limit: requests per minute")
}

// apply writes the flags into the key's record; the store validates it
// before anything is written.
func (l *limitFlags) apply(k *identity.Key) {
	if l.apis != "" {
		k.APIs = strings.Split(l.apis, ",")
	}
	if l.tools != "" {
		k.Tools = strings.Split(l.tools, ",")
	}
	k.MaxRequestBytes = l.maxRequestBytes
	if l.budgetUSD != "" || l.budgetTokens != 0 || l.budgetWin != "" {
		k.Budget = &identity.Budget{Window: l.budgetWin, LimitUSD: l.budgetUSD, LimitTokens: l.budgetTokens}
	}
	if l.tpm != 0 || l.rpm != 0 {
		k.RateLimit = &identity.RateLimit{TPM: l.tpm, RPM: l.rpm}
	}
}

// update applies the flags that were set (by name) to an existing record:
// a list flag set to ” removes the list, a budget or rate limit left with
// no limit is removed.
func (l *limitFlags) update(k *identity.Key, set map[string]bool) {
	if set["apis"] {
		k.APIs = splitList(l.apis)
	}
	if set["tools"] {
		k.Tools = splitList(l.tools)
	}
	if set["max-request-bytes"] {
		k.MaxRequestBytes = l.maxRequestBytes
	}
	if set["budget-usd"] || set["budget-tokens"] || set["budget-window"] {
		b := identity.Budget{}
		if k.Budget != nil {
			b = *k.Budget
		}
		if set["budget-usd"] {
			b.LimitUSD = l.budgetUSD
		}
		if set["budget-tokens"] {
			b.LimitTokens = l.budgetTokens
		}
		if set["budget-window"] {
			b.Window = l.budgetWin
		}
		k.Budget = &identity.Budget{Window: b.Window, LimitUSD: b.LimitUSD, LimitTokens: b.LimitTokens}
		if b.LimitUSD == "" && b.LimitTokens == 0 {
			k.Budget = nil
		}
	}
	if set["tpm"] || set["rpm"] {
		rl := identity.RateLimit{}
		if k.RateLimit != nil {
			rl = *k.RateLimit
		}
		if set["tpm"] {
			rl.TPM = l.tpm
		}
		if set["rpm"] {
			rl.RPM = l.rpm
		}
		k.RateLimit = &rl
		if rl == (identity.RateLimit{}) {
			k.RateLimit = nil
		}
	}
}

// splitList is a comma-separated flag's list; nil for "".
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// limitsSummary is the LIMITS column of `llmproc keys list`.
func limitsSummary(k identity.Key) string {
	var parts []string
	if b := k.Budget; b != nil {
		if b.LimitUSD != "" {
			parts = append(parts, fmt.Sprintf("$%s/%s", b.LimitUSD, b.WindowName()))
		}
		if b.LimitTokens != 0 {
			parts = append(parts, fmt.Sprintf("%d tokens/%s", b.LimitTokens, b.WindowName()))
		}
	}
	if rl := k.RateLimit; rl != nil {
		if rl.TPM != 0 {
			parts = append(parts, fmt.Sprintf("%d tpm", rl.TPM))
		}
		if rl.RPM != 0 {
			parts = append(parts, fmt.Sprintf("%d rpm", rl.RPM))
		}
	}
	if len(k.APIs) > 0 {
		parts = append(parts, "apis="+strings.Join(k.APIs, "+"))
	}
	if len(k.Tools) > 0 {
		parts = append(parts, "tools="+strings.Join(k.Tools, "+"))
	}
	if k.MaxRequestBytes > 0 {
		parts = append(parts, fmt.Sprintf("max %dB", k.MaxRequestBytes))
	}
	return strings.Join(parts, " ")
}
