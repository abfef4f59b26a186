package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/redisserver"
)

const statusConfig = `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
  - {name: secondary, schema: openai-compatible, url: "%s", credential: {env: SECONDARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60, cached_input: 0.075}}
  - {name: gpt-4o, pool: flagship, price: {input: 2.50, output: 10.00, cached_input: 1.25}}
pools:
  - {name: cheap, backends: [{backend: primary, model: gpt-4o-mini}, {backend: secondary, model: gpt-4o-mini}]}
  - {name: flagship, backends: [{backend: secondary, model: gpt-4o}]}
routes:
  - {name: auto, match: {model: auto}, pool: cheap}
cache: {mode: deterministic, tenant_header: x-tenant}
metrics: {tenants: [team-a, team-b]}
budget_store: {tenant_header: x-tenant}
budgets:
  - {name: daily, scope: global, window: day, limit_usd: "0.05"}
  - {name: monthly, scope: global, window: month, limit_usd: "1"}
  - {name: per-team, scope: tenant, window: month, limit_usd: "10"}
`

// statusStack drives a mix of requests through the harness and llmproc:
// two tenants and none, a routing rule and direct model names, a cache
// hit, a failover from a 503, and feedback on two answers. Every answer reports 1000 input and 100
// output tokens: 210 µ$ on gpt-4o-mini, 3500 µ$ on gpt-4o.
func statusStack(t *testing.T) (*env, string) {
	t.Helper()
	def := fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}
	e := &env{primary: fakeopenai.New(fakeopenai.Options{Default: def}), secondary: fakeopenai.New(fakeopenai.Options{Default: def})}
	t.Cleanup(func() { e.primary.Close(); e.secondary.Close() })
	cfg := fmt.Sprintf(statusConfig, e.primary.URL(), e.secondary.URL())
	e.Stack, e.accessLog, e.log = startStack(t, cfg, map[string]string{"PRIMARY_KEY": "sk-primary", "SECONDARY_KEY": "sk-secondary"})
	body := func(model, text string) string {
		return fmt.Sprintf(`{"model":%q,"temperature":0,"max_tokens":100,"messages":[{"role":"user","content":%q}]}`, model, text)
	}
	var ids []string
	for _, r := range []struct {
		body, tenant, cache string
		fail                bool
	}{
		{body: body("auto", "one"), tenant: "team-a", cache: "miss"},
		{body: body("auto", "one"), tenant: "team-a", cache: "hit"},
		{body: body("gpt-4o", "two"), tenant: "team-b", cache: "miss"},
		{body: body("gpt-4o-mini", "three"), tenant: "team-a", cache: "miss", fail: true},
		{body: body("gpt-4o-mini", "four"), cache: "miss"},
	} {
		if r.fail {
			e.primary.Enqueue(fakeopenai.Behaviour{Status: 503})
		}
		var hdr []string
		if r.tenant != "" {
			hdr = []string{"x-tenant", r.tenant}
		}
		res := e.post(t, r.body, hdr...)
		if res.status != 200 || res.header.Get("x-llmproc-cache") != r.cache {
			t.Fatalf("%s: %d cache %q, want 200 %s: %s", r.body, res.status, res.header.Get("x-llmproc-cache"), r.cache, res.body)
		}
		ids = append(ids, res.header.Get("x-llmproc-request-id"))
	}
	// Quality feedback on the first answer (team-a, gpt-4o-mini) and the
	// third (team-b, gpt-4o).
	for _, f := range []struct {
		tenant, id string
		score      float64
	}{{"team-a", ids[0], 5}, {"team-b", ids[2], 2}} {
		if r := e.feedback(t, f.tenant, fmt.Sprintf(`{"request_id":%q,"score":%v}`, f.id, f.score)); r.status != 200 {
			t.Fatalf("feedback: %d %s", r.status, r.body)
		}
	}
	// Five attempts: the failed one is recorded when Envoy ends its stream.
	e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_requests_total"], nil) == 5
	})
	return e, cfg
}

// TestStatusJSON: every figure /status.json shows equals what /metrics
// says, and the spend is the exact sum of the requests' costs.
func TestStatusJSON(t *testing.T) {
	e, cfg := statusStack(t)
	m := e.metrics(t)
	wantShown(t, statusFigures(t, e), m, cfg)
}

