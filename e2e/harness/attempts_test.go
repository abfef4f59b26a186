package harness

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// TestAttemptsShareOneHeaderMap follows source/common/router/upstream_request.cc:
// every attempt's upstream filter chain decodes *parent_.downstreamHeaders(),
// the one request-header map, so attempt 2's upstream ext_proc sees what
// attempt 1's set and removed (and so does the provider, and the HCM access
// log), while the body is a fresh copy of the router's buffered original.
func TestAttemptsShareOneHeaderMap(t *testing.T) {
	const orig = `{"model":"m","messages":[]}`
	const first = `{"model":"x"}`
	var bodies atomic.Int32
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if role != "upstream" || req.GetRequestBody() == nil {
			return routeTo("a", true)(role, req)
		}
		if bodies.Add(1) > 1 { // only the first attempt rewrites
			return []*extprocv3.ProcessingResponse{continueAll(req)}, nil
		}
		return []*extprocv3.ProcessingResponse{reqBodyReply(&extprocv3.CommonResponse{
			HeaderMutation: &extprocv3.HeaderMutation{
				SetHeaders:    setHeaders("x-first-credential", "secret", "content-length", strconv.Itoa(len(first))).GetSetHeaders(),
				RemoveHeaders: []string{"x-client"},
			},
			BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(first)}},
		})}, nil
	}}
	p0 := newUpstream(t, "p0", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.WriteHeader(503)
		io.WriteString(w, "down") //nolint:errcheck
	})
	// The second provider answers whatever body it reads under the
	// content-length it was sent.
	p1 := newUpstream(t, "p1", func(w http.ResponseWriter, _ *http.Request, body []byte) {
		w.Write(body) //nolint:errcheck
	})
	e := start(t, bsParams{
		Proc:     startProc(t, fp),
		PoolA:    []endpoint{{p0.addr, 0, "first"}, {p1.addr, 1, "second"}},
		Upstream: true,
		Retry:    `{retry_on: "retriable-status-codes", retriable_status_codes: [503], num_retries: 1, retry_priority: {name: envoy.retry_priorities.previous_priorities, typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig, update_frequency: 1}}}`,
	}, nil)
	resp, body := mustDo(t, e, "POST", "/v1/chat/completions", orig, map[string]string{"X-Client": "c"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	up := fp.recorded("upstream")
	if len(up) != 2 {
		t.Fatalf("upstream streams %d, want 2", len(up))
	}
	second := up[1].msgs[0].GetRequestHeaders().GetHeaders()
	if v, ok := headerValue(second, "x-first-credential"); !ok || v != "secret" {
		t.Errorf("attempt 2 request headers: x-first-credential %q (present %v), want attempt 1's value", v, ok)
	}
	if _, ok := headerValue(second, "x-client"); ok {
		t.Error("attempt 2 request headers still have x-client, which attempt 1 removed")
	}
	if v, _ := headerValue(second, "content-length"); v != strconv.Itoa(len(first)) {
		t.Errorf("attempt 2 content-length %q, want attempt 1's %d", v, len(first))
	}
	if got := string(up[1].msgs[1].GetRequestBody().GetBody()); got != orig {
		t.Errorf("attempt 2 body %q, want a fresh copy of the original %q", got, orig)
	}
	// Nothing fixed the content-length, so the second provider read the
	// original body cut to the first attempt's length.
	got := p1.requests()[0]
	if got.header.Get("X-First-Credential") != "secret" {
		t.Errorf("second provider headers %v, want the first attempt's x-first-credential", got.header)
	}
	if want := orig[:len(first)]; got.body != want || body != want {
		t.Errorf("second provider read %q (client got %q), want the truncated %q", got.body, body, want)
	}
}

// TestWireBody: a content-length longer than the body leaves the upstream
// waiting for the rest until the attempt ends; a shorter one cuts the body.
func TestWireBody(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, n := wireBody(ctx, []byte("abc"), "5")
	if n != 5 {
		t.Fatalf("length %d, want the header's 5", n)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "abc" {
		t.Fatalf("read %q %v", buf, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(buf)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("read after the body: %v, want to wait until the attempt ends", err)
	}
	r, n = wireBody(context.Background(), []byte("abcdef"), "2")
	if b, _ := io.ReadAll(r); n != 2 || string(b) != "ab" {
		t.Errorf("got %q (length %d), want the cut \"ab\"", b, n)
	}
}
