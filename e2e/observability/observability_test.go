// Package observability tests the Prometheus alert rules in examples/alerts
// and the Grafana dashboard in examples/dashboards: promtool checks and runs
// the rules' unit tests and parses every dashboard query, and every metric
// they read must be one llmproc exports (or announced, below), with labels it
// has. promtool comes from Debian's prometheus package (`make deps`).
package observability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/llmproc/llmproc/filter/metrics"
	"github.com/llmproc/llmproc/filter/usage"
)

const (
	alertsDir     = "../../examples/alerts"
	rulesFile     = "llmproc.rules.yml"
	rulesTestFile = "llmproc.rules.test.yml"
	dashboardFile = "../../examples/dashboards/llmproc.json"
)

// announced are metrics the rules and dashboard may read before llmproc
// exports them. Empty: everything they read is exported. An entry must be
// dropped once metrics.New registers it (the test fails).
var announced = map[string][]string{}

// envoyMetrics are Envoy's own series the rules may read, as its admin
// /stats/prometheus exports them: cluster.<name>.<stat> becomes
// envoy_cluster_<stat> with label envoy_cluster_name (Envoy's default tag
// extraction, source/common/config/well_known_names.cc).
var envoyMetrics = map[string][]string{
	"envoy_cluster_upstream_rq_retry_overflow": {"envoy_cluster_name"},
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"__name__", "job", "instance"}

// exported maps every series name llmproc exports (histograms as their
// _bucket, _sum and _count series) to its label names.
type exported map[string][]string

// recordAll feeds every kind of sample through m's API.
func recordAll(m *metrics.Metrics) {
	u := usage.Usage{Input: 100, Output: 10, CachedInput: 50, CacheWrite: 5, Reasoning: 3}
	m.Record(metrics.Completion{
		Pool: "p", Backend: "b", Provider: "openai", RequestModel: "m", ResponseModel: "m",
		Status: 200, Stream: true, Duration: time.Second, TTFT: time.Millisecond,
		Usage: u, UsageKnown: true, CostPico: 1, Outcome: metrics.OutcomeOK,
	})
	m.Record(metrics.Completion{
		Pool: "p", Backend: "b", Provider: "openai", RequestModel: "m", ResponseModel: "m",
		Status: 200, Stream: true, Duration: time.Second, Outcome: metrics.OutcomeCut,
	})
	m.EstimatedTokens("p", "b", "m", 100, 10)
	m.ObservePhase("router", "request_body", time.Microsecond)
	m.RouterDecision("r", "p", "chat")
	m.RouterReject("model_not_found")
	m.ConfigReload(true)
	m.ConfigReload(false)
	m.CredentialRefresh("b", true)
	m.Streams("upstream")
	m.CacheResult(metrics.CacheHit)
	m.CacheStore("local")
	m.CacheSkip("cut")
	m.CacheError("redis")
	m.CacheSaved("p", "m", 1)
	m.BudgetResult("reserved")
	m.BudgetFigures(func() []metrics.BudgetFigure {
		return []metrics.BudgetFigure{{Budget: "b", SpentPico: 1, LimitPico: 2}}
	})
	m.CacheStats(func() (int64, int64, int64) { return 1, 1, 1 })
}

// described is what a collector's Desc says about one metric family.
type described struct {
	labels []string
	// kind is "histogram" or "summary" for client_golang's histogram and
	// summary vectors, "" when the type is not known without a sample.
	kind string
}

