package status

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Table is one section of the page. The server renders the tables into
// the HTML and the page's script renders them again from /status.json, so
// both draw the same thing from one description.
type Table struct {
	ID    string   `json:"id"`
	Title string   `json:"title"`
	Note  string   `json:"note,omitempty"`
	Head  []string `json:"head"`
	Rows  [][]Cell `json:"rows"`
	Empty string   `json:"empty,omitempty"` // shown instead of rows when there are none
}

// Cell is one table cell: its text and, for a figure, its key and raw
// value (data-key, data-value in the page, which a test reads back), and
// for a budget its bar (the share of the limit spent, 0..1 or more).
type Cell struct {
	Text  string   `json:"t"`
	Key   string   `json:"k,omitempty"`
	Value *float64 `json:"v,omitempty"`
	Bar   *float64 `json:"bar,omitempty"`
}

func text(s string) Cell { return Cell{Text: s} }

func fig(key string, v float64, shown string) Cell {
	return Cell{Text: shown, Key: key, Value: &v}
}

func money(key string, v float64) Cell { return fig(key, v, USD(v)) }

func count(key string, v float64) Cell { return fig(key, v, Number(v)) }

// USD formats a dollar amount: cents from one dollar up, micro-dollars below.
func USD(v float64) string {
	switch {
	case v == 0:
		return "$0"
	case math.Abs(v) >= 1:
		return "$" + strconv.FormatFloat(v, 'f', 2, 64)
	}
	return "$" + strconv.FormatFloat(v, 'f', 6, 64)
}

