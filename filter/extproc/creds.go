package extproc

import (
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/creds"
)

// MaxMessageTimeout is the ext_proc max_message_timeout the rendered Envoy
// config sets: the most an override_message_timeout may ask for.
const MaxMessageTimeout = 60 * time.Second

// prepare has the translators fetch, in the background, the expiring
// credentials rt's backends sign with (AWS default chain, Vertex
// service-account tokens), once per runtime: at start and after a reload.
func (s *Server) prepare(rt *config.Runtime) {
	old := s.prepared.Load()
	if rt == nil || old == rt || !s.prepared.CompareAndSwap(old, rt) {
		return
	}
	s.tr.Prepare(rt.Backends)
}

// credentialRefreshed records a background credential fetch.
func (s *Server) credentialRefreshed(backend string, err error) {
	if s.metrics != nil {
		s.metrics.CredentialRefresh(backend, err == nil)
	}
	if err != nil {
		s.log.Warn("credential refresh failed; retrying with back-off", "backend", backend, "err", err)
	}
}

// Close stops the server's background work (credential refreshes).
func (s *Server) Close() { s.tr.Close() }

// awaitCredential runs before an attempt is translated. When the backend's
// credential has not been fetched yet (the first request after start, before
// the first fetch ended, or after every refresh failed until it expired),
// translating waits for one fetch; so llmproc first asks Envoy to wait
// longer for this reply. Envoy takes a reply that carries only
// override_message_timeout as a restart of the message timer, once per
// message, between 1 ms and max_message_timeout (ext_proc.cc onReceiveMessage
// and onNewTimeout; processor_state.cc restartMessageTimer).
func (u *upstream) awaitCredential() {
	be := u.keyBackend
	if u.send == nil || u.s.tr.CredentialReady(be) {
		return
	}
	d := min(creds.DefaultTimeout+u.rt.Source.Envoy.MessageTimeout.Duration, MaxMessageTimeout)
	u.s.log.Info("a credential must be fetched on the request path; asking Envoy for more time", "request_id", u.id, "backend", be.Name, "timeout", d)
	if err := u.send(&extprocv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(d)}); err != nil {
		u.s.log.Debug("override_message_timeout not sent", "err", err)
	}
}
