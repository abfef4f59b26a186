package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmproc/llmproc/filter/metrics"
)

func completion(pool, backend, model, tenant, route string, status int, pico int64) metrics.Completion {
	outcome := metrics.OutcomeOK
	if status >= 400 {
		outcome = metrics.OutcomeError
	}
	return metrics.Completion{Pool: pool, Backend: backend, Provider: "openai", RequestModel: model, ResponseModel: model,
		Tenant: tenant, Route: route, Status: status, Outcome: outcome, CostPico: pico, UsageKnown: pico > 0}
}

func ptr(v float64) *float64 { return &v }

// drive records a mix of attempts, cache results, decisions and budgets on
// a fresh registry with llmproc's collectors.
func drive(t *testing.T) (*prometheus.Registry, *metrics.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.ConfigLoaded("0123456789ab")
	for _, c := range []metrics.Completion{
		completion("cheap", "primary", "gpt-4o-mini", "team-a", "auto", 200, 210_000_000),
		completion("cheap", "primary", "gpt-4o-mini", "team-b", "by-model", 200, 105_000_000),
		completion("cheap", "primary", "gpt-4o-mini", "team-a", "auto", 200, 1),
		completion("flagship", "secondary", "gpt-4o", "", "", 200, 1_500_000_000_000),
		completion("cheap", "secondary", "gpt-4o-mini", "team-a", "auto", 503, 0),
		completion("cheap", "secondary", "gpt-4o-mini", "team-a", "auto", 503, 0),
		completion("cheap", "secondary", "gpt-4o-mini", "team-a", "auto", 503, 0),
		completion("cheap", "primary", "gpt-4o-mini", "team-a", "auto", 429, 0),
	} {
		m.Record(c)
	}
	for _, r := range []string{metrics.CacheHit, metrics.CacheHit, metrics.CacheMiss, metrics.CacheBypass} {
		m.CacheResult(r)
	}
	m.CacheSaved("cheap", "gpt-4o-mini", 210_000_000)
	m.RouterDecision("auto", "cheap", "code")
	m.RouterDecision("auto", "cheap", "code")
	m.RouterDecision("by-model", "cheap", "")
	m.BudgetFigures(func() []metrics.BudgetFigure {
		return []metrics.BudgetFigure{{Budget: "daily", SpentPico: 315_000_001, LimitPico: 500_000_000}}
	})
	return reg, m
}