// TestStatusBudgetShared: with budget_store.redis, every replica's page
// shows the budgets' spend across replicas — a tenant-scoped budget's per
// tenant, read from Redis — and its own spend apart.
func TestStatusBudgetShared(t *testing.T) {
	redis := redisserver.Start(t)
	def := fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}
	provider := fakeopenai.New(fakeopenai.Options{Default: def})
	t.Cleanup(func() { provider.Close() })
	cfg := strings.Replace(fmt.Sprintf(statusConfig, provider.URL(), provider.URL()), "budget_store: {tenant_header: x-tenant}",
		fmt.Sprintf("budget_store: {tenant_header: x-tenant, redis: {addr: %q, timeout: 2s}}", redis.Addr()), 1)
	keys := map[string]string{"PRIMARY_KEY": "sk-primary", "SECONDARY_KEY": "sk-secondary"}
	var replicas [2]*env
	for i := range replicas {
		st, accessLog, log := startStack(t, cfg, keys)
		replicas[i] = &env{Stack: st, accessLog: accessLog, log: log}
	}
	for i, r := range []int{0, 0, 1} {
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","temperature":0,"max_tokens":100,"messages":[{"role":"user","content":"shared %d"}]}`, i)
		if res := replicas[r].post(t, body, "x-tenant", "team-a"); res.status != 200 {
			t.Fatalf("replica %d: %d %s", r, res.status, res.body)
		}
	}
	// Settled on both replicas before either page is read: a reservation
	// still held counts its worst case, not the cost.
	for i, e := range replicas {
		e.metricsWhen(t, func(m map[string][]sample) bool {
			return sum(m["llmproc_budget_requests_total"], map[string]string{"result": "settled"}) == float64(2-i)
		})
	}
	for i, e := range replicas {
		shown := statusFigures(t, e)
		// 210 µ$ a request: three in the shared budgets — the global ones and
		// team-a's bar in the tenant-scoped one — each replica's own in its
		// spend.
		for k, want := range map[string]float64{"budget.daily.spent": 630e-6, "budget.monthly.spent": 630e-6,
			"budget.per-team.tenant.team-a.spent": 630e-6, "budget.per-team.counters": 1,
			"spend.day.total": float64(2-i) * 210e-6} {
			if v, err := strconv.ParseFloat(shown[k], 64); err != nil || math.Abs(v-want) > 1e-15 {
				t.Errorf("replica %d: %s shown %q, want %v", i, k, shown[k], want)
			}
		}
		if !strings.Contains(shown["note.budgets"], "shared budget store") {
			t.Errorf("replica %d: the budgets are not said to be shared: %q", i, shown["note.budgets"])
		}
	}
}

// statusFigures reads /status.json's figures by key (and the tables'
// notes as note.<table>).
func statusFigures(t *testing.T, e *env) map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + e.LLMProc.HTTP + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		Tables []struct {
			ID   string
			Note string
			Rows [][]struct {
				T string
				K string
				V *float64
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	shown := map[string]string{}
	for _, tb := range s.Tables {
		shown["note."+tb.ID] = tb.Note
		for _, r := range tb.Rows {
			for _, c := range r {
				switch {
				case c.V != nil:
					shown[c.K] = strconv.FormatFloat(*c.V, 'g', -1, 64)
				case c.K != "":
					shown[c.K] = c.T
				}
			}
		}
	}
	return shown
}

// TestStatusPageChromium loads the status page in headless Chromium (the
// Debian package; `make deps` installs it) against the running stack, once
// the page's script has fetched /status.json and drawn the tables again:
// the figures in the DOM equal /metrics. The screenshot is kept in the
// test's artifact directory (go test -artifacts -outputdir DIR) or else in
// $TMPDIR/llmproc-e2e-artifacts/TestStatusPageChromium/status.png; the log
// says where.
func TestStatusPageChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing (make deps installs the Debian package)")
		}
		t.Skip("chromium is missing (make deps installs the Debian package)")
	}
	e, cfg := statusStack(t)
	url := "http://" + e.LLMProc.HTTP + "/"

	dom := runChromium(t, bin, "--virtual-time-budget=4000", "--dump-dom", url)
	if !strings.Contains(dom, `data-polls="1"`) {
		t.Fatalf("the page's script did not draw the figures from /status.json:\n%s", dom)
	}
	m := e.metrics(t)
	wantShown(t, domFigures(dom), m, cfg)

	dir := artifactDir(t)
	shot := filepath.Join(dir, "status.png")
	runChromium(t, bin, "--virtual-time-budget=4000", "--window-size=1280,1400", "--hide-scrollbars", "--screenshot="+shot, url)
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "status.html"), []byte(dom), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("status page screenshot: %s (and the DOM in status.html beside it)", shot)
}

