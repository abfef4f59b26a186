package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSpendWindows: llmproc_spend_usd counts the current UTC day and month
// and starts again from 0 when either turns, also for a scrape with no
// attempt since.
func TestSpendWindows(t *testing.T) {
	m, reg := newTest(t)
	at := time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)
	m.now = func() time.Time { return at }
	rec := func(tenant, route string, pico int64) {
		m.Record(Completion{Pool: "p", Backend: "b", ResponseModel: "m", Tenant: tenant, Route: route,
			Status: 200, Outcome: OutcomeOK, UsageKnown: true, CostPico: pico})
	}
	rec("t1", "r1", 1_500_000_000_000)
	rec("t1", "r1", 1)
	rec("t2", "r2", 7)
	want := func(lines ...string) {
		t.Helper()
		exp := "# HELP llmproc_spend_usd " + spendHelp + "\n# TYPE llmproc_spend_usd gauge\n" + strings.Join(lines, "\n") + "\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "llmproc_spend_usd"); err != nil {
			t.Error(err)
		}
	}
	want(`llmproc_spend_usd{model="m",route="r1",tenant="t1",window="day"} 1.500000000001`,
		`llmproc_spend_usd{model="m",route="r1",tenant="t1",window="month"} 1.500000000001`,
		`llmproc_spend_usd{model="m",route="r2",tenant="t2",window="day"} 7e-12`,
		`llmproc_spend_usd{model="m",route="r2",tenant="t2",window="month"} 7e-12`)
	at = at.Add(2 * time.Second) // a new day, month and year
	want()
	rec("t2", "r2", 5)
	want(`llmproc_spend_usd{model="m",route="r2",tenant="t2",window="day"} 5e-12`,
		`llmproc_spend_usd{model="m",route="r2",tenant="t2",window="month"} 5e-12`)
	at = at.Add(24 * time.Hour) // a new day, the same month
	rec("t2", "r2", 1)
	want(`llmproc_spend_usd{model="m",route="r2",tenant="t2",window="day"} 1e-12`,
		`llmproc_spend_usd{model="m",route="r2",tenant="t2",window="month"} 6e-12`)
}

// TestConsecutiveFailures: 5xx answers and cut streams extend a backend's
// run, a 2xx or 4xx ends it, a canceled attempt changes nothing.
func TestConsecutiveFailures(t *testing.T) {
	m, _ := newTest(t)
	for _, a := range []struct {
		status  int
		outcome string
		want    float64
	}{
		{503, OutcomeError, 1}, {200, OutcomeCut, 2}, {200, OutcomeCanceled, 2}, {500, OutcomeError, 3},
		{429, OutcomeError, 0}, {502, OutcomeError, 1}, {200, OutcomeOK, 0},
	} {
		m.Record(Completion{Pool: "p", Backend: "b", Status: a.status, Outcome: a.outcome})
		if got := testutil.ToFloat64(m.status.failures.WithLabelValues("p", "b")); got != a.want {
			t.Errorf("after %d %s: %v in a row, want %v", a.status, a.outcome, got, a.want)
		}
	}
	if got := testutil.ToFloat64(m.status.lastFailure.WithLabelValues("p", "b")); got != 1767225600.5 {
		t.Errorf("last failure %v", got)
	}
}
