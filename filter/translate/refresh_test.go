package translate

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/creds"
)

// stepper drives a Set's background credential refreshes step by step: its
// Sleep reports each wait and returns only when released (or kicked), so
// the tests below wait on events, never on time.
type stepper struct {
	slept   chan time.Duration
	release chan struct{}
	mu      sync.Mutex
	errs    []error // OnCredentialRefresh's, in order
}

func newStepper() *stepper {
	return &stepper{slept: make(chan time.Duration), release: make(chan struct{})}
}

func (s *stepper) Sleep(ctx context.Context, d time.Duration, kick <-chan struct{}) {
	select {
	case s.slept <- d:
	case <-ctx.Done():
		return
	}
	select {
	case <-s.release:
	case <-kick:
	case <-ctx.Done():
	}
}

func (s *stepper) refreshed(_ string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

func (s *stepper) failures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.errs {
		if e != nil {
			n++
		}
	}
	return n
}

func (s *stepper) set(t *testing.T) *Set {
	set := NewSet(SetOptions{OnCredentialRefresh: s.refreshed, Credentials: creds.Options{Sleep: s.Sleep}})
	t.Cleanup(set.Close)
	return set
}

// gate holds a fake endpoint's answers until opened, telling the test when
// a request has arrived.
type gate struct {
	arrived chan struct{}
	open    chan struct{}
}

func newGate() *gate { return &gate{arrived: make(chan struct{}, 8), open: make(chan struct{})} }

func (g *gate) wait() {
	g.arrived <- struct{}{}
	<-g.open
}

func bearer(t *testing.T, set *Set, be *config.RBackend) string {
	t.Helper()
	tr, _ := set.For(be.Schema)
	up, err := tr.Request(&Request{Body: []byte(`{"messages":[{"role":"user","content":"hi"}]}`), Backend: be, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	return authHeader(t, up)
}

// TestVertexTokenKeptFresh: a service-account token is fetched at start
// (Prepare), refreshed in the background ahead of expiry, and requests
// never wait for the token endpoint: not while a refresh is slow, not when
// it fails (which is reported).
func TestVertexTokenKeptFresh(t *testing.T) {
	key, srv := serviceAccountKey(t, 3600)
	st := newStepper()
	set := st.set(t)
	be := vertexBackend(key)
	if set.CredentialReady(be) {
		t.Fatal("ready before any fetch")
	}
	set.Prepare(map[string]*config.RBackend{be.Name: be})
	<-st.slept // the first fetch is done
	if !set.CredentialReady(be) {
		t.Fatal("not ready after the first fetch")
	}
	if got := bearer(t, set, be); got != "Bearer tok-1" || srv.calls.Load() != 1 {
		t.Fatalf("authorization %q after %d fetches", got, srv.calls.Load())
	}

	// A slow token endpoint: the refresh waits, requests do not.
	g := newGate()
	srv.setHook(func(int32) int { g.wait(); return 0 })
	st.release <- struct{}{}
	<-g.arrived
	for range 3 {
		if got := bearer(t, set, be); got != "Bearer tok-1" {
			t.Fatalf("during a slow refresh: authorization %q", got)
		}
	}
	close(g.open)
	<-st.slept
	if got := bearer(t, set, be); got != "Bearer tok-2" {
		t.Fatalf("after the refresh: authorization %q, want the new token", got)
	}

	// A failing endpoint: reported, and the valid token keeps serving.
	srv.setHook(func(int32) int { return http.StatusServiceUnavailable })
	st.release <- struct{}{}
	if d := <-st.slept; d != time.Second {
		t.Errorf("after a failure the refresh waits %v, want the 1 s back-off", d)
	}
	if st.failures() != 1 {
		t.Errorf("%d failures reported, want 1", st.failures())
	}
	if got := bearer(t, set, be); got != "Bearer tok-2" {
		t.Fatalf("after a failed refresh: authorization %q", got)
	}
	if n := srv.calls.Load(); n != 3 {
		t.Errorf("%d token fetches, want 3 (none on the request path)", n)
	}

	// A backend gone from the config is no longer refreshed.
	set.Prepare(nil)
	if set.CredentialReady(be) {
		t.Error("still ready after the backend was removed")
	}
}

// containerCreds is an ECS/EKS container credentials endpoint on
// 127.0.0.1, which the AWS default chain reads when
// AWS_CONTAINER_CREDENTIALS_FULL_URI points at it: AKID1, AKID2, … valid
// for an hour.
type containerCreds struct {
	mu    sync.Mutex
	calls int
	hook  func(n int) int
}

func (c *containerCreds) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	c.calls++
	n, hook := c.calls, c.hook
	c.mu.Unlock()
	if hook != nil {
		if status := hook(n); status != 0 {
			http.Error(w, "unavailable", status)
			return
		}
	}
	fmt.Fprintf(w, `{"AccessKeyId":"AKID%d","SecretAccessKey":"secret","Token":"tok%d","Expiration":%q}`,
		n, n, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
}

func (c *containerCreds) setHook(h func(n int) int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hook = h
}

func (c *containerCreds) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// TestBedrockChainKeptFresh is TestVertexTokenKeptFresh for the AWS default
// chain, served by a container credentials endpoint on 127.0.0.1.
func TestBedrockChainKeptFresh(t *testing.T) {
	cc := &containerCreds{}
	srv := httptest.NewServer(cc)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": dir + "/config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.URL + "/creds",
	} {
		t.Setenv(k, v)
	}
	st := newStepper()
	set := st.set(t)
	be := testBedrockBackend()
	be.Credential = ""
	set.Prepare(map[string]*config.RBackend{be.Name: be})
	<-st.slept
	if got := bearer(t, set, be); !strings.Contains(got, "Credential=AKID1/") || cc.count() != 1 {
		t.Fatalf("authorization %q after %d fetches", got, cc.count())
	}

	g := newGate()
	cc.setHook(func(int) int { g.wait(); return 0 })
	st.release <- struct{}{}
	<-g.arrived
	if got := bearer(t, set, be); !strings.Contains(got, "Credential=AKID1/") {
		t.Fatalf("during a slow refresh: authorization %q", got)
	}
	close(g.open)
	<-st.slept
	if got := bearer(t, set, be); !strings.Contains(got, "Credential=AKID2/") {
		t.Fatalf("after the refresh: authorization %q", got)
	}

	cc.setHook(func(int) int { return http.StatusForbidden }) // not retried inside the SDK
	st.release <- struct{}{}
	<-st.slept
	if st.failures() != 1 {
		t.Errorf("%d failures reported, want 1", st.failures())
	}
	if got := bearer(t, set, be); !strings.Contains(got, "Credential=AKID2/") {
		t.Fatalf("after a failed refresh: authorization %q", got)
	}
}