// runChromium runs headless Chromium once and returns its stdout. As root
// (CI containers) Chromium refuses to start without --no-sandbox.
func runChromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--disable-extensions", "--disable-background-networking", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// artifactDir is t.ArtifactDir() under -artifacts, else
// $TMPDIR/llmproc-e2e-artifacts/<test>, which outlives the test.
func artifactDir(t *testing.T) string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	dir := filepath.Join(os.TempDir(), "llmproc-e2e-artifacts", t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	domValue = regexp.MustCompile(`data-key="([^"]*)" data-value="([^"]*)"`)
	domText  = regexp.MustCompile(`<td data-key="([^"]*)">([^<]*)</td>`)
)

// domFigures reads the figures the page shows: a cell's data-value, or its
// text when it has none.
func domFigures(dom string) map[string]string {
	out := map[string]string{}
	for _, m := range domValue.FindAllStringSubmatch(dom, -1) {
		out[html.UnescapeString(m[1])] = html.UnescapeString(m[2])
	}
	for _, m := range domText.FindAllStringSubmatch(dom, -1) {
		out[html.UnescapeString(m[1])] = html.UnescapeString(m[2])
	}
	return out
}

// wantShown checks the figures a page shows (key → value or text) against
// /metrics: each figure equals the metric it comes from, each metric is
// shown, and the spend adds up to the requests' costs.
func wantShown(t *testing.T, shown map[string]string, m map[string][]sample, cfg string) {
	t.Helper()
	want := expectedFigures(m)
	// The tenant-scoped budget's tenants come from the budget store, not
	// /metrics: team-a 2 × 210 µ$ (its cache hit reserved nothing), team-b
	// 3500 µ$, the request without a tenant 210 µ$; limit 10 USD each.
	for tenant, spent := range map[string]float64{"team-a": 420e-6, "team-b": 3_500e-6, "": 210e-6} {
		want["budget.per-team.tenant."+tenant+".spent"] = spent
		want["budget.per-team.tenant."+tenant+".share"] = spent / 10
	}
	want["budget.per-team.counters"] = 3
	for k, w := range want {
		got, ok := shown[k]
		if !ok {
			t.Errorf("%s = %v in /metrics, not shown", k, w)
			continue
		}
		v, err := strconv.ParseFloat(got, 64)
		if err != nil || v != w {
			t.Errorf("%s: shown %q, /metrics %v", k, got, w)
		}
	}
	for k := range shown {
		_, ok := want[k]
		if !ok && k != "config.version" && !strings.HasPrefix(k, "note.") && !strings.HasSuffix(k, ".rate") && !strings.HasSuffix(k, ".error_share") {
			t.Errorf("%s = %s shown, not in /metrics", k, shown[k])
		}
	}
	sum := sha256.Sum256([]byte(cfg))
	if v, w := shown["config.version"], hex.EncodeToString(sum[:6]); v != w {
		t.Errorf("config version shown %q, want %q (the config file's hash)", v, w)
	}
	if info := m["llmproc_config_info"]; len(info) != 1 || info[0].labels["version"] != shown["config.version"] {
		t.Errorf("llmproc_config_info %v", info)
	}
	// 4 answers: 3 × 210 µ$ on gpt-4o-mini, 3500 µ$ on gpt-4o.
	exact := map[string]float64{
		"spend.day.total": 4_130e-6, "spend.month.model.gpt-4o": 3_500e-6, "spend.day.model.gpt-4o-mini": 630e-6,
		"spend.day.tenant.team-a": 420e-6, "spend.day.tenant.team-b": 3_500e-6, "spend.day.tenant.other": 210e-6,
		"spend.day.route.auto": 210e-6, "spend.day.route.model": 3_920e-6,
		"budget.daily.spent": 4_130e-6, "budget.daily.limit": 0.05, "budget.monthly.spent": 4_130e-6,
		"backend.cheap/primary.errors": 1, "backend.cheap/primary.consecutive_failures": 0, "backend.cheap/secondary.2xx": 1,
		"feedback.gpt-4o-mini.count": 1, "feedback.gpt-4o-mini.mean": 5, "feedback.gpt-4o.count": 1, "feedback.gpt-4o.mean": 2,
		"cache.result.hit": 1, "cache.lookups": 5, "cache.saved": 210e-6, "routing.route.auto": 2, "routing.route.model": 3,
	}
	keys := make([]string, 0, len(exact))
	for k := range exact {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v, err := strconv.ParseFloat(shown[k], 64); err != nil || math.Abs(v-exact[k]) > 1e-15 {
			t.Errorf("%s shown %q, want %v", k, shown[k], exact[k])
		}
	}
}

