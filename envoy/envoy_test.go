package envoy

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/llmproc/llmproc/filter/config"
)

var update = flag.Bool("update", false, "rewrite envoy/quickstart.yaml from examples/quickstart/llmproc.yaml")

const (
	quickstartConfig = "../examples/quickstart/llmproc.yaml"
	quickstartGolden = "quickstart.yaml"
	httpsConfig      = "testdata/https.yaml"
)

func load(t testing.TB, path string) *config.Runtime {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Topology(c)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func render(t testing.TB, rt *config.Runtime) *bootstrapv3.Bootstrap {
	t.Helper()
	bs, err := Bootstrap(rt)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

func TestRender(t *testing.T) {
	for _, path := range []string{quickstartConfig, httpsConfig} {
		t.Run(path, func(t *testing.T) {
			rt := load(t, path)
			bs := render(t, rt)
			if err := bs.ValidateAll(); err != nil {
				t.Fatalf("ValidateAll: %v", err)
			}
			if err := Check(bs, rt); err != nil {
				t.Fatalf("Check: %v", err)
			}
			y, err := YAML(bs)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(y)
			if err != nil {
				t.Fatalf("Parse of the rendering: %v\n%s", err, y)
			}
			if d := cmp.Diff(bs, back, protocmp.Transform()); d != "" {
				t.Errorf("YAML round trip differs (-rendered +parsed):\n%s", d)
			}
			y2, err := YAML(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(y, y2) {
				t.Error("rendering the parsed bootstrap gives different YAML")
			}
		})
	}
}

// find returns the static cluster with a name, or fails.
func find(t *testing.T, bs *bootstrapv3.Bootstrap, name string) *clusterv3.Cluster {
	t.Helper()
	for _, c := range bs.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			return c
		}
	}
	t.Fatalf("no cluster %q", name)
	return nil
}

func protocolOptions(t *testing.T, c *clusterv3.Cluster) *httpv3.HttpProtocolOptions {
	t.Helper()
	o := &httpv3.HttpProtocolOptions{}
	if err := c.GetTypedExtensionProtocolOptions()[HTTPProtocolOptionsKey].UnmarshalTo(o); err != nil {
		t.Fatal(err)
	}
	return o
}

func hcm(t *testing.T, bs *bootstrapv3.Bootstrap) *hcmv3.HttpConnectionManager {
	t.Helper()
	h := &hcmv3.HttpConnectionManager{}
	f := bs.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0]
	if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
		t.Fatal(err)
	}
	return h
}

