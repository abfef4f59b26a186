package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot results, as passed to XDSSnapshot.
const (
	XDSPushed    = "pushed"    // a new snapshot was handed to the ADS server
	XDSUnchanged = "unchanged" // the config changed nothing Envoy is served
	XDSError     = "error"     // the snapshot could not be built
)

// xdsMetrics are the collectors of llmproc's ADS server (envoy.xds).
type xdsMetrics struct {
	snapshots  *prometheus.CounterVec
	rejections *prometheus.CounterVec
	streams    prometheus.Gauge

	mu   sync.Mutex // orders Reset+Set of info
	info *prometheus.GaugeVec
}

func newXDSMetrics() *xdsMetrics {
	return &xdsMetrics{
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_xds_snapshots_total",
			Help: "xDS snapshots built from the config, at start and after each successful reload, by result (pushed, unchanged, error).",
		}, []string{"result"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_xds_rejections_total",
			Help: "xDS responses Envoy rejected (NACK), by resource type (cluster, listener, route, endpoint, other).",
		}, []string{"type"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llmproc_xds_streams",
			Help: "Open ADS streams (connected Envoys).",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmproc_xds_snapshot_info",
			Help: "The xDS snapshot served now: 1, labelled with its version (a hash of the resources, equal across replicas serving the same config).",
		}, []string{"version"}),
	}
}

func (x *xdsMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{x.snapshots, x.rejections, x.streams, x.info}
}

// XDSSnapshot counts a snapshot built for a config by result (XDSPushed,
// XDSUnchanged or XDSError); a pushed one's version becomes the only series
// of llmproc_xds_snapshot_info.
func (m *Metrics) XDSSnapshot(result, version string) {
	x := m.xds
	x.snapshots.WithLabelValues(result).Inc()
	if result != XDSPushed {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.info.Reset()
	x.info.WithLabelValues(version).Set(1)
}

// XDSRejected counts an xDS response Envoy rejected, by resource type (a
// bounded set chosen by the caller).
func (m *Metrics) XDSRejected(resourceType string) {
	m.xds.rejections.WithLabelValues(resourceType).Inc()
}

// XDSStream counts an open ADS stream and returns the function that counts
// it closed; call that exactly once.
func (m *Metrics) XDSStream() func() {
	m.xds.streams.Inc()
	return m.xds.streams.Dec
}