// expectedFigures computes, from /metrics alone, every figure the status
// page shows with a value (rates over an interval aside), under the key it
// shows it with. USD sums are done in pico-dollars, as the metrics are.
func expectedFigures(m map[string][]sample) map[string]float64 {
	pico := func(v float64) int64 { return int64(math.Round(v * 1e12)) }
	out := map[string]float64{}
	usd := map[string]int64{}
	for _, s := range m["llmproc_spend_usd"] {
		w := s.labels["window"]
		p := pico(s.value)
		usd["spend."+w+".total"] += p
		for _, by := range []string{"model", "tenant", "route"} {
			usd["spend."+w+"."+by+"."+s.labels[by]] += p
		}
	}
	for _, w := range []string{"day", "month"} {
		usd["spend."+w+".total"] += 0
	}
	spent, limit := map[string]float64{}, map[string]float64{}
	for _, s := range m["llmproc_budget_spent_usd"] {
		spent[s.labels["budget"]] = s.value
		out["budget."+s.labels["budget"]+".spent"] = s.value
	}
	for _, s := range m["llmproc_budget_limit_usd"] {
		limit[s.labels["budget"]] = s.value
	}
	// Configured USD limits show for every budget; the share for those
	// with a figure.
	for _, b := range []struct {
		name  string
		limit float64
	}{{"daily", 0.05}, {"monthly", 1}, {"per-team", 10}} {
		out["budget."+b.name+".limit"] = b.limit
		if l, ok := limit[b.name]; ok {
			out["budget."+b.name+".limit"] = l
			out["budget."+b.name+".share"] = spent[b.name] / l
		}
	}
	for _, s := range m["llmproc_requests_total"] {
		k := "backend." + s.labels["pool"] + "/" + s.labels["backend"]
		out[k+".total"] += s.value
		out[k+".2xx"] += 0
		out[k+".4xx"] += 0
		out[k+".errors"] += 0
		out[k+".consecutive_failures"] += 0
		switch c := s.labels["status_class"]; c {
		case "2xx", "4xx":
			out[k+"."+c] += s.value
		case "5xx", "cut":
			out[k+".errors"] += s.value
		}
	}
	for _, s := range m["llmproc_backend_consecutive_failures"] {
		out["backend."+s.labels["pool"]+"/"+s.labels["backend"]+".consecutive_failures"] = s.value
	}
	// The cache's tiers are values of result (hit, hit-normalized,
	// hit-semantic); saved USD is by model.
	var hits, lookups float64
	byResult := map[string]float64{}
	for _, s := range m["llmproc_cache_requests_total"] {
		r := s.labels["result"]
		byResult[r] += s.value
		out["cache.result."+r] += s.value
		if strings.HasPrefix(r, "hit") {
			hits += s.value
		}
		if strings.HasPrefix(r, "hit") || r == "miss" {
			lookups += s.value
		}
	}
	if _, ok := m["llmproc_cache_requests_total"]; ok {
		out["cache.lookups"] = lookups
		if lookups > 0 {
			out["cache.hit_rate"] = hits / lookups
			for r, n := range byResult {
				if strings.HasPrefix(r, "hit") {
					out["cache.hit_rate."+r] = n / lookups
				}
			}
		}
		usd["cache.saved"] += 0
		for _, s := range m["llmproc_cache_saved_usd_total"] {
			usd["cache.saved"] += pico(s.value)
			usd["cache.saved."+s.labels["model"]] += pico(s.value)
		}
	}
	for _, s := range m["llmproc_route_decisions_total"] {
		out["routing.class."+s.labels["class"]] += s.value
		out["routing.route."+s.labels["route"]] += s.value
	}
	fbSum, fbN := map[string]float64{}, map[string]float64{}
	for _, s := range m["llmproc_feedback_total"] {
		out["feedback."+s.labels["model"]+".count"] += s.value
	}
	for _, s := range m["llmproc_feedback_score"] {
		fbSum[s.labels["model"]] += s.value
		fbN[s.labels["model"]] += float64(s.count)
	}
	for model, n := range fbN {
		if n > 0 {
			out["feedback."+model+".mean"] = fbSum[model] / n
			if out["feedback."+model+".count"] == 0 {
				out["feedback."+model+".count"] = n
			}
		}
	}
	for _, s := range m["llmproc_config_reloads_total"] {
		out["config.reloads_"+map[string]string{"ok": "ok", "error": "failed"}[s.labels["result"]]] += s.value
	}
	out["config.reloads_ok"] += 0
	out["config.reloads_failed"] += 0
	for k, p := range usd {
		out[k] = float64(p) / 1e12
	}
	return out
}