func TestSnapshotFigures(t *testing.T) {
	reg, _ := drive(t)
	now := time.Now()
	p := New(Options{Gatherer: reg, Started: now.Add(-time.Minute), Now: func() time.Time { return now },
		Budgets: []BudgetDef{
			{Name: "daily", Scope: "global", Window: "day", LimitUSD: ptr(0.0005)},
			{Name: "per-team", Scope: "tenant", Window: "month", LimitUSD: ptr(10)},
		}})
	s := p.Snapshot()

	if s.Config.Version != "0123456789ab" || s.Config.LoadedAt == nil {
		t.Errorf("config %+v", s.Config)
	}
	// Spend: exact sums of the pico-dollars recorded, the same today and
	// this month, by model, tenant and route.
	if len(s.Spend) != 2 {
		t.Fatalf("spend windows %+v", s.Spend)
	}
	for _, w := range s.Spend {
		want := map[string][]Amount{
			"model":  {{"gpt-4o", 1.5}, {"gpt-4o-mini", 315_000_001 / 1e12}},
			"tenant": {{"", 1.5}, {"team-a", 210_000_001 / 1e12}, {"team-b", 105_000_000 / 1e12}},
			"route":  {{"", 1.5}, {"auto", 210_000_001 / 1e12}, {"by-model", 105_000_000 / 1e12}},
		}
		for by, got := range map[string][]Amount{"model": w.ByModel, "tenant": w.ByTenant, "route": w.ByRoute} {
			if !equalAmounts(got, want[by]) {
				t.Errorf("%s spend by %s = %v, want %v", w.Window, by, got, want[by])
			}
		}
		if w.TotalUSD != 1_500_315_000_001/1e12 {
			t.Errorf("%s total %v", w.Window, w.TotalUSD)
		}
	}
	// The month's spend equals llmproc_cost_usd_total, since the process
	// started this month.
	if got, want := s.Spend[1].TotalUSD, sumMetric(t, reg, "llmproc_cost_usd_total", nil); got != want {
		t.Errorf("month spend %v, llmproc_cost_usd_total %v", got, want)
	}

	if len(s.Budgets) != 2 {
		t.Fatalf("budgets %+v", s.Budgets)
	}
	if b := s.Budgets[0]; b.SpentUSD == nil || *b.SpentUSD != 315_000_001/1e12 || *b.LimitUSD != 0.0005 || *b.Share != *b.SpentUSD / *b.LimitUSD {
		t.Errorf("daily budget %+v", b)
	}
	if b := s.Budgets[1]; b.SpentUSD != nil || b.Share != nil || *b.LimitUSD != 10 {
		t.Errorf("tenant budget %+v", b)
	}

	backends := map[string]Backend{}
	for _, b := range s.Backends {
		backends[b.Pool+"/"+b.Backend] = b
	}
	if b := backends["cheap/primary"]; b.Total != 4 || b.Classes["2xx"] != 3 || b.Classes["4xx"] != 1 || b.Errors != 0 || b.Outlier != "ok" || b.RatePerSecond != nil {
		t.Errorf("cheap/primary %+v", b)
	}
	if b := backends["cheap/secondary"]; b.Total != 3 || b.Errors != 3 || b.ConsecutiveFailures != 3 || b.Outlier != "ejection likely" || b.LastFailure == nil {
		t.Errorf("cheap/secondary %+v", b)
	}

	c := s.Cache
	if c.Hits != 2 || c.Lookups != 3 || c.HitRate == nil || *c.HitRate != 2.0/3 || c.SavedUSD != 210_000_000/1e12 ||
		!equalAmounts(c.Saved, []Amount{{"gpt-4o-mini", 210_000_000 / 1e12}}) {
		t.Errorf("cache %+v", c)
	}
	if got := c.Results; len(got) != 3 || got[0] != (Count{"hit", 2}) {
		t.Errorf("cache results %v", got)
	}
	if got := s.Routing.ByClass; len(got) != 2 || got[0] != (Count{"code", 2}) || got[1] != (Count{"", 1}) {
		t.Errorf("by class %v", got)
	}
	if s.Feedback != nil {
		t.Errorf("feedback without its metrics: %+v", s.Feedback)
	}
}

// TestRates: request rate and error share come from the counters between
// two snapshots.
func TestRates(t *testing.T) {
	reg, m := drive(t)
	now := time.Now()
	p := New(Options{Gatherer: reg, Started: now, Now: func() time.Time { return now }})
	p.Snapshot()
	for range 4 {
		m.Record(completion("cheap", "secondary", "gpt-4o-mini", "team-a", "auto", 200, 1))
	}
	m.Record(completion("cheap", "secondary", "gpt-4o-mini", "team-a", "auto", 502, 0))
	now = now.Add(10 * time.Second)
	for _, b := range p.Snapshot().Backends {
		if b.Backend != "secondary" || b.Pool != "cheap" {
			continue
		}
		if b.RatePerSecond == nil || *b.RatePerSecond != 0.5 || b.ErrorShare == nil || *b.ErrorShare != 0.2 || b.Interval != 10 {
			t.Errorf("rate %v share %v interval %v", b.RatePerSecond, b.ErrorShare, b.Interval)
		}
		if b.ConsecutiveFailures != 1 || b.Outlier != "failing" {
			t.Errorf("a 2xx ends the run: %+v", b)
		}
	}
}

