package metrics

import (
	"bytes"
	"flag"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/usage"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.prom")

func mustPrice(t *testing.T, in, out, cached string) config.Price {
	t.Helper()
	var p config.Price
	for _, f := range []struct {
		dst *config.Decimal
		s   string
	}{{&p.Input, in}, {&p.Output, out}, {&p.CachedInput, cached}} {
		d, err := config.ParseDecimal(f.s)
		if err != nil {
			t.Fatal(err)
		}
		*f.dst = d
	}
	return p
}

func newTest(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.now = func() time.Time { return time.Unix(1767225600, 500_000_000) }
	return m, reg
}

func TestGolden(t *testing.T) {
	m, reg := newTest(t)
	mini := mustPrice(t, "0.15", "0.60", "0.075")

	okUsage := usage.Usage{Input: 1187, Output: 9, CachedInput: 1024}
	m.Record(Completion{
		Pool: "cheap", Backend: "openai", Provider: "openai",
		RequestModel: "gpt-4o-mini", ResponseModel: "gpt-4o-mini",
		Status: 200, Stream: true, Duration: 1500 * time.Millisecond, TTFT: 300 * time.Millisecond,
		Usage: okUsage, UsageKnown: true, CostPico: usage.Cost(okUsage, mini), Outcome: OutcomeOK, Route: "by-model",
	})
	m.Record(Completion{
		Pool: "cheap", Backend: "openai", Provider: "openai",
		RequestModel: "gpt-4o-mini", ResponseModel: "gpt-4o-mini",
		Status: 429, Stream: true, Duration: 50 * time.Millisecond, Outcome: OutcomeError,
	})
	m.Record(Completion{
		Pool: "cheap", Backend: "anthropic", Provider: "anthropic",
		RequestModel: "gpt-4o-mini", ResponseModel: "claude-haiku-4-5",
		Status: 200, Stream: true, Duration: 3 * time.Second, TTFT: 800 * time.Millisecond, Outcome: OutcomeCut,
	})
	m.EstimatedTokens("cheap", "anthropic", "claude-haiku-4-5", 350, 120)
	m.EstimatedTokens("cheap", "anthropic", "claude-haiku-4-5", 50, 0)
	m.Record(Completion{
		Pool: "cheap", Backend: "anthropic", Provider: "anthropic",
		RequestModel: "gpt-4o-mini", ResponseModel: "claude-haiku-4-5",
		Status: 200, Stream: true, Duration: 200 * time.Millisecond, Outcome: OutcomeCanceled,
	})
	azUsage := usage.Usage{Input: 2048, Output: 700, CachedInput: 1920, Reasoning: 640, CacheWrite: 0}
	m.Record(Completion{
		Pool: "smart", Backend: "azure", Provider: "azure-openai",
		RequestModel: "o3-mini", ResponseModel: "o3-mini",
		Status: 200, Duration: 12 * time.Second, TTFT: 12 * time.Second,
		Usage: azUsage, UsageKnown: true, CostPico: usage.Cost(azUsage, mustPrice(t, "1.10", "4.40", "0.55")), Outcome: OutcomeOK,
		Tenant: "team-a", Route: "long-context",
	})

	m.ObservePhase("router", "request_body", 120*time.Microsecond)
	m.ObservePhase("upstream", "response_body", 30*time.Microsecond)
	m.RouterDecision("by-model", "cheap", "")
	m.RouterDecision("by-model", "cheap", "")
	m.RouterDecision("long-context", "smart", "reasoning")
	m.RouterReject("model_not_found")
	m.Auth("client_keys", "ok")
	m.Auth("client_keys", "revoked")
	m.PoolExhausted("cheap")
	m.PoolExhausted("cheap")
	m.ConfigLoaded("0123456789ab")
	m.ConfigReload(true)
	m.ConfigReload(false)
	done := m.Streams("upstream")
	m.Streams("upstream")
	m.Streams("router")()
	done()
	m.CacheResult(CacheHit)
	m.CacheResult(CacheMiss)
	m.CacheResult(CacheMiss)
	m.CacheStore("local")
	m.CacheStore("redis")
	m.CacheSkip("cut")
	m.CacheError("redis")
	m.ConversationStore("kept")
	m.ConversationStore("expanded")
	m.CacheSaved("cheap", "gpt-4o-mini", usage.Cost(okUsage, mini))
	m.CacheSaved("cheap", "gpt-4o-mini", usage.Cost(okUsage, mini))
	m.CacheStats(func() (int64, int64, int64) { return 3, 1 << 20, 2 })
	m.XDSSnapshot(XDSPushed, "0f1e2d3c4b5a6978")
	m.XDSSnapshot(XDSUnchanged, "0f1e2d3c4b5a6978")
	m.XDSSnapshot(XDSPushed, "8796a5b4c3d2e1f0") // replaces the info series
	m.XDSRejected("cluster")
	m.XDSStream()()
	m.XDSStream()
	m.CredentialRefresh("vertex-eu", true)
	m.CredentialRefresh("vertex-eu", false)
	m.CredentialUse("openai", "credential")
	m.CredentialRefused("openai", "credential")
	m.CredentialUse("openai", "credential_next")

	const golden = "testdata/golden.prom"
	if *update {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(reg, f); err != nil {
		t.Error(err)
	}
}

// costValue gathers llmproc_cost_usd_total for one label set.
func costValue(t *testing.T, reg prometheus.Gatherer, pool, backend, model string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "llmproc_cost_usd_total" {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			want := map[string]string{"pool": pool, "backend": backend, "model": model}
			for _, l := range mt.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return mt.GetCounter().GetValue()
		}
	}
	t.Fatalf("no cost series for %s/%s/%s", pool, backend, model)
	return 0
}