func extProc(t *testing.T, f *hcmv3.HttpFilter) *extprocfilterv3.ExternalProcessor {
	t.Helper()
	ep := &extprocfilterv3.ExternalProcessor{}
	if err := f.GetTypedConfig().UnmarshalTo(ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

func TestPoolClusterEndpoints(t *testing.T) {
	bs := render(t, load(t, httpsConfig))
	c := find(t, bs, "pool/flagship")

	type ep struct {
		Backend, Host, Hostname, SNI string
		Port, Priority               uint32
	}
	var got []ep
	for _, lle := range c.GetLoadAssignment().GetEndpoints() {
		if n := len(lle.GetLbEndpoints()); n != 1 {
			t.Fatalf("priority %d has %d endpoints, want 1", lle.GetPriority(), n)
		}
		e := lle.GetLbEndpoints()[0]
		md := e.GetMetadata().GetFilterMetadata()
		sa := e.GetEndpoint().GetAddress().GetSocketAddress()
		got = append(got, ep{
			Backend:  md[MetadataNamespace].GetFields()[BackendKey].GetStringValue(),
			Host:     sa.GetAddress(),
			Port:     sa.GetPortValue(),
			Hostname: e.GetEndpoint().GetHostname(),
			SNI:      md[TransportSocketMatchKey].GetFields()["tls_sni"].GetStringValue(),
			Priority: lle.GetPriority(),
		})
	}
	want := []ep{
		{Backend: "openai", Host: "api.openai.com", Hostname: "api.openai.com", SNI: "api.openai.com", Port: 443, Priority: 0},
		{Backend: "openai-eu", Host: "api.openai.com", Hostname: "api.openai.com", SNI: "api.openai.com", Port: 443, Priority: 1},
		{Backend: "anthropic", Host: "api.anthropic.com", Hostname: "api.anthropic.com", SNI: "api.anthropic.com", Port: 443, Priority: 2},
		{Backend: "local", Host: "vllm.local", Hostname: "vllm.local:8000", Port: 8000, Priority: 3},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("endpoints (-want +got):\n%s", d)
	}

	// One TLS socket per distinct host, each matched by its SNI; the plain
	// HTTP endpoint matches none and so gets the default raw socket.
	var names []string
	for _, m := range c.GetTransportSocketMatches() {
		names = append(names, m.GetName())
		tls := &tlsv3.UpstreamTlsContext{}
		if err := m.GetTransportSocket().GetTypedConfig().UnmarshalTo(tls); err != nil {
			t.Fatal(err)
		}
		host := m.GetMatch().GetFields()["tls_sni"].GetStringValue()
		vc := tls.GetCommonTlsContext().GetValidationContext()
		if tls.GetSni() != host || vc.GetTrustedCa().GetFilename() != SystemCAFile ||
			vc.GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact() != host {
			t.Errorf("match %q: TLS context %v does not pin %q", m.GetName(), tls, host)
		}
	}
	if d := cmp.Diff([]string{"tls/api.openai.com", "tls/api.anthropic.com"}, names); d != "" {
		t.Errorf("transport socket matches (-want +got):\n%s", d)
	}
	if c.GetTransportSocket() != nil {
		t.Error("pool cluster has a default transport socket; plain HTTP backends must stay plain")
	}
	if got := protocolOptions(t, c).GetExplicitHttpConfig().GetHttpProtocolOptions(); got == nil {
		t.Error("pool cluster is not explicit HTTP/1.1")
	}

	// The quickstart has no TLS at all.
	for _, c := range render(t, load(t, quickstartConfig)).GetStaticResources().GetClusters() {
		if len(c.GetTransportSocketMatches()) != 0 || c.GetTransportSocket() != nil {
			t.Errorf("cluster %q: TLS for plain HTTP backends", c.GetName())
		}
	}
}

func TestSettingsFromConfig(t *testing.T) {
	rt := load(t, httpsConfig)
	bs := render(t, rt)

	llm := find(t, bs, LLMProcClusterName)
	if llm.GetType() != clusterv3.Cluster_STRICT_DNS {
		t.Errorf("llmproc cluster type %v for a DNS name, want STRICT_DNS", llm.GetType())
	}
	if find(t, render(t, load(t, quickstartConfig)), LLMProcClusterName).GetType() != clusterv3.Cluster_STATIC {
		t.Error("llmproc cluster for an IP is not STATIC")
	}

	lst := bs.GetStaticResources().GetListeners()[0]
	if got := lst.GetPerConnectionBufferLimitBytes().GetValue(); got != 2<<20 {
		t.Errorf("per_connection_buffer_limit_bytes = %d, want 2 × 1 MiB", got)
	}
	h := hcm(t, bs)
	if got := h.GetStreamIdleTimeout().AsDuration().String(); got != "2m0s" {
		t.Errorf("stream_idle_timeout = %s", got)
	}
	routes := h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
	var clusters []string
	for _, r := range routes {
		clusters = append(clusters, r.GetRoute().GetCluster())
	}
	if d := cmp.Diff([]string{"pool/flagship", "pool/claude", "", "", ""}, clusters); d != "" {
		t.Errorf("route clusters (-want +got):\n%s", d)
	}
	ra := routes[0].GetRoute()
	rp := ra.GetRetryPolicy()
	if rp.GetNumRetries().GetValue() != 3 || rp.GetPerTryTimeout().AsDuration().String() != "1m0s" ||
		ra.GetIdleTimeout().AsDuration().String() != "2m0s" || ra.GetTimeout().AsDuration() != 0 {
		t.Errorf("route settings not from config: %v", ra)
	}
	last := routes[len(routes)-1]
	if last.GetDirectResponse().GetStatus() != 400 || last.GetDirectResponse().GetBody().GetInlineString() != NoPoolBody {
		t.Errorf("catch-all route = %v", last)
	}

	fs := h.GetHttpFilters()
	if len(fs) != 2 || fs[0].GetName() != ExtProcFilterName || fs[1].GetName() != RouterFilterName {
		t.Fatalf("HCM filters = %v, want ext_proc then router", fs)
	}
	router := extProc(t, fs[0])
	upstream := extProc(t, protocolOptions(t, find(t, bs, "pool/claude")).GetHttpFilters()[0])
	for role, ep := range map[string]*extprocfilterv3.ExternalProcessor{RoleRouter: router, RoleUpstream: upstream} {
		md := ep.GetGrpcService().GetInitialMetadata()
		if len(md) != 1 || md[0].GetKey() != RoleHeader || md[0].GetValue() != role {
			t.Errorf("%s role: initial_metadata %v", role, md)
		}
		if ep.GetMessageTimeout().AsDuration().String() != "30s" || ep.GetFailureModeAllow() {
			t.Errorf("%s role: message_timeout %v, failure_mode_allow %v", role, ep.GetMessageTimeout(), ep.GetFailureModeAllow())
		}
	}
	// envoy.max_concurrent_requests 5000: each pool cluster takes 5000
	// requests and as many retries, and 5000 connections per backend;
	// llmproc two streams per request.
	for name, want := range map[string][4]uint32{
		"pool/claude":      {5000, 5000, 5000, 5000},
		"pool/flagship":    {4 * 5000, 5000, 5000, 5000},
		LLMProcClusterName: {DefaultMaxConnections, 10000, 10000, 0},
	} {
		th := find(t, bs, name).GetCircuitBreakers().GetThresholds()
		if len(th) != 1 {
			t.Fatalf("%s: circuit_breakers thresholds %v", name, th)
		}
		got := [4]uint32{th[0].GetMaxConnections().GetValue(), th[0].GetMaxPendingRequests().GetValue(),
			th[0].GetMaxRequests().GetValue(), th[0].GetMaxRetries().GetValue()}
		if got != want || th[0].GetMaxRetries() == nil {
			t.Errorf("%s: circuit breakers (connections, pending, requests, retries) = %v, want %v", name, got, want)
		}
	}
	if router.GetProcessingMode().GetResponseHeaderMode() != extprocfilterv3.ProcessingMode_SKIP {
		t.Error("router role sees responses")
	}
	if d := cmp.Diff([]string{BackendAttribute, ClusterAttribute}, upstream.GetRequestAttributes()); d != "" {
		t.Errorf("upstream attributes (-want +got):\n%s", d)
	}
}

// mutation breaks one invariant of a valid bootstrap.
type mutation func(t *testing.T, bs *bootstrapv3.Bootstrap)

// editHCM decodes the HCM, lets f change it, and packs it back.
func editHCM(f func(*hcmv3.HttpConnectionManager)) mutation {
	return func(t *testing.T, bs *bootstrapv3.Bootstrap) {
		h := hcm(t, bs)
		f(h)
		bs.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().MarshalFrom(h)
	}
}

// editOptions decodes a cluster's HttpProtocolOptions, lets f change them,
// and packs them back.
func editOptions(cluster string, f func(*httpv3.HttpProtocolOptions)) mutation {
	return func(t *testing.T, bs *bootstrapv3.Bootstrap) {
		c := find(t, bs, cluster)
		o := protocolOptions(t, c)
		f(o)
		c.GetTypedExtensionProtocolOptions()[HTTPProtocolOptionsKey].MarshalFrom(o)
	}
}

func firstRoute(h *hcmv3.HttpConnectionManager) *routev3.Route {
	return h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[0]
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		mutate mutation
		want   error
	}{
		{"route to missing cluster", editHCM(func(h *hcmv3.HttpConnectionManager) {
			firstRoute(h).GetRoute().ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "pool/nope"}
		}), ErrUnknownCluster},
		{"ext_proc cluster missing", func(t *testing.T, bs *bootstrapv3.Bootstrap) {
			find(t, bs, LLMProcClusterName).Name = "elsewhere"
		}, ErrUnknownCluster},
		{"ext_proc cluster HTTP/1", editOptions(LLMProcClusterName, func(o *httpv3.HttpProtocolOptions) {
			o.UpstreamProtocolOptions = explicitHTTP1()
		}), ErrExtProcNotHTTP2},
		{"ext_proc cluster without protocol options", func(t *testing.T, bs *bootstrapv3.Bootstrap) {
			find(t, bs, LLMProcClusterName).TypedExtensionProtocolOptions = nil
		}, ErrExtProcNotHTTP2},
		{"listener buffer equals body limit", func(t *testing.T, bs *bootstrapv3.Bootstrap) {
			bs.GetStaticResources().GetListeners()[0].PerConnectionBufferLimitBytes = wrapperspb.UInt32(8 << 20)
		}, ErrBufferLimit},
		{"listener buffer unset", func(t *testing.T, bs *bootstrapv3.Bootstrap) {
			bs.GetStaticResources().GetListeners()[0].PerConnectionBufferLimitBytes = nil
		}, ErrBufferLimit},
		{"route body buffer below limit", editHCM(func(h *hcmv3.HttpConnectionManager) {
			firstRoute(h).RequestBodyBufferLimit = wrapperspb.UInt64(1 << 20)
		}), ErrBufferLimit},
		{"endpoint without backend tag", func(t *testing.T, bs *bootstrapv3.Bootstrap) {
			find(t, bs, "pool/cheap").GetLoadAssignment().GetEndpoints()[1].GetLbEndpoints()[0].Metadata = nil
		}, ErrEndpointMetadata},
		{"endpoint with unknown backend", func(t *testing.T, bs *bootstrapv3.Bootstrap) {
			md := find(t, bs, "pool/cheap").GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetMetadata()
			md.FilterMetadata[MetadataNamespace] = strct(map[string]string{BackendKey: "ghost"})
		}, ErrEndpointMetadata},
		{"upstream_codec not last", editOptions("pool/cheap", func(o *httpv3.HttpProtocolOptions) {
			o.HttpFilters[0], o.HttpFilters[1] = o.HttpFilters[1], o.HttpFilters[0]
		}), ErrCodecNotLast},
		{"pool cluster missing", func(t *testing.T, bs *bootstrapv3.Bootstrap) {
			sr := bs.GetStaticResources()
			sr.Clusters = sr.Clusters[:len(sr.Clusters)-1]
		}, ErrMissingPool},
		{"pool route keeping x-envoy-max-retries", editHCM(func(h *hcmv3.HttpConnectionManager) {
			firstRoute(h).RequestHeadersToRemove = firstRoute(h).RequestHeadersToRemove[1:]
		}), ErrRetryHeaders},
		{"pool cluster with Envoy's default circuit breakers (3 retries)", func(t *testing.T, bs *bootstrapv3.Bootstrap) {
			find(t, bs, "pool/cheap").CircuitBreakers = nil
		}, ErrCircuitBreaker},
		{"llmproc cluster below two streams per request", func(t *testing.T, bs *bootstrapv3.Bootstrap) {
			find(t, bs, LLMProcClusterName).GetCircuitBreakers().GetThresholds()[0].MaxRequests = wrapperspb.UInt32(1024)
		}, ErrCircuitBreaker},
		{"proto validation", func(t *testing.T, bs *bootstrapv3.Bootstrap) {
			find(t, bs, "pool/cheap").ConnectTimeout.Nanos = -1
		}, ErrInvalid},
	}
	rt := load(t, quickstartConfig)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs := render(t, rt)
			tt.mutate(t, bs)
			err := Check(bs, rt)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unknown field", "static_resources: {listenerz: []}", "listenerz"},
		{"unknown Any type", "static_resources:\n  listeners:\n  - filter_chains:\n    - filters:\n      - typed_config: {'@type': type.googleapis.com/no.Such}\n", "no.Such"},
		{"not YAML", "a: [", "parse bootstrap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestGolden keeps envoy/quickstart.yaml equal to the rendering of the
// quickstart config. `make envoy` (go test ./envoy -run TestGolden -update)
// rewrites it.
func TestGolden(t *testing.T) {
	got, err := YAML(render(t, load(t, quickstartConfig)))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(quickstartGolden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(quickstartGolden)
	if err != nil {
		t.Fatalf("%v: run `make envoy` to render it", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("envoy/%s is stale; run `make envoy` to re-render it from %s.\n-checked in +rendered:\n%s",
			quickstartGolden, quickstartConfig, cmp.Diff(string(want), string(got)))
	}
	bs, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(bs, load(t, quickstartConfig)); err != nil {
		t.Fatal(err)
	}
}

func TestBuildersAreStable(t *testing.T) {
	rt := load(t, httpsConfig)
	a, b := render(t, rt), render(t, rt)
	if !proto.Equal(a, b) {
		t.Fatal("two renderings of one runtime differ")
	}
}

// BenchmarkRender measures rendering and re-parsing the quickstart bootstrap.
//
//	go test -run '^$' -bench Render -count 10 ./envoy > new.txt && benchstat old.txt new.txt
func BenchmarkRender(b *testing.B) {
	rt := load(b, quickstartConfig)
	b.ReportAllocs()
	for b.Loop() {
		bs, err := Bootstrap(rt)
		if err != nil {
			b.Fatal(err)
		}
		y, err := YAML(bs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Parse(y); err != nil {
			b.Fatal(err)
		}
	}
}

// TestJSONFormatsEnvoyAccepts guards the access log and local reply formats:
// Envoy's json_format rejects null and bool values when the config loads.
func TestJSONFormatsEnvoyAccepts(t *testing.T) {
	bs := render(t, load(t, quickstartConfig))
	h := hcm(t, bs)
	router := &routerv3.Router{}
	if err := h.GetHttpFilters()[1].GetTypedConfig().UnmarshalTo(router); err != nil {
		t.Fatal(err)
	}
	formats := map[string]*structpb.Struct{}
	for i, m := range h.GetLocalReplyConfig().GetMappers() {
		formats[fmt.Sprintf("local reply mappers[%d]", i)] = m.GetBodyFormatOverride().GetJsonFormat()
	}
	for name, logs := range map[string][]*accesslogv3.AccessLog{"access_log": h.GetAccessLog(), "upstream_log": router.GetUpstreamLog()} {
		if len(logs) != 1 {
			t.Fatalf("%s: %d loggers, want 1", name, len(logs))
		}
		sl := &streamv3.StdoutAccessLog{}
		if err := logs[0].GetTypedConfig().UnmarshalTo(sl); err != nil {
			t.Fatal(err)
		}
		formats[name] = sl.GetLogFormat().GetJsonFormat()
	}
	var walk func(path string, s *structpb.Struct)
	walk = func(path string, s *structpb.Struct) {
		if len(s.GetFields()) == 0 {
			t.Errorf("%s: empty json_format", path)
		}
		for k, v := range s.GetFields() {
			switch v.GetKind().(type) {
			case *structpb.Value_StringValue, *structpb.Value_NumberValue:
			case *structpb.Value_StructValue:
				walk(path+"."+k, v.GetStructValue())
			default:
				t.Errorf("%s.%s: %T is rejected by Envoy's json_format", path, k, v.GetKind())
			}
		}
	}
	for name, f := range formats {
		walk(name, f)
	}
	if got := formats["access_log"].GetFields()["cost_usd"].GetStringValue(); got != "%DYNAMIC_METADATA(llmproc:cost_usd)%" {
		t.Errorf("access_log cost_usd = %q", got)
	}
	if got := formats["upstream_log"].GetFields()["backend"].GetStringValue(); got != "%UPSTREAM_METADATA(llmproc:backend)%" {
		t.Errorf("upstream_log backend = %q", got)
	}
}
