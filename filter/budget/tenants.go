package budget

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/llmproc/llmproc/filter/usage"
)

// TenantSpend is one counter of a tenant-scoped budget in its current
// window: the tenant's (and, for scope tenant_model, the model's) spend.
type TenantSpend struct {
	Tenant    string
	Model     string // scope tenant_model only
	SpentPico int64
}

// TenantFigure is a tenant-scoped budget's standing in its current window:
// the counters that spent most, largest first, and how many more there are.
type TenantFigure struct {
	Budget    string
	Scope     Scope
	LimitPico int64 // each tenant's own limit
	Top       []TenantSpend
	// More counters exist beyond Top; MorePico is their spend together.
	More     int
	MorePico int64
	// Partial is set when the store could not be read to the end (its
	// listing timed out or failed): the figures are the counters read.
	Partial bool
}

// counterLister is a store that can list the counters whose key starts
// with prefix and ends with suffix, after ending the reservations whose
// deadline has passed (as Spent does). Memory and Redis can.
type counterLister interface {
	Counters(ctx context.Context, prefix, suffix string, each func(key string, pico int64)) error
}

// TenantFigures reports, for each tenant-scoped budget with a USD limit,
// the spend of the top counters in its current window (at most top of
// them; 0 or less lists none, only the count) and how many more exist. With
// the Redis store the counters are every replica's. The store is walked
// once for all budgets (with Redis, one SCAN of its keyspace). The store
// must be able to list counters; otherwise TenantFigures is empty.
func (e *Engine) TenantFigures(ctx context.Context, top int) []TenantFigure {
	ls, ok := e.store.(counterLister)
	if !ok {
		return nil
	}
	now := e.now()
	type listed struct {
		prefix, suffix string
		scope          Scope
		all            []TenantSpend
	}
	var out []TenantFigure
	var rules []*listed
	byPrefix := map[string]*listed{} // budget names hold no ':', so "b:<name>:" is the budget's
	for _, ru := range e.rules {
		if ru.rateLimit || ru.scope == Global || ru.limit.Pico == 0 {
			continue
		}
		start, _ := ru.window.Bounds(now)
		l := &listed{prefix: "b:" + ru.name + ":", suffix: ":" + strconv.FormatInt(start.Unix(), 10), scope: ru.scope}
		rules = append(rules, l)
		byPrefix[l.prefix] = l
		out = append(out, TenantFigure{Budget: ru.name, Scope: ru.scope, LimitPico: ru.limit.Pico})
	}
	if len(rules) == 0 {
		return nil
	}
	err := ls.Counters(ctx, "b:", "", func(key string, pico int64) {
		i := strings.IndexByte(key[2:], ':')
		if i < 0 {
			return
		}
		l := byPrefix[key[:2+i+1]]
		if l == nil || len(key) < len(l.prefix)+len(l.suffix) || !strings.HasSuffix(key, l.suffix) {
			return
		}
		if ts, ok := parseTenantKey(key[len(l.prefix):len(key)-len(l.suffix)], l.scope); ok {
			ts.SpentPico = pico
			l.all = append(l.all, ts)
		}
	})
	for i, l := range rules {
		f := &out[i]
		f.Partial = err != nil
		all := l.all
		slices.SortFunc(all, func(a, b TenantSpend) int {
			return cmp.Or(cmp.Compare(b.SpentPico, a.SpentPico), strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Model, b.Model))
		})
		n := min(max(top, 0), len(all))
		f.Top = all[:n:n]
		f.More = len(all) - n
		for _, ts := range all[n:] {
			f.MorePico = usage.AddSat(f.MorePico, ts.SpentPico)
		}
	}
	return out
}

// parseTenantKey reads the middle of a counter key (key): `"tenant"` for
// scope tenant, `"tenant":"model"` for tenant_model. Anything else is not
// this budget's counter.
func parseTenantKey(mid string, s Scope) (TenantSpend, bool) {
	var ts TenantSpend
	q, err := strconv.QuotedPrefix(mid)
	if err != nil {
		return ts, false
	}
	if ts.Tenant, err = strconv.Unquote(q); err != nil {
		return ts, false
	}
	rest := mid[len(q):]
	if s == Tenant {
		return ts, rest == ""
	}
	if !strings.HasPrefix(rest, ":") {
		return ts, false
	}
	rest = rest[1:]
	if q, err = strconv.QuotedPrefix(rest); err != nil || len(q) != len(rest) {
		return ts, false
	}
	ts.Model, err = strconv.Unquote(q)
	return ts, err == nil
}
