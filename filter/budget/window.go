// Package budget enforces spend budgets and token/request rate limits by
// reserving each request's worst case before it is sent and settling to the
// actual amounts when it ends. Counters live in calendar windows (UTC) in a
// Store: Memory for one replica, Redis for many.
package budget

import (
	"fmt"
	"strconv"
	"time"
)

// Window is a calendar period in UTC that counters reset at.
type Window int

// The windows a budget may use.
const (
	Minute Window = iota
	Hour
	Day
	Month
)

// ParseWindow reads minute, hour, day or month.
func ParseWindow(s string) (Window, error) {
	switch s {
	case "minute":
		return Minute, nil
	case "hour":
		return Hour, nil
	case "day":
		return Day, nil
	case "month":
		return Month, nil
	}
	return 0, fmt.Errorf("unknown window %q", s)
}

// Bounds returns the UTC window holding t: its start and its end (exclusive).
func (w Window) Bounds(t time.Time) (start, end time.Time) {
	t = t.UTC()
	switch w {
	case Minute:
		start = t.Truncate(time.Minute)
		return start, start.Add(time.Minute)
	case Hour:
		start = t.Truncate(time.Hour)
		return start, start.Add(time.Hour)
	case Day:
		start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1)
	default:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
}

// Scope says whose spend a budget counts together.
type Scope int

// The scopes a budget may have.
const (
	Global Scope = iota
	Tenant
	TenantModel
)

// ParseScope reads global, tenant or tenant_model.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "global":
		return Global, nil
	case "tenant":
		return Tenant, nil
	case "tenant_model":
		return TenantModel, nil
	}
	return 0, fmt.Errorf("unknown scope %q", s)
}

// key names one counter: the rule (kind "b" budget or "r" rate limit), the
// scope's tenant and model where they apply, and the window start in Unix
// seconds. Tenant and model are quoted so no value can forge another's key.
func key(kind, name string, s Scope, tenant, model string, start time.Time) string {
	b := make([]byte, 0, 48+len(name)+len(tenant)+len(model))
	b = append(b, kind...)
	b = append(b, ':')
	b = append(b, name...)
	if s >= Tenant {
		b = append(b, ':')
		b = strconv.AppendQuote(b, tenant)
	}
	if s == TenantModel {
		b = append(b, ':')
		b = strconv.AppendQuote(b, model)
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, start.Unix(), 10)
	return string(b)
}

// keyCharges adds the charges of a client key's own budget and rate limit
// to a reservation's. Their counters are named by the key's id ("k:"), so
// no rule's can collide with them, and by the window, so a key whose
// record changes window starts afresh.
func keyCharges(k *KeyLimits, r Request, now time.Time, charges []Charge, limits []Limit) ([]Charge, []Limit, error) {
	for _, l := range []struct {
		rateLimit bool
		window    Window
		limit     Limit
	}{{false, k.Window, k.Budget}, {true, Minute, k.RateLimit}} {
		if l.limit == (Limit{}) {
			continue
		}
		start, end := l.window.Bounds(now)
		_, keep := l.window.Bounds(end)
		kind := "b"
		if l.rateLimit {
			kind = "r"
		}
		b := make([]byte, 0, 48+len(k.ID))
		b = append(b, "k:"...)
		b = strconv.AppendQuote(b, k.ID)
		b = append(b, ':')
		b = append(b, kind...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(l.window), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, start.Unix(), 10)
		c := Charge{
			Budget: "key " + k.ID, RateLimit: l.rateLimit, ClientKey: k.ID, ResetAt: end, KeepUntil: keep,
			Key: string(b), Pico: max(r.WorstPico, 0), Tokens: max(r.WorstTokens, 0), Requests: 1,
		}
		if !fits(Charge{}, c, l.limit) {
			return nil, nil, exceeded(c)
		}
		charges = append(charges, c)
		limits = append(limits, l.limit)
	}
	return charges, limits, nil
}
