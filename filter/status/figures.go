// Package status serves llmproc's status page on the HTTP (admin) port: GET /
// is a small server-rendered HTML page whose inline script polls GET
// /status.json. Every figure is read by metric name from the Prometheus
// registry at request time (so a metric another part adds, such as the
// feedback metrics, shows when it exists), plus the budgets the engine was
// built with and, for tenant-scoped budgets, the tenants' counters read
// from the budget store. It is read-only.
package status

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/llmproc/llmproc/filter/metrics"
)

// Snapshot is what /status.json returns: the figures, then the tables the
// page shows them in (figures.go builds the first, tables.go the second).
type Snapshot struct {
	Now     time.Time `json:"now"`
	Started time.Time `json:"started"`
	Config  Config    `json:"config"`
	// Spend is this replica's spend in the current UTC day and month.
	Spend    []Window  `json:"spend"`
	Budgets  []Budget  `json:"budgets"`
	Backends []Backend `json:"backends"`
	Cache    Cache     `json:"cache"`
	// Routing counts route decisions by task class and by route rule.
	Routing  Routing   `json:"routing"`
	Feedback *Feedback `json:"feedback"` // nil when no feedback metric exists
	Errors   []string  `json:"errors,omitempty"`
	Tables   []Table   `json:"tables"`
	metrics  map[string]*fam
	top      int // tenants listed per budget
}

// Config is the config serving now.
type Config struct {
	Version  string     `json:"version"`
	LoadedAt *time.Time `json:"loaded_at"`
	Reloads  float64    `json:"reloads_ok"`
	Failed   float64    `json:"reloads_failed"`
}

// Window is spend in one calendar window (day or month, UTC), from Since:
// the window's start or the process start, whichever is later.
type Window struct {
	Window   string   `json:"window"`
	Start    string   `json:"start"`
	Since    string   `json:"since"`
	TotalUSD float64  `json:"total_usd"`
	ByModel  []Amount `json:"by_model"`
	ByTenant []Amount `json:"by_tenant"`
	ByRoute  []Amount `json:"by_route"`
}

// Amount is a named USD figure.
type Amount struct {
	Name string  `json:"name"`
	USD  float64 `json:"usd"`
}

// Budget is one configured budget and, for a global one with a USD limit,
// its standing in the current window (from the budget store: shared by
// every replica when budget_store.redis is set).
type Budget struct {
	Name     string   `json:"name"`
	Scope    string   `json:"scope"`
	Window   string   `json:"window"`
	Models   []string `json:"models,omitempty"`
	LimitUSD *float64 `json:"limit_usd"`
	SpentUSD *float64 `json:"spent_usd"` // nil when no counter is readable for it
	Share    *float64 `json:"share"`     // spent / limit
	Shared   bool     `json:"shared"`
	// Tenants is, for a tenant-scoped budget, its counters that spent most
	// in the current window (each against the budget's limit, which is
	// every tenant's own), largest first; nil when the store lists none.
	Tenants *Tenants `json:"tenants,omitempty"`
}

// Tenants is a tenant-scoped budget's top counters and how many more there
// are.
type Tenants struct {
	Top []TenantSpend `json:"top"`
	// More counters are not listed; MoreUSD is their spend together.
	More    int     `json:"more"`
	MoreUSD float64 `json:"more_usd"`
	// Partial: the store could not be read to the end (a timeout, Redis
	// down); the figures are those read.
	Partial bool `json:"partial"`
}

// TenantSpend is one tenant's (for scope tenant_model, one tenant and
// model's) spend in a tenant-scoped budget's window.
type TenantSpend struct {
	Tenant   string   `json:"tenant"`
	Model    string   `json:"model,omitempty"`
	SpentUSD float64  `json:"spent_usd"`
	Share    *float64 `json:"share"` // spent / the budget's limit
}

// TenantBudget is what Options.Tenants reports for one budget.
type TenantBudget struct {
	Budget string
	Tenants
}

