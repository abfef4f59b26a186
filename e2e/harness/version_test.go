package harness

import (
	"net/http"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// startEdited starts the test bootstrap for p with each old text replaced
// by its new one, under opts (ListenAddr set here).
func startEdited(t *testing.T, p bsParams, edits [][2]string, opts Options) (*Envoy, error) {
	t.Helper()
	p.RouterFilterOn = true
	y := string(renderBootstrap(t, p))
	for _, ed := range edits {
		if !strings.Contains(y, ed[0]) {
			t.Fatalf("bootstrap lacks %q", ed[0])
		}
		y = strings.Replace(y, ed[0], ed[1], 1)
	}
	bs, err := LoadBootstrapYAML([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	opts.ListenAddr = "127.0.0.1:0"
	e, err := Start(t.Context(), bs, opts)
	if err == nil {
		t.Cleanup(func() { e.Close() }) //nolint:errcheck
	}
	return e, err
}

func TestEnvoyVersionOption(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{{"", "1.37"}, {"1.36", "1.36"}, {"v1.38.2", "1.38"}, {"1.34", "the harness models Envoy 1.35 and later"}, {"latest", "want major.minor"}} {
		v, err := parseEnvoyVersion(tt.in)
		got := v.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("parseEnvoyVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// An upstream ext_proc filter's immediate response becomes a local reply
// from Envoy 1.37 (envoyproxy/envoy#41231, source/common/router/
// upstream_request.cc: the upstream filter manager's sendLocalReply goes
// to the router's downstream callbacks, so local_reply_config applies and
// nothing retries it). Before 1.37 the filter could not send one: the
// attempt stalls until its per-try timeout.
func TestUpstreamImmediateResponseByVersion(t *testing.T) {
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if role == "upstream" && req.GetRequestHeaders() != nil {
			return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_TooManyRequests}, Body: []byte("slow down"), Details: "llmproc budget",
			}}}}, nil
		}
		return routeTo("a", true)(role, req)
	}}
	addr := startProc(t, fp)
	for _, tt := range []struct {
		version  string
		want     int
		wantBody string
	}{
		{"", 429, "mapped: slow down"},
		{"1.36", 504, "upstream request timeout"},
	} {
		t.Run("version "+tt.version, func(t *testing.T) {
			u := newUpstream(t, "u", nil)
			e, err := startEdited(t, bsParams{
				Proc: addr, PoolA: []endpoint{{u.addr, 0, "a"}}, Upstream: true,
				Retry: `{retry_on: "5xx", num_retries: 0, per_try_timeout: 0.2s}`,
				HCMExtra: `          local_reply_config:
            mappers:
            - filter: {status_code_filter: {comparison: {op: EQ, value: {default_value: 429, runtime_key: k}}}}
              body_format_override: {text_format_source: {inline_string: "mapped: %LOCAL_REPLY_BODY%"}}`,
			}, nil, Options{EnvoyVersion: tt.version})
			if err != nil {
				t.Fatal(err)
			}
			resp, body := mustDo(t, e, "POST", "/", `{}`, nil)
			if resp.StatusCode != tt.want || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.want, tt.wantBody)
			}
			if n := len(u.requests()); n != 0 {
				t.Errorf("the provider got %d requests", n)
			}
		})
	}
}