// TestMetricsFromOtherParts: the page reads the feedback metrics, and the
// cache's tiers from the result label of the cache metric as
// filter/metrics exports it (hit is the exact tier, hit-normalized,
// hit-semantic): a registry with llmproc's own collectors, not a copy of
// what their labels might be.
func TestMetricsFromOtherParts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Feedback("gpt-4o", "b", "r", "code", 5)
	m.Feedback("gpt-4o", "b", "r", "code", 5)
	m.Feedback("gpt-4o", "b", "r2", "", 1)
	for r, n := range map[string]int{metrics.CacheHit: 3, "hit-normalized": 2, "hit-semantic": 1, metrics.CacheMiss: 4, metrics.CacheBypass: 5} {
		for range n {
			m.CacheResult(r)
		}
	}
	m.CacheSaved("cheap", "m", 250_000_000_000)
	m.CacheSaved("cheap", "n", 500_000_000_000)

	s := New(Options{Gatherer: reg}).Snapshot()
	if s.Feedback == nil || len(s.Feedback.ByModel) != 1 {
		t.Fatalf("feedback %+v", s.Feedback)
	}
	if f := s.Feedback.ByModel[0]; f.Model != "gpt-4o" || f.Count != 3 || f.Mean == nil || *f.Mean != 11.0/3 {
		t.Errorf("feedback %+v", f)
	}
	c := s.Cache
	if c.Hits != 6 || c.Lookups != 10 || *c.HitRate != 0.6 || c.SavedUSD != 0.75 ||
		!equalAmounts(c.Saved, []Amount{{"n", 0.5}, {"m", 0.25}}) {
		t.Errorf("cache %+v", c)
	}
	want := []Count{{"bypass", 5}, {"miss", 4}, {"hit", 3}, {"hit-normalized", 2}, {"hit-semantic", 1}}
	if fmt.Sprint(c.Results) != fmt.Sprint(want) {
		t.Errorf("results %v, want %v", c.Results, want)
	}
	wantRates := []Rate{{"hit", 0.3}, {"hit-normalized", 0.2}, {"hit-semantic", 0.1}}
	if fmt.Sprint(c.TierRates) != fmt.Sprint(wantRates) {
		t.Errorf("tier hit rates %v, want %v", c.TierRates, wantRates)
	}
	shown := map[string]float64{}
	for _, tb := range s.Tables {
		for _, r := range tb.Rows {
			for _, cl := range r {
				if cl.Value != nil {
					shown[cl.Key] = *cl.Value
				}
			}
		}
	}
	for k, v := range map[string]float64{"cache.result.hit-normalized": 2, "cache.result.hit-semantic": 1, "cache.hit_rate.hit-semantic": 0.1, "cache.hit_rate": 0.6} {
		if shown[k] != v {
			t.Errorf("%s shown %v, want %v", k, shown[k], v)
		}
	}
}

var cellRE = regexp.MustCompile(`data-key="([^"]*)" data-value="([^"]*)"`)

// TestHTML: the page is read-only, escapes what it shows, carries the
// figures of /status.json and allows only its own script and style.
func TestHTML(t *testing.T) {
	reg, m := drive(t)
	m.RouterDecision(`<script>alert(1)</script>`, "cheap", "")
	mux := http.NewServeMux()
	New(Options{Gatherer: reg, Started: time.Now(), Budgets: []BudgetDef{{Name: "daily", Scope: "global", Window: "day"}}}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(method, path string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("GET", "/")
	if resp.StatusCode != 200 || resp.Header.Get("content-type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("content-type"))
	}
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("a route name is not escaped")
	}
	csp := resp.Header.Get("content-security-policy")
	nonce := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)
	if nonce == nil || !strings.Contains(body, `<script nonce="`+nonce[1]+`">`) || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q does not allow exactly the page's script", csp)
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("the page refers to another origin")
	}

	_, js := get("GET", "/status.json")
	var s Snapshot
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, tb := range s.Tables {
		for _, r := range tb.Rows {
			for _, c := range r {
				if c.Value != nil {
					want[c.Key] = raw(c.Value)
				}
			}
		}
	}
	got := map[string]string{}
	for _, m := range cellRE.FindAllStringSubmatch(body, -1) {
		got[m[1]] = m[2]
	}
	for _, k := range []string{"spend.day.model.gpt-4o-mini", "spend.month.route.auto", "budget.daily.spent", "backend.cheap/secondary.errors", "cache.hit_rate", "routing.class.code"} {
		if got[k] == "" || got[k] != want[k] {
			t.Errorf("%s: page %q, json %q", k, got[k], want[k])
		}
	}

	for _, tc := range []struct {
		method, path string
		code         int
	}{{"POST", "/", 405}, {"DELETE", "/status.json", 405}, {"GET", "/other", 404}} {
		if resp, _ := get(tc.method, tc.path); resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
	}
}

func equalAmounts(a, b []Amount) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sumMetric(t *testing.T, g prometheus.Gatherer, name string, match map[string]string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for k, v := range match {
				if lv(m, k) != v {
					continue next
				}
			}
			total += pico(value(m))
		}
	}
	return usd(total)
}

