package harness

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestInternalHeaders follows ConnectionManagerUtility::mutateRequestHeaders
// and cleanInternalHeaders (source/common/http/conn_manager_utility.cc): an
// external request loses its x-envoy-* control headers before any filter, so
// x-envoy-max-retries cannot change the tries; a client listed in
// internal_address_config keeps them and the router honours the header
// (RetryStateImpl, source/common/router/retry_state_impl.cc), unless the
// route's request_headers_to_remove drops it first (finalizeRequestHeaders
// runs before createRetryState in router.cc).
func TestInternalHeaders(t *testing.T) {
	const retry = `{retry_on: retriable-status-codes, retriable_status_codes: [503], num_retries: 2, retry_back_off: {base_interval: 0.001s, max_interval: 0.002s}}`
	for _, tt := range []struct {
		name, hcm, routeExtra string
		tries                 int
	}{
		{"no internal_address_config: every client is external", "", "", 3},
		{"use_remote_address, loopback not internal", "          use_remote_address: true", "", 3},
		{"empty internal_address_config: Envoy's RFC 1918 and loopback default", "          use_remote_address: true\n          internal_address_config: {}", "", 1},
		{"loopback internal: the header is honoured", "          use_remote_address: true\n          internal_address_config: {cidr_ranges: [{address_prefix: 127.0.0.1, prefix_len: 32}]}", "", 1},
		{"loopback internal, the route removes it", "          use_remote_address: true\n          internal_address_config: {cidr_ranges: [{address_prefix: 127.0.0.1, prefix_len: 32}]}",
			"\n                request_headers_to_remove: [x-envoy-max-retries]", 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			down := newUpstream(t, "down", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.WriteHeader(503)
				io.WriteString(w, "down") //nolint:errcheck
			})
			y := string(renderBootstrap(t, bsParams{
				Proc: startProc(t, &fakeProc{handle: routeTo("a", true)}), PoolA: []endpoint{{down.addr, 0, "a"}},
				Retry: retry, HCMExtra: tt.hcm, RouterFilterOn: true,
			}))
			if tt.routeExtra != "" {
				y = replaceOnce(t, y, "route: {cluster: pool/a, timeout: 0s, retry_policy: "+retry+"}",
					"route: {cluster: pool/a, timeout: 0s, retry_policy: "+retry+"}"+tt.routeExtra)
			}
			e := startYAML(t, y)
			resp, _ := mustDo(t, e, "POST", "/v1/chat/completions", `{}`, map[string]string{"x-envoy-max-retries": "0"})
			if resp.StatusCode != 503 || len(down.requests()) != tt.tries {
				t.Errorf("status %d after %d tries, want 503 after %d", resp.StatusCode, len(down.requests()), tt.tries)
			}
		})
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("template lacks %q", old)
	}
	return strings.Replace(s, old, new, 1)
}

func startYAML(t *testing.T, y string) *Envoy {
	t.Helper()
	bs, err := LoadBootstrapYAML([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(t.Context(), bs, Options{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() }) //nolint:errcheck
	return e
}

// Envoy removes its router control headers from every request it does not
// trust as internal, and with use_remote_address treats the request as an
// edge request: it also removes the edge-only headers, appends the peer to
// x-forwarded-for, overwrites x-forwarded-proto and x-request-id and sets
// x-envoy-external-address (ConnectionManagerUtility::mutateRequestHeaders
// and cleanInternalHeaders in source/common/http/conn_manager_utility.cc).
// Since 1.36 no address is internal without internal_address_config.
func TestClientEnvoyHeadersStripped(t *testing.T) {
	client := map[string]string{
		"X-Envoy-Retry-On": "5xx", "X-Envoy-Max-Retries": "9", "X-Envoy-Upstream-Rq-Timeout-Ms": "1",
		"X-Envoy-Internal": "true", "X-Envoy-Decorator-Operation": "op", "X-Request-Id": "client-id",
		"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Llmproc-Pool": "a",
	}
	tests := []struct {
		name  string
		hcm   string
		want  map[string]string // "" = absent
		newID bool
	}{
		{"not use_remote_address", "", map[string]string{
			"X-Envoy-Retry-On": "", "X-Envoy-Max-Retries": "", "X-Envoy-Upstream-Rq-Timeout-Ms": "", "X-Envoy-Internal": "",
			"X-Envoy-Decorator-Operation": "op", "X-Request-Id": "client-id", "X-Forwarded-For": "203.0.113.7",
			"X-Forwarded-Proto": "https", "X-Envoy-External-Address": "",
		}, false},
		{"use_remote_address", "          use_remote_address: true", map[string]string{
			"X-Envoy-Retry-On": "", "X-Envoy-Max-Retries": "", "X-Envoy-Internal": "", "X-Envoy-Decorator-Operation": "",
			"X-Forwarded-For": "203.0.113.7,127.0.0.1", "X-Forwarded-Proto": "http", "X-Envoy-External-Address": "127.0.0.1",
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, "u", nil)
			e := start(t, bsParams{Proc: startProc(t, &fakeProc{handle: routeTo("a", false)}), PoolA: []endpoint{{u.addr, 0, "a"}}, HCMExtra: tt.hcm}, nil)
			resp, _ := mustDo(t, e, "POST", "/", `{}`, client)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := u.requests()[0].header
			for k, v := range tt.want {
				if g := strings.Join(got.Values(k), ","); g != v {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
			if id := got.Get("X-Request-Id"); (id != "client-id") != tt.newID || id == "" {
				t.Errorf("x-request-id %q", id)
			}
		})
	}
}
