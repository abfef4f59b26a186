package extproc

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

const rotationConfig = `
backends:
  - {name: two, schema: openai, url: "http://127.0.0.1:1", credential: {env: OLD}, credential_next: {env: NEW}}
  - {name: one, schema: anthropic, url: "http://127.0.0.1:1", credential: {env: ONLY}}
models:
  - {name: gpt-4o-mini, pool: p, price: {input: 0.15, output: 0.60}}
pools:
  - {name: p, backends: [{backend: two}, {backend: one}]}
`

// fakeClock is a settable clock for the failing marks.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// keyAttempt runs one upstream attempt on backend: it returns the key the
// request was sent with and the reply to the provider's response headers
// (status, plus extra headers).
func keyAttempt(t *testing.T, h *harness, backend string, status int, extra ...string) (key string, reply *extprocv3.CommonResponse) {
	t.Helper()
	s := h.stream(RoleUpstream)
	defer func() { _ = s.CloseSend() }()
	roundTrip(t, s, withDecisions(reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions"),
		map[string]string{AttrBackend: backend, AttrCluster: "pool/p"}), map[string]string{KeyClient: "openai"}))
	set := setHeaders(roundTrip(t, s, reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)).GetRequestBody().GetResponse())
	key = set["authorization"]
	if backend == "one" {
		key = set["x-api-key"]
	}
	kv := append([]string{":status", strconv.Itoa(status), "content-type", "application/json"}, extra...)
	return key, roundTrip(t, s, respHeaders(false, kv...)).GetResponseHeaders().GetResponse()
}

func retries(c *extprocv3.CommonResponse) bool {
	_, ok := setHeaders(c)[HeaderCredentialRetry]
	return ok
}

// TestKeyRotation: a backend with credential and credential_next sends the
// first until the provider refuses it (401 or 403); that answer asks Envoy
// to retry, and attempts send the second key until the mark expires. Both
// refused: no retry asked, the first is sent. A backend with one key is
// never retried on 401. Uses and refusals are counted per slot.
func TestKeyRotation(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	h := newHarnessOpts(t, Options{Config: fixedRuntime{compileTest(t, rotationConfig)}, Now: clock.now})
	const old, next = "Bearer sk-old", "Bearer sk-new"
	steps := []struct {
		name    string
		advance time.Duration
		backend string
		status  int
		wantKey string
		retry   bool
	}{
		{"the first key while it works", 0, "two", 200, old, false},
		{"the first key refused: retry", 0, "two", 401, old, true},
		{"the retry sends the other key", 0, "two", 200, next, false},
		{"and later attempts too", 59 * time.Second, "two", 200, next, false},
		{"the mark expires: the first key again", time.Second, "two", 200, old, false},
		{"403 refuses too", 0, "two", 403, old, true},
		{"the other key refused as well: no retry", 0, "two", 401, next, false},
		{"both failing: the first", 0, "two", 401, old, false},
		{"both marks expire: the first", CredentialFailingFor, "two", 200, old, false},
		{"a backend with one key: 401 is not retried", 0, "one", 401, "sk-only", false},
		{"the same key next time", 0, "one", 200, "sk-only", false},
	}
	for _, st := range steps {
		clock.add(st.advance)
		key, reply := keyAttempt(t, h, st.backend, st.status)
		if key != st.wantKey || retries(reply) != st.retry {
			t.Fatalf("%s: sent %q, retry asked %v; want %q, %v", st.name, key, retries(reply), st.wantKey, st.retry)
		}
	}
	for _, c := range []struct {
		name, backend, slot string
		want                float64
	}{
		{"llmproc_backend_credential_requests_total", "two", SlotCredential, 6},
		{"llmproc_backend_credential_requests_total", "two", SlotCredentialNext, 3},
		{"llmproc_backend_auth_failures_total", "two", SlotCredential, 3},
		{"llmproc_backend_auth_failures_total", "two", SlotCredentialNext, 1},
		{"llmproc_backend_credential_requests_total", "one", SlotCredential, 2},
		{"llmproc_backend_auth_failures_total", "one", SlotCredential, 1},
	} {
		if got := counter(t, h.reg, c.name, map[string]string{"backend": c.backend, "slot": c.slot}); got != c.want {
			t.Errorf("%s{backend=%s,slot=%s} = %v, want %v", c.name, c.backend, c.slot, got, c.want)
		}
	}
}

// TestKeyRotationRetrySignalIsLlmprocs: a provider cannot make Envoy retry
// by sending the retry header itself; it is removed from its answer.
func TestKeyRotationRetrySignalIsLlmprocs(t *testing.T) {
	h := newHarnessOpts(t, Options{Config: fixedRuntime{compileTest(t, rotationConfig)}})
	for _, status := range []int{200, 401, 500} {
		_, reply := keyAttempt(t, h, "one", status, HeaderCredentialRetry, "1")
		if retries(reply) || !slices.Contains(reply.GetHeaderMutation().GetRemoveHeaders(), HeaderCredentialRetry) {
			t.Errorf("status %d: the provider's %s was not removed: %v", status, HeaderCredentialRetry, reply.GetHeaderMutation())
		}
	}
}