// describing is a Registerer that remembers every metric family its
// collectors describe, so a family with no sample is still seen.
type describing struct {
	prometheus.Registerer
	families map[string]described
}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`(?:constLabels|variableLabels): \{([^}]*)\}`)
	constLabel = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)=`)
	constraint = regexp.MustCompile(`^c\((.*)\)$`)
)

// Register implements prometheus.Registerer.
func (d *describing) Register(c prometheus.Collector) error {
	kind := ""
	// The Histogram and Summary interfaces have the same methods, so only
	// the vectors tell their kind.
	switch c.(type) {
	case *prometheus.HistogramVec:
		kind = "histogram"
	case *prometheus.SummaryVec:
		kind = "summary"
	}
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for desc := range ch {
		s := desc.String()
		m := descName.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		var labels []string
		for _, block := range descLabels.FindAllStringSubmatch(s, -1) {
			for _, l := range strings.Split(block[1], ",") {
				if c := constLabel.FindStringSubmatch(l); c != nil {
					l = c[1]
				} else if c := constraint.FindStringSubmatch(l); c != nil {
					l = c[1]
				}
				if l != "" {
					labels = append(labels, l)
				}
			}
		}
		sort.Strings(labels)
		d.families[m[1]] = described{labels: labels, kind: kind}
	}
	return d.Registerer.Register(c)
}

// MustRegister implements prometheus.Registerer.
func (d *describing) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}

// add enters a family's series names and labels into e.
func (e exported) add(name, kind string, labels []string) {
	switch kind {
	case "histogram":
		e[name+"_bucket"] = append(slices.Clone(labels), "le")
		e[name+"_sum"] = labels
		e[name+"_count"] = labels
	case "summary":
		e[name] = append(slices.Clone(labels), "quantile")
		e[name+"_sum"] = labels
		e[name+"_count"] = labels
	default:
		e[name] = labels
	}
}

// exports gathers what metrics.New registers after one sample of
// everything. A family recordAll gives no sample (one added to metrics since)
// still counts, from its Desc; the test logs it, because a custom collector's
// type cannot be told without a sample.
func exports(t *testing.T) exported {
	t.Helper()
	reg := prometheus.NewRegistry()
	d := &describing{Registerer: reg, families: map[string]described{}}
	recordAll(metrics.New(d))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := exported{}
	for _, mf := range mfs {
		name := mf.GetName()
		delete(d.families, name)
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		out.add(name, strings.ToLower(mf.GetType().String()), sortedKeys(labels))
	}
	for name, f := range d.families {
		t.Logf("metrics.New registers %s but recordAll records no sample of it: taken from its Desc (kind %q); add a sample to recordAll", name, f.kind)
		out.add(name, f.kind, f.labels)
	}
	for name := range announced {
		if _, ok := out[name]; ok {
			t.Errorf("%s is exported now: drop it from announced", name)
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkExpr returns a problem for every metric expr reads that llmproc does
// not export (nor announce), every matcher on a label that metric lacks and
// every grouping label none of its metrics has.
func checkExpr(exp exported, expr string) []string {
	sels, grouping, err := selectors(expr)
	if err != nil {
		return []string{err.Error()}
	}
	if len(sels) == 0 {
		return []string{"reads no metric"}
	}
	var problems []string
	known := slices.Clone(targetLabels)
	for _, s := range sels {
		labels, ok := exp[s.name]
		if !ok {
			labels, ok = announced[s.name]
		}
		if !ok {
			labels, ok = envoyMetrics[s.name]
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not a metric llmproc exports", s.name))
			continue
		}
		known = append(known, labels...)
		for _, l := range s.labels {
			if !slices.Contains(labels, l) && !slices.Contains(targetLabels, l) {
				problems = append(problems, fmt.Sprintf("%s has no label %q (it has %v)", s.name, l, labels))
			}
		}
	}
	// A grouping label must be on at least one metric the expression reads
	// (or be a target label, or "pod" from Kubernetes service discovery).
	for _, l := range grouping {
		if !slices.Contains(known, l) && l != "pod" {
			problems = append(problems, fmt.Sprintf("groups by %q, a label none of its metrics has", l))
		}
	}
	return problems
}

// promtool returns the path of promtool or fails the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found on PATH (%v): run `make deps`, which installs Debian's prometheus package", err)
	}
	return p
}

// runPromtool runs promtool with args in dir and reports whether it
// succeeded; a failure is a test error with promtool's output.
func runPromtool(t *testing.T, dir string, args ...string) bool {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		return false
	}
	return true
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, alertsDir, "check", "rules", rulesFile)
}

func TestPromtoolTestRules(t *testing.T) {
	runPromtool(t, alertsDir, "test", "rules", rulesTestFile)
}

// ruleFile is the part of a Prometheus rule file the tests look at.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleTests is the part of a promtool test file the tests look at.
type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			Alertname string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestAlertRules(t *testing.T) {
	exp := exports(t)
	var rf ruleFile
	readYAML(t, filepath.Join(alertsDir, rulesFile), &rf)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			if r.Alert == "" {
				t.Errorf("group %s: rule %q is not an alert; the example has alerts only", g.Name, name)
				continue
			}
			if alerts[name] {
				t.Errorf("alert %s defined twice", name)
			}
			alerts[name] = true
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", name, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: needs a summary and a description", name)
			}
			for _, p := range checkExpr(exp, r.Expr) {
				t.Errorf("alert %s: %s", name, p)
			}
		}
	}
	for _, want := range []string{
		"LLMProcBudgetNearLimit", "LLMProcBudgetExhausted", "LLMProcRequestRateJump",
		"LLMProcBackendErrorRate", "LLMProcModelLatencyHigh", "LLMProcRedisCacheFailing",
	} {
		if !alerts[want] {
			t.Errorf("alert %s missing", want)
		}
	}

	// Every alert has a promtool case where it fires and one where it must
	// not.
	var rt ruleTests
	readYAML(t, filepath.Join(alertsDir, rulesTestFile), &rt)
	if !slices.Equal(rt.RuleFiles, []string{rulesFile}) {
		t.Errorf("%s tests rule_files %v, want [%s]", rulesTestFile, rt.RuleFiles, rulesFile)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range rt.Tests {
		for _, a := range tc.AlertRuleTest {
			if !alerts[a.Alertname] {
				t.Errorf("%s tests unknown alert %s", rulesTestFile, a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for name := range alerts {
		if !fires[name] {
			t.Errorf("alert %s: no test where it fires", name)
		}
		if !quiet[name] {
			t.Errorf("alert %s: no test where it stays quiet", name)
		}
	}
}

// dashboard is the part of a Grafana dashboard the tests look at.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    gridPos     `json:"gridPos"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type gridPos struct{ H, W, X, Y int }

