package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// statusMetrics are the figures the status page (filter/status) shows that
// no other collector carries: spend in the current UTC day and month by
// model, tenant and route; each backend's run of consecutive failed
// attempts, which is what Envoy's outlier detection ejects on; and the
// version of the config loaded.
type statusMetrics struct {
	spend       *spendCollector
	failures    *prometheus.GaugeVec
	lastFailure *prometheus.GaugeVec
	info        *prometheus.GaugeVec
	mu          sync.Mutex // orders Reset+Set of info; guards runs
	runs        map[[2]string]int
}

const spendHelp = "Cost of upstream attempts served by this replica in the current UTC calendar window (day, month), by the model that served them, tenant and route rule; summed exactly in pico-dollars, 0 again when the window turns, counted from the process start."

func newStatusMetrics(now func() time.Time) *statusMetrics {
	return &statusMetrics{
		spend: &spendCollector{
			desc: prometheus.NewDesc("llmproc_spend_usd", spendHelp, []string{"window", "model", "tenant", "route"}, nil),
			now:  now,
		},
		failures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmproc_backend_consecutive_failures",
			Help: "Attempts in a row to a backend, seen by this replica, that ended in a 5xx or a broken stream (Envoy's outlier detection ejects a backend after 3); a 2xx or 4xx answer ends the run.",
		}, []string{"pool", "backend"}),
		lastFailure: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmproc_backend_last_failure_timestamp_seconds",
			Help: "Unix time of the last attempt to a backend that ended in a 5xx or a broken stream.",
		}, []string{"pool", "backend"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmproc_config_info",
			Help: "The config serving now: 1, labelled with its version (the first 12 hex digits of the SHA-256 of the file loaded).",
		}, []string{"version"}),
		runs: map[[2]string]int{},
	}
}

func (s *statusMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.spend, s.failures, s.lastFailure, s.info}
}

// record accounts one attempt for the status figures.
func (s *statusMetrics) record(c Completion, class, model string, now time.Time) {
	if c.CostPico > 0 {
		s.spend.add(spendKey{model: model, tenant: c.Tenant, route: c.Route}, c.CostPico, now)
	}
	k := [2]string{c.Pool, c.Backend}
	switch class {
	case "5xx", "cut":
		s.mu.Lock()
		s.runs[k]++
		n := s.runs[k]
		s.mu.Unlock()
		s.failures.WithLabelValues(k[0], k[1]).Set(float64(n))
		s.lastFailure.WithLabelValues(k[0], k[1]).Set(float64(now.UnixNano()) / 1e9)
	case "2xx", "4xx":
		s.mu.Lock()
		n := s.runs[k]
		s.runs[k] = 0
		s.mu.Unlock()
		if n > 0 {
			s.failures.WithLabelValues(k[0], k[1]).Set(0)
		}
	}
}

// ConfigLoaded records that the config with version (config.Config.Version)
// is serving: it becomes the only series of llmproc_config_info and the
// time of the load llmproc_config_last_reload_success_timestamp_seconds.
// Call it at start and after each successful reload.
func (m *Metrics) ConfigLoaded(version string) {
	s := m.status
	s.mu.Lock()
	s.info.Reset()
	s.info.WithLabelValues(version).Set(1)
	s.mu.Unlock()
	m.lastReload.Set(float64(m.now().UnixNano()) / 1e9)
}

// spendKey is the label set of llmproc_spend_usd besides the window.
type spendKey struct{ model, tenant, route string }

// spendWindow is the exact spend in one calendar window, from start.
type spendWindow struct {
	start  time.Time
	totals map[spendKey]*costTotal
}

// roll empties w when t is in a later window than w's.
func (w *spendWindow) roll(start time.Time) {
	if !w.start.Equal(start) || w.totals == nil {
		w.start, w.totals = start, map[spendKey]*costTotal{}
	}
}

// spendCollector keeps the current day's and month's spend (UTC).
type spendCollector struct {
	desc       *prometheus.Desc
	now        func() time.Time
	mu         sync.Mutex
	day, month spendWindow
}

// windowStarts returns the UTC day and month holding t.
func windowStarts(t time.Time) (day, month time.Time) {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC),
		time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func (c *spendCollector) add(k spendKey, pico int64, now time.Time) {
	day, month := windowStarts(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.day.roll(day)
	c.month.roll(month)
	for _, w := range []*spendWindow{&c.day, &c.month} {
		t := w.totals[k]
		if t == nil {
			t = &costTotal{}
			w.totals[k] = t
		}
		t.add(pico)
	}
}

// Describe implements prometheus.Collector.
func (c *spendCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. A window that has turned since
// the last attempt is reported empty, not with the last window's spend.
func (c *spendCollector) Collect(ch chan<- prometheus.Metric) {
	day, month := windowStarts(c.now())
	type row struct {
		window string
		k      spendKey
		v      float64
	}
	var rows []row
	c.mu.Lock()
	c.day.roll(day)
	c.month.roll(month)
	for _, w := range []struct {
		name string
		w    *spendWindow
	}{{"day", &c.day}, {"month", &c.month}} {
		for k, t := range w.w.totals {
			rows = append(rows, row{w.name, k, t.value()})
		}
	}
	c.mu.Unlock()
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, r.v, r.window, r.k.model, r.k.tenant, r.k.route)
	}
}