// Backend is one pool member's attempts as this replica saw them.
type Backend struct {
	Pool    string             `json:"pool"`
	Backend string             `json:"backend"`
	Classes map[string]float64 `json:"classes"` // attempts by status class
	Total   float64            `json:"total"`
	// Errors are 5xx answers and broken streams (what outlier detection counts).
	Errors float64 `json:"errors"`
	// RatePerSecond and ErrorShare are over the last Interval seconds,
	// between this snapshot and an earlier one; nil until there is one.
	RatePerSecond *float64 `json:"rate_per_second"`
	ErrorShare    *float64 `json:"error_share"`
	Interval      float64  `json:"interval_seconds"`
	// ConsecutiveFailures and LastFailure come from llmproc's own view of
	// the attempts; Outlier is "ok", "failing" or "ejection likely".
	ConsecutiveFailures float64    `json:"consecutive_failures"`
	LastFailure         *time.Time `json:"last_failure"`
	Outlier             string     `json:"outlier"`
}

// Cache is the response cache's results and what hits saved.
type Cache struct {
	// Results are requests by result: hit (the exact tier),
	// hit-normalized, hit-semantic, miss, bypass.
	Results []Count  `json:"results"`
	Hits    float64  `json:"hits"`    // every tier's
	Lookups float64  `json:"lookups"` // hits and misses (bypasses are no lookup)
	HitRate *float64 `json:"hit_rate"`
	// TierRates are each tier's hits over all lookups (they add up to
	// HitRate).
	TierRates []Rate   `json:"tier_rates"`
	SavedUSD  float64  `json:"saved_usd"`
	Saved     []Amount `json:"saved"` // by model (the metric has no tier)
	Present   bool     `json:"present"`
}

// Rate is a named share.
type Rate struct {
	Name string  `json:"name"`
	Rate float64 `json:"rate"`
}

// Count is a named count.
type Count struct {
	Name  string  `json:"name"`
	Count float64 `json:"count"`
}

// Routing is route decisions by class and by route.
type Routing struct {
	ByClass []Count `json:"by_class"`
	ByRoute []Count `json:"by_route"`
}

// Feedback is quality feedback by model.
type Feedback struct {
	ByModel []ModelScore `json:"by_model"`
}

// ModelScore is one model's feedback: the count of verdicts and, from the
// score histogram, their mean.
type ModelScore struct {
	Model string   `json:"model"`
	Count float64  `json:"count"`
	Mean  *float64 `json:"mean_score"`
}

// fam is a gathered metric family.
type fam = dto.MetricFamily

func label(m *dto.Metric, name string) (string, bool) {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}

func lv(m *dto.Metric, name string) string { v, _ := label(m, name); return v }

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// series returns the family's metrics, none when it does not exist.
func (s *Snapshot) series(name string) []*dto.Metric {
	if f := s.metrics[name]; f != nil {
		return f.GetMetric()
	}
	return nil
}

// pico is a USD figure as whole pico-dollars: the metrics sum exact
// pico-dollars and export USD, so sums over series are done back in
// integers and stay exact.
func pico(usd float64) int64 { return int64(math.Round(usd * 1e12)) }

func usd(p int64) float64 { return float64(p) / 1e12 }

// sums adds value by key in pico-dollars and returns the amounts sorted
// by amount, largest first, then by name.
func sums(ms []*dto.Metric, key func(*dto.Metric) string) (out []Amount, total int64) {
	by := map[string]int64{}
	for _, m := range ms {
		p := pico(value(m))
		by[key(m)] += p
		total += p
	}
	for k, p := range by {
		out = append(out, Amount{Name: k, USD: usd(p)})
	}
	slices.SortFunc(out, func(a, b Amount) int {
		return cmp.Or(cmp.Compare(b.USD, a.USD), strings.Compare(a.Name, b.Name))
	})
	return out, total
}

func counts(ms []*dto.Metric, key func(*dto.Metric) string) []Count {
	by := map[string]float64{}
	for _, m := range ms {
		by[key(m)] += value(m)
	}
	out := make([]Count, 0, len(by))
	for k, n := range by {
		out = append(out, Count{Name: k, Count: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Name, b.Name))
	})
	return out
}

func (s *Snapshot) config() {
	for _, m := range s.series("llmproc_config_info") {
		if value(m) == 1 {
			s.Config.Version = lv(m, "version")
		}
	}
	for _, m := range s.series("llmproc_config_last_reload_success_timestamp_seconds") {
		if v := value(m); v > 0 {
			t := time.Unix(0, int64(v*1e9)).UTC().Truncate(time.Millisecond)
			s.Config.LoadedAt = &t
		}
	}
	for _, m := range s.series("llmproc_config_reloads_total") {
		switch lv(m, "result") {
		case "ok":
			s.Config.Reloads += value(m)
		case "error":
			s.Config.Failed += value(m)
		}
	}
}