// overlaps reports whether a and b share a cell.
func (a gridPos) overlaps(b gridPos) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dsVar is how every panel and query names the data source: the dashboard's
// datasource variable.
var dsVar = datasource{Type: "prometheus", UID: "${datasource}"}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// queries lists every panel query of d as "panel title/refId" → expr.
func (d dashboard) queries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	ids := map[int]bool{}
	var placed []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: gridPos %+v is off the 24-column grid", p.Title, g)
			}
			for _, q := range placed {
				if g.overlaps(q.GridPos) {
					t.Errorf("panels %q and %q overlap", p.Title, q.Title)
				}
			}
			placed = append(placed, p)
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Title == "" {
				t.Errorf("panel %d has no title", p.ID)
			}
			if p.Datasource == nil || *p.Datasource != dsVar {
				t.Errorf("panel %q: datasource %v, want %v", p.Title, p.Datasource, dsVar)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, q := range p.Targets {
				key := p.Title + "/" + q.RefID
				if _, dup := out[key]; dup || q.RefID == "" {
					t.Errorf("panel %q: refId %q empty or used twice", p.Title, q.RefID)
				}
				if q.Datasource != nil && *q.Datasource != dsVar {
					t.Errorf("%s: datasource %v, want %v", key, q.Datasource, dsVar)
				}
				if strings.TrimSpace(q.Expr) == "" {
					t.Errorf("%s: empty expr", key)
				}
				out[key] = q.Expr
			}
		}
	}
	walk(d.Panels)
	return out
}

// labelValues matches Grafana's label_values(metric selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