// Number formats a count: whole numbers as such, others with 4 digits.
func Number(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func percent(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }

func or(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func when(t *time.Time, now time.Time) string {
	if t == nil {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z") + " (" + ago(now.Sub(*t)) + ")"
}

func ago(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	return d.String() + " ago"
}

// tables lays the snapshot out.
func (s *Snapshot) tables() []Table {
	var out []Table
	for _, w := range s.Spend {
		title := "Spend today (UTC " + w.Start + ")"
		if w.Window == "month" {
			title = "Spend this month (UTC, from " + w.Start + ")"
		}
		t := Table{ID: "spend-" + w.Window, Title: title,
			Note: "This replica only, counted since " + w.Since + ". Each replica exports its own llmproc_spend_usd: " +
				"sum it in Prometheus for the fleet (sum by (model) (llmproc_spend_usd{window=\"" + w.Window + "\"})). " +
				"The budget bars below are every replica's when the budget store is Redis.",
			Head: []string{"By", "Name", "USD"}}
		k := "spend." + w.Window
		t.Rows = append(t.Rows, []Cell{text("total"), text("all requests"), money(k+".total", w.TotalUSD)})
		for _, g := range []struct {
			by, none string
			list     []Amount
		}{{"model", "(none)", w.ByModel}, {"tenant", "(no tenant)", w.ByTenant}, {"route", "(no rule)", w.ByRoute}} {
			for _, a := range g.list {
				t.Rows = append(t.Rows, []Cell{text(g.by), text(or(a.Name, g.none)), money(k+"."+g.by+"."+a.Name, a.USD)})
			}
		}
		out = append(out, t)
	}

	bt := Table{ID: "budgets", Title: "Budgets", Head: []string{"Budget", "Scope", "Window", "Spent", "Limit", "Used"},
		Empty: "No budgets configured."}
	hasTenants := false
	for _, b := range s.Budgets {
		if b.Shared {
			bt.Note = "Spent is read from the shared budget store (Redis): every replica's spend."
		} else {
			bt.Note = "Spent is read from this replica's budget store (no budget_store.redis): this replica's spend only."
		}
		hasTenants = hasTenants || b.Tenants != nil
		scope := b.Scope
		if len(b.Models) > 0 {
			scope += " (" + strings.Join(b.Models, ", ") + ")"
		}
		row := []Cell{text(b.Name), text(scope), text(b.Window)}
		tn := b.Tenants
		switch {
		case b.SpentUSD != nil:
			row = append(row, money("budget."+b.Name+".spent", *b.SpentUSD))
		case tn != nil:
			n := float64(len(tn.Top) + tn.More)
			who := " tenants"
			if b.Scope == "tenant_model" {
				who = " tenant and model pairs"
			}
			row = append(row, fig("budget."+b.Name+".counters", n, Number(n)+who+", each against the limit"))
		case b.Scope != "global" && b.LimitUSD == nil:
			row = append(row, text("per tenant; no USD limit, not listed"))
		case b.Scope != "global":
			row = append(row, text("per tenant, not listed"))
		default:
			row = append(row, text("—"))
		}
		if b.LimitUSD != nil {
			row = append(row, money("budget."+b.Name+".limit", *b.LimitUSD))
		} else {
			row = append(row, text("no USD limit"))
		}
		used := text("")
		if b.Share != nil {
			used = fig("budget."+b.Name+".share", *b.Share, percent(*b.Share))
			used.Bar = b.Share
		}
		bt.Rows = append(bt.Rows, append(row, used))
		if tn != nil {
			bt.Rows = append(bt.Rows, tenantRows(b)...)
		}
	}
	if hasTenants {
		bt.Note += " Tenant-scoped budgets list the " + Number(float64(s.top)) + " tenants that spent most in the current window (each tenant's spend against its own limit); the rest are counted on one line."
	}
	out = append(out, bt)

	be := Table{ID: "backends", Title: "Backends",
		Note:  "Attempts this replica sent (each replica counts its own). Rate and errors over the interval since an earlier poll; errors are 5xx answers and broken streams. Outlier is llmproc's view: Envoy ejects a backend after 3 failures in a row.",
		Head:  []string{"Pool", "Backend", "Attempts", "2xx", "4xx", "Errors", "Rate", "Errors (interval)", "Outlier"},
		Empty: "No attempts yet."}
	for _, b := range s.Backends {
		k := "backend." + b.Pool + "/" + b.Backend
		rate, share := text("—"), text("—")
		if b.RatePerSecond != nil {
			rate = fig(k+".rate", *b.RatePerSecond, strconv.FormatFloat(*b.RatePerSecond, 'f', 2, 64)+"/s over "+Number(b.Interval)+"s")
		}
		if b.ErrorShare != nil {
			share = fig(k+".error_share", *b.ErrorShare, percent(*b.ErrorShare))
		}
		outlier := b.Outlier
		if b.ConsecutiveFailures > 0 {
			outlier += " (" + Number(b.ConsecutiveFailures) + " in a row, last " + when(b.LastFailure, s.Now) + ")"
		}
		be.Rows = append(be.Rows, []Cell{text(b.Pool), text(b.Backend), count(k+".total", b.Total),
			count(k+".2xx", b.Classes["2xx"]), count(k+".4xx", b.Classes["4xx"]), count(k+".errors", b.Errors),
			rate, share, fig(k+".consecutive_failures", b.ConsecutiveFailures, outlier)})
	}
	out = append(out, be)

	ct := Table{ID: "cache", Title: "Response cache", Head: []string{"Figure", "Value"}, Empty: "The cache is off."}
	if c := s.Cache; c.Present {
		rate := text("—")
		if c.HitRate != nil {
			rate = fig("cache.hit_rate", *c.HitRate, percent(*c.HitRate))
		}
		ct.Rows = append(ct.Rows, []Cell{text("hit rate (hits / lookups)"), rate})
		for _, r := range c.TierRates {
			tier := strings.TrimPrefix(r.Name, "hit-")
			if r.Name == "hit" {
				tier = "exact"
			}
			ct.Rows = append(ct.Rows, []Cell{text("hit rate: " + tier + " tier"), fig("cache.hit_rate."+r.Name, r.Rate, percent(r.Rate))})
		}
		ct.Rows = append(ct.Rows, []Cell{text("lookups"), count("cache.lookups", c.Lookups)})
		for _, r := range c.Results {
			ct.Rows = append(ct.Rows, []Cell{text("requests: " + r.Name), count("cache.result."+r.Name, r.Count)})
		}
		ct.Rows = append(ct.Rows, []Cell{text("saved"), money("cache.saved", c.SavedUSD)})
		for _, a := range c.Saved {
			ct.Rows = append(ct.Rows, []Cell{text("saved: model " + a.Name), money("cache.saved."+a.Name, a.USD)})
		}
	}
	out = append(out, ct)

	rt := Table{ID: "routing", Title: "Routing decisions", Head: []string{"By", "Name", "Requests"}, Empty: "No requests routed yet."}
	for _, c := range s.Routing.ByClass {
		rt.Rows = append(rt.Rows, []Cell{text("class"), text(or(c.Name, "(not classified)")), count("routing.class."+c.Name, c.Count)})
	}
	for _, c := range s.Routing.ByRoute {
		rt.Rows = append(rt.Rows, []Cell{text("route"), text(or(c.Name, "(no rule)")), count("routing.route."+c.Name, c.Count)})
	}
	out = append(out, rt)

	ft := Table{ID: "feedback", Title: "Feedback by model", Head: []string{"Model", "Verdicts", "Mean score"},
		Empty: "No feedback recorded yet (POST /v1/feedback)."}
	if s.Feedback != nil {
		for _, m := range s.Feedback.ByModel {
			mean := text("—")
			if m.Mean != nil {
				mean = fig("feedback."+m.Model+".mean", *m.Mean, strconv.FormatFloat(*m.Mean, 'f', 2, 64))
			}
			ft.Rows = append(ft.Rows, []Cell{text(m.Model), count("feedback."+m.Model+".count", m.Count), mean})
		}
	}
	out = append(out, ft)

	started := s.Started
	cfg := Table{ID: "config", Title: "Config", Head: []string{"Figure", "Value"}, Rows: [][]Cell{
		{text("version"), {Text: or(s.Config.Version, "—"), Key: "config.version"}},
		{text("loaded"), text(when(s.Config.LoadedAt, s.Now))},
		{text("reloads"), count("config.reloads_ok", s.Config.Reloads)},
		{text("failed reloads"), count("config.reloads_failed", s.Config.Failed)},
		{text("process started"), text(when(&started, s.Now))},
		{text("page generated"), text(s.Now.UTC().Format("2006-01-02 15:04:05Z"))},
	}}
	if len(s.Errors) > 0 {
		cfg.Note = "Metrics could not all be read: " + strings.Join(s.Errors, "; ")
	}
	out = append(out, cfg)
	return out
}

// tenantRows are the rows under a tenant-scoped budget: its top tenants
// (or tenant and model pairs), each against the budget's limit, then the
// rest on one line.
func tenantRows(b Budget) [][]Cell {
	tn := b.Tenants
	var rows [][]Cell
	for _, ts := range tn.Top {
		name := "tenant " + or(ts.Tenant, "(no tenant)")
		k := "budget." + b.Name + ".tenant." + ts.Tenant
		if b.Scope == "tenant_model" {
			name += ", model " + ts.Model
			k += ".model." + ts.Model
		}
		limit := text("")
		if b.LimitUSD != nil {
			limit = text(USD(*b.LimitUSD))
		}
		used := text("")
		if ts.Share != nil {
			used = fig(k+".share", *ts.Share, percent(*ts.Share))
			used.Bar = ts.Share
		}
		rows = append(rows, []Cell{text("↳ " + name), text(""), text(""), money(k+".spent", ts.SpentUSD), limit, used})
	}
	if tn.More > 0 {
		rows = append(rows, []Cell{fig("budget."+b.Name+".more", float64(tn.More), "↳ "+Number(float64(tn.More))+" more, together"), text(""), text(""),
			money("budget."+b.Name+".more.spent", tn.MoreUSD), text(""), text("")})
	}
	if tn.Partial {
		rows = append(rows, []Cell{text("↳ the budget store could not be read to the end: these are the counters read"), text(""), text(""), text(""), text(""), text("")})
	}
	return rows
}