func (s *Snapshot) spend() {
	now := s.Now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	all := s.series("llmproc_spend_usd")
	for _, w := range []struct {
		name  string
		start time.Time
	}{{"day", day}, {"month", month}} {
		var ms []*dto.Metric
		for _, m := range all {
			if lv(m, "window") == w.name {
				ms = append(ms, m)
			}
		}
		since := w.start
		if s.Started.After(since) {
			since = s.Started
		}
		win := Window{Window: w.name, Start: w.start.Format(time.DateOnly), Since: since.UTC().Format(time.RFC3339)}
		var total int64
		win.ByModel, total = sums(ms, func(m *dto.Metric) string { return lv(m, "model") })
		win.ByTenant, _ = sums(ms, func(m *dto.Metric) string { return lv(m, "tenant") })
		win.ByRoute, _ = sums(ms, func(m *dto.Metric) string { return lv(m, "route") })
		win.TotalUSD = usd(total)
		s.Spend = append(s.Spend, win)
	}
}

// BudgetDef is a budget as configured, for the budget bars.
type BudgetDef struct {
	Name, Scope, Window string
	Models              []string
	LimitUSD            *float64 // nil: no USD limit
}

func (s *Snapshot) budgets(defs []BudgetDef, shared bool, tenants []TenantBudget) {
	byName := map[string]Tenants{}
	for _, tb := range tenants {
		byName[tb.Budget] = tb.Tenants
	}
	spent, limit := map[string]float64{}, map[string]float64{}
	for _, m := range s.series("llmproc_budget_spent_usd") {
		spent[lv(m, "budget")] = value(m)
	}
	for _, m := range s.series("llmproc_budget_limit_usd") {
		limit[lv(m, "budget")] = value(m)
	}
	for _, d := range defs {
		b := Budget{Name: d.Name, Scope: d.Scope, Window: d.Window, Models: d.Models, LimitUSD: d.LimitUSD, Shared: shared}
		if t, ok := byName[d.Name]; ok && d.Scope != "global" {
			t.Top = slices.Clone(t.Top) // the listing is shared by snapshots
			for i := range t.Top {
				if l := d.LimitUSD; l != nil && *l > 0 {
					share := t.Top[i].SpentUSD / *l
					t.Top[i].Share = &share
				}
			}
			b.Tenants = &t
		}
		if v, ok := spent[d.Name]; ok {
			b.SpentUSD = &v
			if l, ok := limit[d.Name]; ok {
				b.LimitUSD = &l
				if l > 0 {
					share := v / l
					b.Share = &share
				}
			}
		}
		s.Budgets = append(s.Budgets, b)
	}
}

// Outlier detection as llmproc renders it for Envoy (envoy/cluster.go):
// ejected after this many 5xx in a row, for at least this long.
const (
	ejectAfter   = 3
	ejectionTime = 30 * time.Second
)

type backendKey struct{ pool, backend string }

// sample is the attempt counters of every backend at one time.
type sample struct {
	at     time.Time
	totals map[backendKey][2]float64 // attempts, errors
}

