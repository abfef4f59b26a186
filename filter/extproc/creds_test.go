package extproc

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/llmproc/llmproc/filter/config"
)

const vertexConfig = `
backends:
  - name: vx
    schema: vertex
    url: "http://127.0.0.1:1"
    credential: {env: VERTEX_KEY}
    vertex: {project: p, region: europe-west4}
models:
  - {name: gemini-2.5-flash, pool: vx, price: {input: 0.3, output: 2.5}}
pools:
  - {name: vx, backends: [{backend: vx}]}
`

// tokenEndpoint is an OAuth token endpoint on 127.0.0.1 that answers
// tok-1, tok-2, … (valid an hour) once answer lets it (at once when hold is
// false), or fails with status when it is set.
type tokenEndpoint struct {
	calls   atomic.Int32
	status  atomic.Int32
	hold    atomic.Bool
	arrived chan struct{}
	answer  chan struct{}
	done    chan struct{}
}

func (e *tokenEndpoint) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	n := e.calls.Add(1)
	if e.hold.Load() {
		select {
		case e.arrived <- struct{}{}:
		case <-e.done:
		}
		select {
		case <-e.answer:
		case <-e.done:
		}
	}
	if s := e.status.Load(); s != 0 {
		http.Error(w, `{"error":"unavailable"}`, int(s))
		return
	}
	w.Header().Set("content-type", "application/json")
	fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":3600}`, n)
}

// vertexRuntime compiles vertexConfig with a service-account key whose
// token_uri is a token endpoint on 127.0.0.1.
func vertexRuntime(t *testing.T) (*config.Runtime, *tokenEndpoint) {
	e := &tokenEndpoint{arrived: make(chan struct{}), answer: make(chan struct{}), done: make(chan struct{})}
	e.hold.Store(true)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(e.done) }) // before srv.Close: no handler left waiting
	pk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(pk)
	key, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "p", "private_key_id": "k1", "client_email": "llmproc@p.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": srv.URL + "/token",
	})
	cfg, err := config.Parse([]byte(vertexConfig))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Compile(cfg, func(string) string { return string(key) })
	if err != nil {
		t.Fatal(err)
	}
	return rt, e
}

// vertexAttempt sends one upstream attempt's request headers and body; the
// replies to the body are read with next.
func vertexAttempt(t *testing.T, h *harness) (next func() *extprocv3.ProcessingResponse) {
	s := h.stream(RoleUpstream)
	roundTrip(t, s, withDecisions(reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions"),
		map[string]string{AttrBackend: "vx", AttrCluster: "pool/vx"}), map[string]string{KeyClient: "openai"}))
	if err := s.Send(reqBody(`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`)); err != nil {
		t.Fatal(err)
	}
	return func() *extprocv3.ProcessingResponse {
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// TestUpstreamAsksForTimeWhenCredentialIsFetched: the service-account
// token is fetched at start; an attempt that comes before that fetch ended
// is preceded by a reply carrying only override_message_timeout (one fetch
// plus the message timeout), then gets the token. Later attempts do not ask.
func TestUpstreamAsksForTimeWhenCredentialIsFetched(t *testing.T) {
	rt, tokens := vertexRuntime(t)
	h := newHarnessFor(t, rt, nil)
	<-tokens.arrived // the server fetches at start, before any request

	next := vertexAttempt(t, h)
	// The endpoint still holds the token back; the override comes first.
	if r := next(); r.GetOverrideMessageTimeout().AsDuration() != 20*time.Second || r.Response != nil {
		t.Fatalf("first reply %v, want only override_message_timeout 20s", r)
	}
	tokens.answer <- struct{}{}
	if auth := setHeaders(next().GetRequestBody().GetResponse())["authorization"]; auth != "Bearer tok-1" {
		t.Fatalf("authorization %q", auth)
	}

	r := vertexAttempt(t, h)()
	if r.GetOverrideMessageTimeout() != nil {
		t.Error("an attempt with the token at hand asked for more time")
	}
	if auth := setHeaders(r.GetRequestBody().GetResponse())["authorization"]; auth != "Bearer tok-1" || tokens.calls.Load() != 1 {
		t.Errorf("authorization %q after %d fetches", auth, tokens.calls.Load())
	}
}

// TestCredentialRefreshFailureCounted: a failing token endpoint is counted
// in llmproc_credential_refreshes_total{result="error"}, and the attempt
// that needs the token gets 502 backend_auth_failed (after asking Envoy for
// time), not a hang.
func TestCredentialRefreshFailureCounted(t *testing.T) {
	rt, tokens := vertexRuntime(t)
	tokens.status.Store(http.StatusServiceUnavailable)
	tokens.hold.Store(false)
	h := newHarnessFor(t, rt, nil)
	next := vertexAttempt(t, h)
	if r := next(); r.GetOverrideMessageTimeout() == nil {
		t.Errorf("first reply %v, want override_message_timeout", r)
	}
	r := next()
	if ir := r.GetImmediateResponse(); ir == nil || ir.Status.Code != http.StatusBadGateway {
		t.Fatalf("reply %v, want a 502", r)
	}
	if n := counter(t, h.reg, "llmproc_credential_refreshes_total", map[string]string{"backend": "vx", "result": "error"}); n < 1 {
		t.Errorf("llmproc_credential_refreshes_total{result=error} = %v", n)
	}
}
