package harness

import (
	"math"
	"math/rand/v2"
	"time"
)

// outlierWindow is one host's outcomes in the current detection interval,
// for success-rate and failure-percentage ejection (guarded by cluster.mu).
type outlierWindow struct {
	total, failed int
}

// tally counts one outcome (a 5xx or a locally originated failure is a
// failure: split_external_local_origin_errors is off) and, once the
// interval has passed, runs the interval's ejections, as Envoy's
// DetectorImpl::onIntervalTimer does on its timer
// (source/extensions/outlier_detection_monitors/common and
// source/common/upstream/outlier_detection_impl.cc). Evaluating on the
// next outcome after the interval instead of on a timer changes only when,
// not whether, a host is ejected. Caller holds c.mu.
func (c *cluster) tally(h *host, failed bool, e *Envoy) {
	o := c.outlier
	now := time.Now()
	if c.windowStart.IsZero() {
		c.windowStart = now
	}
	if now.Sub(c.windowStart) >= o.interval {
		c.intervalEjections(now, e)
		for _, x := range c.hosts {
			x.window = outlierWindow{}
		}
		c.windowStart = now
	}
	h.window.total++
	if failed {
		h.window.failed++
	}
}

// intervalEjections is processSuccessRateEjections: among hosts with at
// least the request volume (100 for success rate, 50 for failure
// percentage), if at least 5 have it, a host whose success rate is below
// mean − 1.9 × stdev (Envoy's default stdev factor) is ejected when
// enforcing_success_rate (default 100) allows, and one whose failure
// percentage is at least 85 when enforcing_failure_percentage (default 0)
// does.
func (c *cluster) intervalEjections(now time.Time, e *Envoy) {
	o := c.outlier
	type rated struct {
		h    *host
		rate float64 // success percentage
	}
	collect := func(volume int) []rated {
		var out []rated
		for _, h := range c.hosts {
			if h.window.total >= volume {
				out = append(out, rated{h, 100 * float64(h.window.total-h.window.failed) / float64(h.window.total)})
			}
		}
		return out
	}
	if sr := collect(100); len(sr) >= 5 && o.enforceSR > 0 {
		var mean, variance float64
		for _, r := range sr {
			mean += r.rate
		}
		mean /= float64(len(sr))
		for _, r := range sr {
			variance += (r.rate - mean) * (r.rate - mean)
		}
		threshold := mean - 1.9*math.Sqrt(variance/float64(len(sr)))
		for _, r := range sr {
			if r.rate < threshold && enforced(o.enforceSR) {
				c.eject(r.h, now, "success_rate", e)
			}
		}
	}
	if fp := collect(50); len(fp) >= 5 && o.enforceFP > 0 {
		for _, r := range fp {
			if 100-r.rate >= 85 && enforced(o.enforceFP) {
				c.eject(r.h, now, "failure_percentage", e)
			}
		}
	}
}

func enforced(pct int) bool { return pct >= 100 || (pct > 0 && rand.IntN(100) < pct) }

// eject takes h out of load balancing for base_ejection_time × its
// ejections (at most max_ejection_time), unless it is ejected already or
// max_ejection_percent would be exceeded. Caller holds c.mu.
func (c *cluster) eject(h *host, now time.Time, kind string, e *Envoy) {
	o := c.outlier
	if now.Before(h.ejectedUntil) {
		return
	}
	active := 0
	for _, x := range c.hosts {
		if now.Before(x.ejectedUntil) {
			active++
		}
	}
	if float64(active+1)*100/float64(len(c.hosts)) > float64(o.maxPercent) {
		e.count("cluster."+c.name+".outlier_detection.ejections_overflow", 1)
		return
	}
	h.ejections++
	d := o.base * time.Duration(h.ejections)
	if d > max(o.maxEjection, o.base) {
		d = max(o.maxEjection, o.base)
	}
	h.ejectedUntil = now.Add(d)
	h.consec5xx, h.consecGw = 0, 0
	e.count("cluster."+c.name+".outlier_detection.ejections_enforced_total", 1)
	if kind != "consecutive" {
		e.count("cluster."+c.name+".outlier_detection.ejections_enforced_"+kind, 1)
	}
}
