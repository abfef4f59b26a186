package harness

import (
	"os"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// TestRenderedQuickstartLoads checks the harness accepts the bootstrap
// llmproc renders for the quickstart, so nothing in it is ignored.
func TestRenderedQuickstartLoads(t *testing.T) {
	data, err := os.ReadFile("../../envoy/quickstart.yaml")
	if err != nil {
		t.Skipf("rendered quickstart not available: %v", err)
	}
	bs, err := LoadBootstrapYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(t.Context(), bs, Options{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	e.Close() //nolint:errcheck
}

func TestRouteOptions(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	a := newUpstream(t, "a", nil)
	y := string(renderBootstrap(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "backend-a"}}, RouterFilterOn: true,
		HCMExtra: `          access_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog, log_format: {text_format: "%UPSTREAM_METADATA(llmproc:backend)%\n"}}}]`,
	}))
	for _, r := range []struct{ old, new string }{
		{"route: {cluster: pool/a, timeout: 0s}", "route: {cluster: pool/a, timeout: 0s, auto_host_rewrite: true}\n                response_headers_to_add: [{header: {key: x-route, value: a}}]"},
		{"direct_response: {status: 418, body: {inline_string: teapot}}", "direct_response: {status: 418, body: {inline_string: '{}'}}\n                response_headers_to_add: [{header: {key: content-type, value: application/json}}]"},
		{"type: STATIC\n    load_assignment:\n      cluster_name: pool/a", "type: STRICT_DNS\n    load_assignment:\n      cluster_name: pool/a"},
	} {
		if !strings.Contains(y, r.old) {
			t.Fatalf("template lacks %q", r.old)
		}
		y = strings.Replace(y, r.old, r.new, 1)
	}
	bs, err := LoadBootstrapYAML([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	log := newSyncLog()
	e, err := Start(t.Context(), bs, Options{ListenAddr: "127.0.0.1:0", AccessLog: log})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close() //nolint:errcheck
	resp, _ := mustDo(t, e, "POST", "/v1/chat/completions", `{}`, nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Route") != "a" {
		t.Errorf("got %d %v", resp.StatusCode, resp.Header)
	}
	if got := a.requests()[0].host; got != "127.0.0.1" {
		t.Errorf("auto_host_rewrite: upstream saw host %q, want the DNS host name", got)
	}
	if got := log.wait(1); got != "backend-a\n" {
		t.Errorf("UPSTREAM_METADATA logged %q", got)
	}
	resp, body := mustDo(t, e, "GET", "/direct", "", nil)
	if resp.StatusCode != 418 || body != "{}" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("direct response %d %q %v", resp.StatusCode, body, resp.Header)
	}
	log.wait(1)
}

// TestUpstreamFilterMetadataReachesAccessLog pins Envoy's behaviour: an
// upstream filter's dynamic metadata lands in the downstream stream info
// (UpstreamFilterManager::streamInfo), so the HCM access_log sees it and the
// router's upstream_log, which formats the attempt's own stream info, does not.
func TestUpstreamFilterMetadataReachesAccessLog(t *testing.T) {
	md := func(v string) *extprocv3.ProcessingResponse {
		r := continueAll(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{}})
		r.DynamicMetadata = mustStruct(map[string]any{"llmproc": map[string]any{"from": v}})
		return r
	}
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if role == "upstream" && req.GetRequestHeaders() != nil {
			return []*extprocv3.ProcessingResponse{md("upstream")}, nil
		}
		return routeTo("a", true)(role, req)
	}}
	a := newUpstream(t, "a", nil)
	y := string(renderBootstrap(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}, RouterFilterOn: true, Upstream: true,
		UpstreamExtra: "            metadata_options: {receiving_namespaces: {untyped: [llmproc]}}",
		HCMExtra:      `          access_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog, log_format: {text_format: "access %DYNAMIC_METADATA(llmproc:from)%\n"}}}]`,
	}))
	y = strings.Replace(y, `"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router`,
		`"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
              upstream_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog, log_format: {text_format: "upstream %DYNAMIC_METADATA(llmproc:from)%\n"}}}]`, 1)
	bs, err := LoadBootstrapYAML([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	log := newSyncLog()
	e, err := Start(t.Context(), bs, Options{ListenAddr: "127.0.0.1:0", AccessLog: log})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close() //nolint:errcheck
	mustDo(t, e, "POST", "/", `{}`, nil)
	if got := log.wait(2); got != "upstream -\naccess upstream\n" {
		t.Errorf("logs %q", got)
	}
}
