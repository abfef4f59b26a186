package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/stack"
	"github.com/llmproc/llmproc/envoy"
)

// adsConfig is llmproc serving Envoy's clusters, listener and routes over
// ADS, reloading every 50ms. With big != "", a second backend, pool
// (code) and model (gpt-4.1) are added.
func adsConfig(small, big string) string {
	backends := fmt.Sprintf("  - {name: small, schema: openai, url: %q, credential: {env: SMALL_KEY}}\n", small)
	models := "  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}\n"
	pools := "  - {name: cheap, backends: [{backend: small}]}\n"
	if big != "" {
		backends += fmt.Sprintf("  - {name: big, schema: openai, url: %q, credential: {env: BIG_KEY}}\n", big)
		models += "  - {name: gpt-4.1, pool: code, price: {input: 2.00, output: 8.00}}\n"
		pools += "  - {name: code, backends: [{backend: big}]}\n"
	}
	return `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s, reload_interval: 50ms}
envoy: {listen: "127.0.0.1:0", num_retries: 1, xds: true}
backends:
` + backends + "models:\n" + models + "pools:\n" + pools
}

// TestADSLiveConfig runs Envoy from the ADS bootstrap alone: the pool
// clusters, the listener and its routes come from llmproc over ADS. A
// request reaches the provider through a pool cluster received that way;
// then the config file gains a pool and a model, llmproc reloads and
// pushes, and Envoy serves the new model without a restart.
func TestADSLiveConfig(t *testing.T) {
	small, big := fakeopenai.New(fakeopenai.Options{}), fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { small.Close(); big.Close() })
	usage := fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}
	small.Script(func(fakeopenai.Request) fakeopenai.Behaviour { return usage })
	big.Script(func(fakeopenai.Request) fakeopenai.Behaviour { return usage })
	var path string
	st, accessLog, log := startStack(t, adsConfig(small.URL(), ""), map[string]string{"SMALL_KEY": "sk-small", "BIG_KEY": "sk-big"},
		func(o *stack.Options) { o.ADS, path = true, o.ConfigPath })
	e := &env{Stack: st, accessLog: accessLog, log: log}
	if bs := string(st.Bootstrap); !strings.Contains(bs, "ads_config") || strings.Contains(bs, "pool/") {
		t.Fatalf("not an ADS bootstrap without pools:\n%s", bs)
	}

	r := e.post(t, chat("gpt-4o-mini", false, ""))
	if r.status != 200 || r.header.Get("x-llmproc-backend") != "small" || r.header.Get("x-llmproc-model") != "gpt-4o-mini" {
		t.Fatalf("status %d backend %q model %q body %s", r.status, r.header.Get("x-llmproc-backend"), r.header.Get("x-llmproc-model"), r.body)
	}
	cheap := map[string]string{"pool": "cheap", "backend": "small", "model": "gpt-4o-mini"}
	// (1000×0.15 + 100×0.60) USD per million = 210,000,000 pico-dollars.
	wantUsage(t, e, cheap, 1, 210_000_000)
	m := e.metrics(t)
	first := wantXDS(t, m, 1)

	wantOpenAIError(t, e.post(t, chat("gpt-4.1", false, "")), 404, "model_not_found")

	// Rewrite the config in one step (rename), so a reload never reads
	// half a file.
	next := filepath.Join(filepath.Dir(path), "next.yaml")
	if err := os.WriteFile(next, []byte(adsConfig(small.URL(), big.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
	// Poll until Envoy routes the new model: llmproc reloads, pushes the
	// new cluster then the new routes, and Envoy applies them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = e.post(t, chat("gpt-4.1", false, ""))
		if r.status == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.status != 200 || r.header.Get("x-llmproc-backend") != "big" || r.header.Get("x-llmproc-model") != "gpt-4.1" {
		t.Fatalf("new model after reload: status %d backend %q model %q body %s", r.status, r.header.Get("x-llmproc-backend"), r.header.Get("x-llmproc-model"), r.body)
	}
	if n := len(big.Requests()); n != 1 {
		t.Errorf("big backend got %d requests, want 1", n)
	}
	// (1000×2.00 + 100×8.00) USD per million = 2,800,000,000 pico-dollars.
	wantUsage(t, e, map[string]string{"pool": "code", "backend": "big", "model": "gpt-4.1"}, 1, 2_800_000_000)
	r = e.post(t, chat("gpt-4o-mini", false, ""))
	if r.status != 200 || r.header.Get("x-llmproc-backend") != "small" {
		t.Errorf("old model after reload: status %d backend %q", r.status, r.header.Get("x-llmproc-backend"))
	}
	wantUsage(t, e, cheap, 2, 2*210_000_000)

	m = e.metrics(t)
	if second := wantXDS(t, m, 2); second == first {
		t.Errorf("llmproc_xds_snapshot_info version unchanged by the push: %q", second)
	}
	if got := sum(m["llmproc_config_reloads_total"], map[string]string{"result": "ok"}); got < 1 {
		t.Errorf("llmproc_config_reloads_total{result=ok} = %v", got)
	}

	// Envoy's side (the harness's or a real Envoy's stats): clusters and
	// routes were updated, the listener was not (a pool change leaves it
	// alone, so its connections are not drained), and nothing was rejected.
	rds := ".rds." + envoy.RouteConfigName + "."
	counters := waitCounters(t, st.Proxy, func(c map[string]uint64) bool {
		return c["cluster_manager.cds.update_success"] >= 2 && matching(c, "http.", rds+"update_success") >= 2
	})
	if got := counters["listener_manager.lds.update_success"]; got != 1 {
		t.Errorf("listener_manager.lds.update_success = %d, want 1", got)
	}
	for _, name := range []string{"cluster_manager.cds.update_rejected", "listener_manager.lds.update_rejected"} {
		if counters[name] != 0 {
			t.Errorf("%s = %d", name, counters[name])
		}
	}
	if n := matching(counters, "http.", rds+"update_rejected"); n != 0 {
		t.Errorf("rds update_rejected = %d", n)
	}
}

// wantUsage checks the tokens, cost (pico-dollars) and successful attempts
// recorded for labels, once the attempts are all recorded.
func wantUsage(t *testing.T, e *env, labels map[string]string, requests int, pico int64) {
	t.Helper()
	ok := map[string]string{"backend": labels["backend"], "status_class": "2xx"}
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_requests_total"], ok) == float64(requests)
	})
	for typ, per := range map[string]float64{"input": 1000, "output": 100} {
		if got := sum(m["llmproc_tokens_total"], withLabel(labels, "type", typ)); got != per*float64(requests) {
			t.Errorf("llmproc_tokens_total%v{type=%s} = %v, want %v", labels, typ, got, per*float64(requests))
		}
	}
	if got, want := sum(m["llmproc_cost_usd_total"], labels), float64(pico)/1e12; got != want {
		t.Errorf("llmproc_cost_usd_total%v = %v, want %v", labels, got, want)
	}
	if got := sum(m["llmproc_requests_total"], ok); got != float64(requests) {
		t.Errorf("llmproc_requests_total%v = %v, want %v", ok, got, requests)
	}
}

