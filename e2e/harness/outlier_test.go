package harness

import (
	"testing"
	"time"
)

// Success-rate ejection is on by default once a cluster has outlier
// detection (enforcing_success_rate 100): with at least 5 hosts of 100
// requests in an interval, a host below mean − 1.9 × stdev is ejected;
// failure-percentage ejection (85 %, 5 hosts of 50 requests) only when
// enforcing_failure_percentage asks for it (DetectorImpl::
// processSuccessRateEjections in source/common/upstream/
// outlier_detection_impl.cc).
func TestIntervalEjections(t *testing.T) {
	tests := []struct {
		name      string
		hosts     int
		volume    int
		failures  []int // per host, of volume
		enforceFP int
		want      map[string]uint64
	}{
		{"success rate outlier ejected", 6, 100, []int{0, 0, 0, 0, 0, 60}, 0,
			map[string]uint64{"ejections_enforced_success_rate": 1, "ejections_enforced_total": 1}},
		{"too few hosts", 4, 100, []int{0, 0, 0, 60}, 0, map[string]uint64{}},
		{"too little volume", 6, 99, []int{0, 0, 0, 0, 0, 60}, 0, map[string]uint64{}},
		{"failure percentage off by default", 5, 50, []int{45, 45, 45, 45, 45}, 0, map[string]uint64{}},
		{"failure percentage enforced", 5, 50, []int{45, 45, 45, 45, 45}, 100,
			map[string]uint64{"ejections_enforced_failure_percentage": 5, "ejections_enforced_total": 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cluster{name: "c", outlier: &outlierConfig{enforceSR: 100, enforceFP: tt.enforceFP, maxPercent: 100, interval: time.Hour, base: time.Minute}}
			for i := range tt.hosts {
				c.hosts = append(c.hosts, &host{healthy: true, window: outlierWindow{total: tt.volume, failed: tt.failures[i]}})
			}
			e := &Envoy{counters: map[string]uint64{}}
			c.intervalEjections(time.Now(), e)
			for k, v := range tt.want {
				if got := e.counters["cluster.c.outlier_detection."+k]; got != v {
					t.Errorf("%s = %d, want %d", k, got, v)
				}
			}
			if len(tt.want) == 0 && len(e.counters) != 0 {
				t.Errorf("counters %v, want none", e.counters)
			}
		})
	}
}