func TestCostExact(t *testing.T) {
	m, reg := newTest(t)
	const n, pico = 1_000_000, 37_500 // $0.0375 per million tokens, one token each
	// One attempt through Record, the rest straight into the sum (Record
	// a million times is slow under -race).
	m.Record(Completion{Pool: "p", Backend: "b", ResponseModel: "m", Status: 200, Outcome: OutcomeOK, UsageKnown: true, CostPico: pico})
	naive := float64(pico) / 1e12
	for range n - 1 {
		m.cost.add(costKey{"p", "b", "m", ""}, pico)
		naive += float64(pico) / 1e12
	}
	got := costValue(t, reg, "p", "b", "m")
	want := float64(int64(n*pico)) / 1e12
	if got != want || got != 0.0375 {
		t.Errorf("cost = %v, want exactly %v (0.0375)", got, want)
	}
	t.Logf("summing floats instead would give %v", naive)
}

func TestCostBeyondInt64(t *testing.T) {
	m, reg := newTest(t)
	for range 3 {
		m.Record(Completion{Pool: "p", Backend: "b", ResponseModel: "m", Status: 200, Outcome: OutcomeOK, CostPico: math.MaxInt64})
	}
	got := costValue(t, reg, "p", "b", "m")
	want := 3 * (float64(math.MaxInt64) / 1e12)
	if math.Abs(got-want) > want*1e-15 {
		t.Errorf("cost = %v, want %v", got, want)
	}
}

func TestStatusClass(t *testing.T) {
	tests := []struct {
		status  int
		outcome string
		want    string
	}{
		{200, OutcomeOK, "2xx"},
		{201, OutcomeOK, "2xx"},
		{200, OutcomeError, "5xx"},
		{200, OutcomeUndelivered, "5xx"},
		{429, OutcomeError, "4xx"},
		{400, OutcomeError, "4xx"},
		{503, OutcomeError, "5xx"},
		{0, OutcomeError, "5xx"},
		{302, OutcomeOK, "5xx"},
		{200, OutcomeCut, "cut"},
		{200, OutcomeCanceled, "canceled"},
		{500, OutcomeCanceled, "canceled"},
	}
	for _, tt := range tests {
		if got := StatusClass(tt.status, tt.outcome); got != tt.want {
			t.Errorf("StatusClass(%d, %q) = %q, want %q", tt.status, tt.outcome, got, tt.want)
		}
	}
}

