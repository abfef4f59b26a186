package harness

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

const flagsLog = `          access_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog, log_format: {text_format_source: {inline_string: "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\n"}}}}]`

// A retry the cluster's max_retries circuit breaker refuses is not made:
// the upstream's own response passes through with flag UO and
// upstream_rq_retry_overflow counts it. Envoy: RetryStateImpl::shouldRetry
// (source/common/router/retry_state_impl.cc), Filter::onUpstreamHeaders
// (source/common/router/router.cc); the default of 3 concurrent retries is
// ClusterInfoImpl's (source/common/upstream/upstream_impl.cc).
func TestRetryOverflowPassesResponseThrough(t *testing.T) {
	busy := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.WriteHeader(503)
		io.WriteString(w, "busy") //nolint:errcheck
	}
	retry := `{retry_on: "5xx", num_retries: 2, retry_back_off: {base_interval: 0.001s}}`

	t.Run("max_retries 0", func(t *testing.T) {
		u := newUpstream(t, "u", busy)
		log := newSyncLog()
		e := start(t, bsParams{
			Proc: startProc(t, &fakeProc{handle: routeTo("a", true)}), PoolA: []endpoint{{u.addr, 0, "a"}},
			Retry: retry, HCMExtra: flagsLog,
			PoolAExtra: "\n    circuit_breakers: {thresholds: [{priority: HIGH, max_retries: 5}, {max_retries: 0}]}",
		}, log)
		resp, body := mustDo(t, e, "POST", "/", `{}`, nil)
		if resp.StatusCode != 503 || body != "busy" {
			t.Errorf("got %d %q, want the upstream's 503 busy", resp.StatusCode, body)
		}
		if got := strings.TrimSpace(log.wait(1)); got != "503 UO via_upstream" {
			t.Errorf("access log %q", got)
		}
		c := e.Counters()
		if c["cluster.pool/a.upstream_rq_retry_overflow"] != 1 || c["cluster.pool/a.upstream_rq_retry"] != 0 || c["cluster.pool/a.upstream_rq_total"] != 1 {
			t.Errorf("counters %v", c)
		}
	})

	t.Run("default max_retries 3", func(t *testing.T) {
		// The first host answers 503, the second holds the retries it gets
		// until the test lets them go: the fourth request's retry finds
		// three retries in flight.
		first := newUpstream(t, "first", busy)
		arrived := make(chan struct{}, 8)
		unblock := make(chan struct{})
		var mu sync.Mutex
		held := 0
		second := newUpstream(t, "second", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			mu.Lock()
			held++
			hold := held <= 3
			mu.Unlock()
			if hold {
				arrived <- struct{}{}
				<-unblock
			}
			io.WriteString(w, "ok") //nolint:errcheck
		})
		e := start(t, bsParams{
			Proc:  startProc(t, &fakeProc{handle: routeTo("a", true)}),
			PoolA: []endpoint{{first.addr, 0, "a"}, {second.addr, 1, "b"}},
			Retry: `{retry_on: "5xx", num_retries: 2, retry_back_off: {base_interval: 0.001s}, retry_priority: {name: envoy.retry_priorities.previous_priorities, typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig, update_frequency: 1}}}`,
		}, nil)
		var wg sync.WaitGroup
		bodies := make(chan string, 3)
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, b, _ := do(t, e, "POST", "/", `{}`, nil)
				bodies <- b
			}()
		}
		for range 3 {
			<-arrived
		}
		resp, body := mustDo(t, e, "POST", "/", `{}`, nil)
		close(unblock)
		wg.Wait()
		close(bodies)
		if resp.StatusCode != 503 || body != "busy" {
			t.Errorf("fourth request: %d %q, want the first host's 503", resp.StatusCode, body)
		}
		for b := range bodies {
			if b != "ok" {
				t.Errorf("a retried request got %q", b)
			}
		}
		if c := e.Counters()["cluster.pool/a.upstream_rq_retry_overflow"]; c != 1 {
			t.Errorf("retry overflows %d, want 1", c)
		}
	})
}

