package metrics

import "github.com/prometheus/client_golang/prometheus"

// credMetrics count the provider keys attempts send (backends[].credential
// and credential_next during a rotation) and the providers' refusals of
// them. The slot label is the config field ("credential",
// "credential_next"), never the key.
type credMetrics struct {
	uses, refused *prometheus.CounterVec
	usesS         *series[prometheus.Counter] // uses' children, per attempt
}

func newCredMetrics() *credMetrics {
	c := &credMetrics{
		uses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_backend_credential_requests_total",
			Help: "Upstream attempts sent with a backend's key, by backend and slot (the config field the key came from: credential, credential_next).",
		}, []string{"backend", "slot"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_backend_auth_failures_total",
			Help: "Provider answers 401 or 403 to an attempt that sent a backend's key, by backend and slot (credential, credential_next).",
		}, []string{"backend", "slot"}),
	}
	c.usesS = newSeries(c.uses.WithLabelValues)
	return c
}

func (c *credMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.uses, c.refused}
}

// CredentialUse counts an attempt sent with the backend's key in slot.
func (m *Metrics) CredentialUse(backend, slot string) {
	m.creds.usesS.get(backend, slot).Inc()
}

// CredentialRefused counts a provider's 401 or 403 to the backend's key in slot.
func (m *Metrics) CredentialRefused(backend, slot string) {
	m.creds.refused.WithLabelValues(backend, slot).Inc()
}