// TestTenantBudgets: a tenant-scoped budget lists its top tenants from the
// budget store, each against the budget's limit with its bar, then the rest
// on one line; a partial listing says so. The store is read at most once
// per tenantsEvery, however many viewers poll.
func TestTenantBudgets(t *testing.T) {
	reg, _ := drive(t)
	now := time.Now()
	calls := 0
	var tops []int
	listing := []TenantBudget{
		{Budget: "per-team", Tenants: Tenants{Top: []TenantSpend{{Tenant: "team-a", SpentUSD: 2.5}, {Tenant: "", SpentUSD: 1}}, More: 3, MoreUSD: 0.75}},
		{Budget: "pairs", Tenants: Tenants{Top: []TenantSpend{{Tenant: "team-b", Model: "gpt-4o", SpentUSD: 0.5}}, Partial: true}},
		{Budget: "daily", Tenants: Tenants{Top: []TenantSpend{{Tenant: "x", SpentUSD: 9}}}}, // global: ignored
	}
	p := New(Options{Gatherer: reg, Started: now, Now: func() time.Time { return now }, TopTenants: 2,
		Budgets: []BudgetDef{
			{Name: "daily", Scope: "global", Window: "day", LimitUSD: ptr(0.0005)},
			{Name: "per-team", Scope: "tenant", Window: "month", LimitUSD: ptr(10)},
			{Name: "pairs", Scope: "tenant_model", Window: "day", LimitUSD: ptr(2)},
			{Name: "unlisted", Scope: "tenant", Window: "day", LimitUSD: ptr(1)},
		},
		Tenants: func(ctx context.Context, top int) []TenantBudget {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("the listing has no deadline")
			}
			calls++
			tops = append(tops, top)
			return listing
		}})
	s := p.Snapshot()
	if b := s.Budgets[0]; b.Tenants != nil {
		t.Errorf("a global budget lists tenants: %+v", b.Tenants)
	}
	if b := s.Budgets[3]; b.Tenants != nil {
		t.Errorf("a budget the store did not list: %+v", b.Tenants)
	}
	tn := s.Budgets[1].Tenants
	if tn == nil || len(tn.Top) != 2 || tn.More != 3 || tn.MoreUSD != 0.75 || *tn.Top[0].Share != 0.25 || *tn.Top[1].Share != 0.1 {
		t.Fatalf("per-team %+v", tn)
	}
	if listing[0].Top[0].Share != nil {
		t.Error("the shared listing was written to")
	}
	cells := map[string]Cell{}
	var texts []string
	for _, tb := range s.Tables {
		if tb.ID != "budgets" {
			continue
		}
		if !strings.Contains(tb.Note, "list the 2 tenants that spent most") || !strings.Contains(tb.Note, "this replica's spend only") {
			t.Errorf("note %q", tb.Note)
		}
		for _, r := range tb.Rows {
			texts = append(texts, r[0].Text)
			for _, c := range r {
				if c.Key != "" {
					cells[c.Key] = c
				}
			}
		}
	}
	for k, v := range map[string]float64{
		"budget.per-team.counters": 5, "budget.per-team.tenant.team-a.spent": 2.5, "budget.per-team.tenant.team-a.share": 0.25,
		"budget.per-team.tenant..spent": 1, "budget.per-team.more": 3, "budget.per-team.more.spent": 0.75,
		"budget.pairs.counters": 1, "budget.pairs.tenant.team-b.model.gpt-4o.spent": 0.5, "budget.pairs.tenant.team-b.model.gpt-4o.share": 0.25,
	} {
		if c, ok := cells[k]; !ok || c.Value == nil || *c.Value != v {
			t.Errorf("%s = %+v, want %v", k, c, v)
		}
	}
	if c := cells["budget.per-team.tenant.team-a.share"]; c.Bar == nil || *c.Bar != 0.25 {
		t.Errorf("no bar for team-a: %+v", c)
	}
	got := strings.Join(texts, "|")
	for _, w := range []string{"↳ tenant team-a", "↳ tenant (no tenant)", "↳ 3 more, together", "↳ tenant team-b, model gpt-4o", "could not be read to the end"} {
		if !strings.Contains(got, w) {
			t.Errorf("rows %q lack %q", got, w)
		}
	}
	if _, ok := cells["budget.unlisted.counters"]; ok {
		t.Error("unlisted budget has a count")
	}

	// Concurrent viewers within tenantsEvery share one listing; later, the
	// store is read again.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); p.Snapshot() }()
	}
	wg.Wait()
	if calls != 1 {
		t.Errorf("%d listings within %v, want 1", calls, tenantsEvery)
	}
	now = now.Add(tenantsEvery)
	p.Snapshot()
	if calls != 2 || tops[0] != 2 || tops[1] != 2 {
		t.Errorf("%d listings after %v (top %v), want 2 of top 2", calls, tenantsEvery, tops)
	}
}