func (s *Snapshot) backends(earlier *sample) sample {
	by := map[backendKey]*Backend{}
	get := func(m *dto.Metric) *Backend {
		k := backendKey{lv(m, "pool"), lv(m, "backend")}
		b := by[k]
		if b == nil {
			b = &Backend{Pool: k.pool, Backend: k.backend, Classes: map[string]float64{}, Outlier: "ok"}
			by[k] = b
		}
		return b
	}
	for _, m := range s.series("llmproc_requests_total") {
		b, c, v := get(m), lv(m, "status_class"), value(m)
		b.Classes[c] += v
		b.Total += v
		if c == "5xx" || c == "cut" {
			b.Errors += v
		}
	}
	for _, m := range s.series("llmproc_backend_consecutive_failures") {
		get(m).ConsecutiveFailures = value(m)
	}
	for _, m := range s.series("llmproc_backend_last_failure_timestamp_seconds") {
		if v := value(m); v > 0 {
			t := time.Unix(0, int64(v*1e9)).UTC().Truncate(time.Millisecond)
			get(m).LastFailure = &t
		}
	}
	now := sample{at: s.Now, totals: map[backendKey][2]float64{}}
	for k, b := range by {
		now.totals[k] = [2]float64{b.Total, b.Errors}
		switch {
		case b.ConsecutiveFailures >= ejectAfter && b.LastFailure != nil && s.Now.Sub(*b.LastFailure) < ejectionTime:
			b.Outlier = "ejection likely"
		case b.ConsecutiveFailures > 0:
			b.Outlier = "failing"
		}
		if earlier != nil {
			if dt := s.Now.Sub(earlier.at).Seconds(); dt > 0 {
				was := earlier.totals[k]
				n, e := b.Total-was[0], b.Errors-was[1]
				rate := n / dt
				b.RatePerSecond, b.Interval = &rate, math.Round(dt*10)/10
				if n > 0 {
					share := e / n
					b.ErrorShare = &share
				}
			}
		}
		s.Backends = append(s.Backends, *b)
	}
	slices.SortFunc(s.Backends, func(a, b Backend) int {
		return cmp.Or(strings.Compare(a.Pool, b.Pool), strings.Compare(a.Backend, b.Backend))
	})
	return now
}

// cache reads the cache's results. The tiers are values of the result
// label of llmproc_cache_requests_total (hit is the exact tier,
// hit-normalized, hit-semantic), not a label of their own; saved USD is by
// pool and model only.
func (s *Snapshot) cache() {
	c := &s.Cache
	reqs := s.series("llmproc_cache_requests_total")
	c.Present = len(reqs) > 0
	c.Results = counts(reqs, func(m *dto.Metric) string { return lv(m, "result") })
	for _, r := range c.Results {
		switch {
		case strings.HasPrefix(r.Name, metrics.CacheHit):
			c.Hits += r.Count
			c.Lookups += r.Count
		case r.Name == metrics.CacheMiss:
			c.Lookups += r.Count
		}
	}
	if c.Lookups > 0 {
		rate := c.Hits / c.Lookups
		c.HitRate = &rate
		for _, r := range c.Results {
			if strings.HasPrefix(r.Name, metrics.CacheHit) {
				c.TierRates = append(c.TierRates, Rate{Name: r.Name, Rate: r.Count / c.Lookups})
			}
		}
	}
	var total int64
	c.Saved, total = sums(s.series("llmproc_cache_saved_usd_total"), func(m *dto.Metric) string { return lv(m, "model") })
	c.SavedUSD = usd(total)
}

func (s *Snapshot) routing() {
	ms := s.series("llmproc_route_decisions_total")
	s.Routing.ByClass = counts(ms, func(m *dto.Metric) string { return lv(m, "class") })
	s.Routing.ByRoute = counts(ms, func(m *dto.Metric) string { return lv(m, "route") })
}

func (s *Snapshot) feedback() {
	total, scores := s.metrics["llmproc_feedback_total"], s.metrics["llmproc_feedback_score"]
	if total == nil && scores == nil {
		return
	}
	by := map[string]*ModelScore{}
	get := func(model string) *ModelScore {
		if by[model] == nil {
			by[model] = &ModelScore{Model: model}
		}
		return by[model]
	}
	for _, m := range total.GetMetric() {
		get(lv(m, "model")).Count += value(m)
	}
	sum, n := map[string]float64{}, map[string]uint64{}
	for _, m := range scores.GetMetric() {
		if h := m.GetHistogram(); h != nil {
			model := lv(m, "model")
			get(model)
			sum[model] += h.GetSampleSum()
			n[model] += h.GetSampleCount()
		}
	}
	s.Feedback = &Feedback{}
	for model, ms := range by {
		if n[model] > 0 {
			mean := sum[model] / float64(n[model])
			ms.Mean = &mean
			if ms.Count == 0 {
				ms.Count = float64(n[model])
			}
		}
		s.Feedback.ByModel = append(s.Feedback.ByModel, *ms)
	}
	slices.SortFunc(s.Feedback.ByModel, func(a, b ModelScore) int { return strings.Compare(a.Model, b.Model) })
}