// Route.request_body_buffer_limit is new in Envoy 1.36 (older Envoys
// reject the unknown field); until 1.37 it bounds only the router's
// buffer, so a downstream ext_proc filter buffering the body is held to
// the listener's per_connection_buffer_limit_bytes (1.37.0 release notes:
// "now applied to requests when the route is matched").
func TestRouteBodyLimitByVersion(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	addr := startProc(t, fp)
	route := [2]string{"route: {cluster: pool/a, timeout: 0s}\n", "route: {cluster: pool/a, timeout: 0s}\n                request_body_buffer_limit: 4096\n"}
	for _, tt := range []struct {
		version string
		want    int // 0: Start fails
	}{{"1.35", 0}, {"1.36", 413}, {"1.37", 200}} {
		t.Run(tt.version, func(t *testing.T) {
			u := newUpstream(t, "u", nil)
			e, err := startEdited(t, bsParams{Proc: addr, PoolA: []endpoint{{u.addr, 0, "a"}}, BufferLimit: 64}, [][2]string{route}, Options{EnvoyVersion: tt.version})
			if tt.want == 0 {
				if err == nil || !strings.Contains(err.Error(), "request_body_buffer_limit: unknown field in Envoy 1.35") {
					t.Fatalf("Start: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := mustDo(t, e, "POST", "/", `{"x":"`+strings.Repeat("y", 200)+`"}`, map[string]string{"X-Llmproc-Pool": "a"})
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestAllowContentLengthHeaderByVersion(t *testing.T) {
	edit := [2]string{"              processing_mode:", "              allow_content_length_header: true\n              processing_mode:"}
	for _, tt := range []struct {
		version string
		ok      bool
	}{{"1.37", false}, {"1.38", true}} {
		_, err := startEdited(t, bsParams{Proc: "127.0.0.1:1", PoolA: []endpoint{{"127.0.0.1:2", 0, "a"}}}, [][2]string{edit}, Options{EnvoyVersion: tt.version})
		if (err == nil) != tt.ok {
			t.Errorf("%s: Start error %v", tt.version, err)
		}
	}
}

// The per-try timeout runs while the upstream filters work: Envoy arms it
// in UpstreamRequest::onPoolReady (source/common/router/upstream_request.cc),
// which runs as soon as the pool has a connection, in parallel with the
// upstream filter chain.
func TestPerTryTimeoutCoversUpstreamFilters(t *testing.T) {
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if role == "upstream" && req.GetRequestHeaders() != nil {
			time.Sleep(300 * time.Millisecond)
		}
		return routeTo("a", true)(role, req)
	}}
	u := newUpstream(t, "u", nil)
	log := newSyncLog()
	e := start(t, bsParams{
		Proc: startProc(t, fp), PoolA: []endpoint{{u.addr, 0, "a"}}, Upstream: true, HCMExtra: flagsLog,
		UpstreamExtra: "            message_timeout: 5s",
		Retry:         `{retry_on: "5xx", num_retries: 0, per_try_timeout: 0.1s}`,
	}, log)
	resp, _ := mustDo(t, e, "POST", "/", `{}`, nil)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", resp.StatusCode)
	}
	if got := strings.TrimSpace(log.wait(1)); got != "504 UT,URX upstream_per_try_timeout" {
		t.Errorf("access log %q", got)
	}
}

// auto_host_rewrite sets :authority in UpstreamRequest::onPoolReady
// (source/common/router/upstream_request.cc). For a new connection that
// comes after the upstream ext_proc filter sent its request headers, so
// the filter sees the downstream :authority while the provider gets the
// endpoint's host name.
func TestAutoHostRewriteAfterUpstreamFilter(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	u := newUpstream(t, "u", nil)
	e, err := startEdited(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{u.addr, 0, "a"}}, Upstream: true}, [][2]string{
		{"route: {cluster: pool/a, timeout: 0s}", "route: {cluster: pool/a, timeout: 0s, auto_host_rewrite: true}"},
		{"type: STATIC\n    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        explicit_http_config: {http_protocol_options: {}}\n        http_filters:", "type: STRICT_DNS\n    typed_extension_protocol_options:\n      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        explicit_http_config: {http_protocol_options: {}}\n        http_filters:"},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+e.Addr()+"/", strings.NewReader(`{}`))
	req.Host = "gateway.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	up := fp.recorded("upstream")
	if len(up) != 1 {
		t.Fatalf("%d upstream streams", len(up))
	}
	if got, _ := headerValue(up[0].msgs[0].GetRequestHeaders().GetHeaders(), ":authority"); got != "gateway.example" {
		t.Errorf("upstream filter saw :authority %q, want the downstream one", got)
	}
	if got := u.requests()[0].host; got != "127.0.0.1" {
		t.Errorf("provider got host %q, want the endpoint's host name", got)
	}
}