func TestDashboard(t *testing.T) {
	exp := exports(t)
	d := readDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard needs a title and a uid")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or later (datasource references by uid)", d.SchemaVersion)
	}

	hasDS := false
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			var q string
			if err := json.Unmarshal(v.Query, &q); err != nil || q != "prometheus" || v.Name != "datasource" {
				t.Errorf("datasource variable %q: query %s, want a variable named datasource for prometheus", v.Name, v.Query)
			}
			hasDS = true
		case "query":
			if v.Datasource == nil || *v.Datasource != dsVar {
				t.Errorf("variable %s: datasource %v, want %v", v.Name, v.Datasource, dsVar)
			}
			q := v.Definition
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err == nil && obj.Query != "" {
				q = obj.Query
			}
			m := labelValues.FindStringSubmatch(q)
			if m == nil {
				t.Errorf("variable %s: query %q, want label_values(metric, label)", v.Name, q)
				continue
			}
			for _, p := range checkExpr(exp, m[1]) {
				t.Errorf("variable %s: %s", v.Name, p)
			}
			for _, s := range mustSelectors(t, m[1]) {
				if labels := exp[s.name]; !slices.Contains(labels, m[2]) {
					t.Errorf("variable %s: %s has no label %q", v.Name, s.name, m[2])
				}
			}
		}
	}
	if !hasDS {
		t.Error("no Prometheus datasource variable")
	}

	read := map[string]bool{}
	for key, expr := range d.queries(t) {
		for _, p := range checkExpr(exp, expr) {
			t.Errorf("%s: %s\n\t%s", key, p, expr)
		}
		sels, _, _ := selectors(expr)
		for _, s := range sels {
			read[s.name] = true
		}
	}
	// The panels issue 6 asks for, by the metric each needs.
	for _, want := range []string{
		"llmproc_cost_usd_total",                           // cost by model and pool
		"llmproc_tokens_total",                             // tokens by type
		"llmproc_route_decisions_total",                    // request rate
		"gen_ai_server_request_duration_seconds_bucket",    // p50/p99 latency
		"gen_ai_server_time_to_first_token_seconds_bucket", // TTFT
		"llmproc_cache_requests_total",                     // cache hit ratio
		"llmproc_requests_total",                           // errors by backend
		"llmproc_budget_spent_usd",                         // budget burn
		"llmproc_budget_limit_usd",
	} {
		if !read[want] {
			t.Errorf("no panel reads %s", want)
		}
	}
}

func mustSelectors(t *testing.T, expr string) []selector {
	t.Helper()
	s, _, err := selectors(expr)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	return s
}

// grafanaVars replaces the variables Grafana fills in with values Prometheus
// would see, so promtool can parse the queries.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval", "1m",
	"$__range", "1h",
	"${pool}", ".*",
	"$pool", ".*",
)

// TestDashboardPromQL has promtool parse every dashboard query, as the
// expressions of recording rules in a scratch rule file.
func TestDashboardPromQL(t *testing.T) {
	d := readDashboard(t)
	qs := d.queries(t)
	keys := make([]string, 0, len(qs))
	for k := range qs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, k := range keys {
		expr := grafanaVars.Replace(qs[k])
		if strings.Contains(expr, "$") {
			t.Errorf("%s: a Grafana variable this test does not know: %s", k, qs[k])
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: expr})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.rules.yml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if !runPromtool(t, dir, "check", "rules", "dashboard.rules.yml") {
		for i, k := range keys {
			t.Logf("dashboard:query_%d is %s", i, k)
		}
	}
}

// TestDescribedMatchesGathered checks the Desc reading that exports falls
// back on: for every family with samples, its Desc gives the same labels and,
// where client_golang's collector type tells, the same kind.
func TestDescribedMatchesGathered(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := &describing{Registerer: reg, families: map[string]described{}}
	recordAll(metrics.New(d))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		f, ok := d.families[mf.GetName()]
		if !ok {
			t.Errorf("%s gathered but not described", mf.GetName())
			continue
		}
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		if got, want := f.labels, sortedKeys(labels); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: Desc labels %v, gathered %v", mf.GetName(), got, want)
		}
		typ := strings.ToLower(mf.GetType().String())
		if f.kind != "" && f.kind != typ {
			t.Errorf("%s: Desc kind %q, gathered %s", mf.GetName(), f.kind, typ)
		}
	}
}