// A stream beyond the cluster's max_requests is refused by the connection
// pool (ConnPoolImplBase::attachStreamToClient in
// source/common/conn_pool/conn_pool_base.cc, upstream_rq_pending_overflow)
// and the router answers 503 with flag UO, reset reason overflow, never
// retried (Filter::onUpstreamReset in source/common/router/router.cc).
func TestMaxRequestsOverflow(t *testing.T) {
	arrived, unblock := make(chan struct{}, 1), make(chan struct{})
	var first atomic.Bool
	u := newUpstream(t, "u", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if first.CompareAndSwap(false, true) {
			arrived <- struct{}{}
			<-unblock
		}
	})
	log := newSyncLog()
	e := start(t, bsParams{
		Proc: startProc(t, &fakeProc{handle: routeTo("a", true)}), PoolA: []endpoint{{u.addr, 0, "a"}},
		Retry: `{retry_on: "5xx,reset", num_retries: 2}`, HCMExtra: flagsLog,
		PoolAExtra: "\n    circuit_breakers: {thresholds: [{max_requests: 1}]}",
	}, log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		do(t, e, "POST", "/", `{}`, nil) //nolint:errcheck
	}()
	<-arrived
	resp, body := mustDo(t, e, "POST", "/", `{}`, nil)
	close(unblock)
	<-done
	want := "upstream connect error or disconnect/reset before headers. reset reason: overflow"
	if resp.StatusCode != 503 || body != want {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if got := log.wait(2); !strings.Contains(got, "503 UO upstream_reset_before_response_started{overflow}\n") {
		t.Errorf("access log %q", got)
	}
	c := e.Counters()
	if c["cluster.pool/a.upstream_rq_pending_overflow"] != 1 || c["cluster.pool/a.upstream_rq_total"] != 1 || c["cluster.pool/a.upstream_rq_retry"] != 0 {
		t.Errorf("counters %v", c)
	}
}

// The ext_proc cluster's max_requests bounds the gRPC streams open at once:
// Envoy's async gRPC client sends each stream through the router, whose
// overflow local reply ends the stream as UNAVAILABLE
// (source/common/grpc/async_client_impl.cc), and ext_proc fails the
// request with an empty 500 naming the gRPC error (Filter::onGrpcError in
// source/extensions/filters/http/ext_proc/ext_proc.cc).
func TestExtProcStreamOverflow(t *testing.T) {
	arrived, unblock := make(chan struct{}, 1), make(chan struct{})
	var first atomic.Bool
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if req.GetRequestHeaders() != nil && first.CompareAndSwap(false, true) {
			arrived <- struct{}{}
			<-unblock
		}
		return routeTo("a", true)(role, req)
	}}
	u := newUpstream(t, "u", nil)
	log := newSyncLog()
	e := start(t, bsParams{
		Proc: startProc(t, fp), PoolA: []endpoint{{u.addr, 0, "a"}}, HCMExtra: flagsLog,
		ProcExtra: "\n    circuit_breakers: {thresholds: [{max_requests: 1}]}",
	}, log)
	done := make(chan int)
	go func() {
		resp, _, err := do(t, e, "POST", "/", `{}`, nil)
		if err != nil {
			done <- 0
			return
		}
		done <- resp.StatusCode
	}()
	<-arrived
	resp, body := mustDo(t, e, "POST", "/", `{}`, nil)
	close(unblock)
	if code := <-done; code != 200 {
		t.Errorf("first request %d, want 200", code)
	}
	if resp.StatusCode != 500 || body != "" {
		t.Errorf("got %d %q, want an empty 500", resp.StatusCode, body)
	}
	want := "500 - ext_proc_error_gRPC_error_14{upstream_connect_error_or_disconnect/reset_before_headers._reset_reason:_overflow}\n"
	if got := log.wait(2); !strings.Contains(got, want) {
		t.Errorf("access log %q lacks %q", got, want)
	}
	if c := e.Counters()["cluster.ext_proc.upstream_rq_pending_overflow"]; c != 1 {
		t.Errorf("ext_proc overflows %d, want 1", c)
	}
}

// Rate-limited back-off: a reset interval above 1 ms is jittered between
// 1× and 1.5× (JitteredLowerBoundBackOffStrategy in source/common/common/
// backoff_strategy.cc, chosen in RetryStateImpl::shouldRetryHeaders); a
// shorter one is ignored for the exponential back-off, whose interval only
// doubles when it is used.
func TestRateLimitedBackoffJitter(t *testing.T) {
	pol := &retryPolicy{base: 100 * time.Millisecond, max: time.Second, rlHeaders: []string{"retry-after"}, rlMax: time.Minute}
	e := &Envoy{counters: map[string]uint64{}}
	hdr := func(v string) *headerMap {
		h := &headerMap{}
		h.set("retry-after", v)
		return h
	}
	exp := 0
	jittered := false
	for range 200 {
		d := pol.backoff(&exp, hdr("2"), e, "c")
		if d < 2*time.Second || d >= 3*time.Second {
			t.Fatalf("rate-limited wait %v outside [2s, 3s)", d)
		}
		jittered = jittered || d > 2*time.Second
	}
	if !jittered || exp != 0 {
		t.Errorf("jittered %v, exponential uses %d", jittered, exp)
	}
	for range 50 {
		exp = 0
		if d := pol.backoff(&exp, hdr("0"), e, "c"); d >= pol.base || exp != 1 {
			t.Fatalf("a 0 s reset gave %v (uses %d), want exponential below the base", d, exp)
		}
	}
	if c := e.counters["cluster.c.upstream_rq_retry_backoff_exponential"]; c != 50 {
		t.Errorf("exponential back-offs %d", c)
	}
}