// wantXDS checks the xDS metrics after pushes snapshots: one ADS stream
// (Envoy), no rejection, one snapshot_info series; it returns its version.
func wantXDS(t *testing.T, m map[string][]sample, pushes float64) string {
	t.Helper()
	if got := sum(m["llmproc_xds_snapshots_total"], map[string]string{"result": "pushed"}); got != pushes {
		t.Errorf("llmproc_xds_snapshots_total{result=pushed} = %v, want %v", got, pushes)
	}
	if got := sum(m["llmproc_xds_streams"], nil); got != 1 {
		t.Errorf("llmproc_xds_streams = %v, want 1", got)
	}
	if got := sum(m["llmproc_xds_rejections_total"], nil); got != 0 {
		t.Errorf("llmproc_xds_rejections_total = %v", got)
	}
	info := m["llmproc_xds_snapshot_info"]
	if len(info) != 1 || info[0].value != 1 || info[0].labels["version"] == "" {
		t.Errorf("llmproc_xds_snapshot_info = %v, want one series", info)
		return ""
	}
	return info[0].labels["version"]
}

// waitCounters reads the proxy's counters until ready says they are there,
// or returns the last ones after a generous deadline: Envoy counts an
// update once it has applied it, which may be just after a request used it.
func waitCounters(t *testing.T, p stack.Proxy, ready func(map[string]uint64) bool) map[string]uint64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := p.Counters()
		if ready(c) || time.Now().After(deadline) {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// matching adds up the counters named prefix…suffix.
func matching(c map[string]uint64, prefix, suffix string) uint64 {
	var n uint64
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			n += c[k]
		}
	}
	return n
}