func TestConcurrentRecord(t *testing.T) {
	m, reg := newTest(t)
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				done := m.Streams("upstream")
				m.Record(Completion{
					Pool: "p", Backend: "b", Provider: "openai", RequestModel: "m", ResponseModel: "m",
					Status: 200, Outcome: OutcomeOK, Duration: time.Second, TTFT: time.Millisecond,
					Usage: usage.Usage{Input: 3, Output: 1}, UsageKnown: true, CostPico: int64(w*each + i),
				})
				m.ObservePhase("upstream", "response_body", time.Microsecond)
				m.RouterDecision("r", "p", "chat")
				m.ConfigReload(i%2 == 0)
				done()
			}
		})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()

	const total = workers * each
	if got := testutil.ToFloat64(m.requests.WithLabelValues("p", "b", "2xx")); got != total {
		t.Errorf("requests = %v, want %d", got, total)
	}
	if got := testutil.ToFloat64(m.tokens.WithLabelValues("p", "b", "m", "input")); got != 3*total {
		t.Errorf("input tokens = %v", got)
	}
	if got := testutil.ToFloat64(m.streams.WithLabelValues("upstream")); got != 0 {
		t.Errorf("active streams = %v", got)
	}
	wantPico := int64(total * (total - 1) / 2)
	if got := costValue(t, reg, "p", "b", "m"); got != float64(wantPico)/1e12 {
		t.Errorf("cost = %v, want %v", got, float64(wantPico)/1e12)
	}
}

// BenchmarkRecord is the per-attempt cost of Record with existing series.
func BenchmarkRecord(b *testing.B) {
	m := New(prometheus.NewRegistry())
	c := Completion{
		Pool: "cheap", Backend: "openai", Provider: "openai", RequestModel: "gpt-4o-mini", ResponseModel: "gpt-4o-mini",
		Status: 200, Stream: true, Duration: time.Second, TTFT: 100 * time.Millisecond,
		Usage: usage.Usage{Input: 1187, Output: 9, CachedInput: 1024}, UsageKnown: true, CostPico: 106_650_000, Outcome: OutcomeOK,
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Record(c)
	}
}

// TestFeedback: accepted feedback counts by bucket under the serving
// request's labels (a cache hit's backend is "cache") and feeds the score
// histogram whose _sum / _count is the mean.
func TestFeedback(t *testing.T) {
	m, reg := newTest(t)
	m.Feedback("gpt-4o-mini", "openai", "by-model", "", 5)
	m.Feedback("gpt-4o-mini", "openai", "by-model", "", 1)
	m.Feedback("gpt-4o-mini", "", "by-model", "", 3)
	for _, c := range []struct {
		backend, bucket string
		want            float64
	}{{"openai", "5", 1}, {"openai", "1", 1}, {"cache", "3", 1}, {"openai", "3", 0}} {
		if got := testutil.ToFloat64(m.feedback.WithLabelValues("gpt-4o-mini", c.backend, "by-model", "", c.bucket)); got != c.want {
			t.Errorf("llmproc_feedback_total{backend=%q,score_bucket=%q} = %v, want %v", c.backend, c.bucket, got, c.want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "llmproc_feedback_score" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 3 || h.GetSampleSum() != 9 {
				t.Errorf("score histogram count %d sum %v", h.GetSampleCount(), h.GetSampleSum())
			}
			return
		}
	}
	t.Error("llmproc_feedback_score not gathered")
}

func TestAnswered(t *testing.T) {
	m, _ := newTest(t)
	m.Answered("auto", "cheap", "openai", 0)
	m.Answered("auto", "cheap", "anthropic", 1)
	m.Answered("auto", "cheap", "anthropic", 1)
	if got := testutil.ToFloat64(m.answers.WithLabelValues("auto", "cheap", "anthropic", "1")); got != 2 {
		t.Errorf("fallback answers %v, want 2", got)
	}
}

func TestScoreBucket(t *testing.T) {
	for score, want := range map[int]string{1: "1", 3: "3", 5: "5", 0: "1", 9: "5"} {
		if got := ScoreBucket(score); got != want {
			t.Errorf("ScoreBucket(%v) = %q, want %q", score, got, want)
		}
	}
}

// BenchmarkRecord is one finished attempt's accounting, as the upstream role
// does it per answer.
func BenchmarkRecordAnswer(b *testing.B) {
	m := New(prometheus.NewRegistry())
	c := Completion{Pool: "cheap", Backend: "openai", Provider: "openai", RequestModel: "gpt-4o-mini",
		ResponseModel: "gpt-4o-mini-2024-07-18", Status: 200, Outcome: OutcomeOK, Duration: time.Second,
		TTFT: time.Millisecond, UsageKnown: true}
	c.Usage.Input, c.Usage.Output = 100, 20
	b.ReportAllocs()
	for b.Loop() {
		m.Record(c)
		m.Answered("by-model", "cheap", "openai", 0)
		m.CacheResult(CacheMiss)
	}
}
