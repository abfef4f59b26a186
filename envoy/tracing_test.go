package envoy

import (
	"testing"

	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"

	"github.com/llmproc/llmproc/filter/config"
)

func tracingRuntime(t *testing.T, tracing string) *config.Runtime {
	t.Helper()
	c, err := config.Parse([]byte(tracing + `
backends: [{name: p, schema: openai, url: "https://api.openai.com"}]
models: [{name: m, pool: c}]
pools: [{name: c, backends: [{backend: p}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Topology(c)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// TestTracing: Envoy's OpenTelemetry tracer goes to tracing.endpoint over
// its protocol through the collector cluster (HTTP/2 for gRPC, TLS for
// https), in the bootstrap and over ADS; none without tracing or with
// tracing.envoy false.
func TestTracing(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		grpc, tls  bool
		uri        string
		sampling   float64
	}{
		{"grpc", "tracing: {endpoint: http://otel-collector:4317, sample_ratio: 0.25}", true, false, "", 25},
		{"http", "tracing: {endpoint: https://otel.example.com:4318, protocol: http}", false, true, "https://otel.example.com:4318/v1/traces", 100},
		{"http-path", "tracing: {endpoint: http://10.0.0.7:4318/otlp/v1/traces, protocol: http}", false, false, "http://10.0.0.7:4318/otlp/v1/traces", 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := tracingRuntime(t, c.yaml)
			h := hcmOf(t, rt) // Check passes
			tr := h.GetTracing()
			if tr == nil || tr.GetProvider().GetName() != TracerName || !tr.GetSpawnUpstreamSpan().GetValue() || tr.GetRandomSampling().GetValue() != c.sampling {
				t.Fatalf("tracing %v", tr)
			}
			otel := &tracev3.OpenTelemetryConfig{}
			if err := tr.GetProvider().GetTypedConfig().UnmarshalTo(otel); err != nil {
				t.Fatal(err)
			}
			if c.grpc != (otel.GetGrpcService().GetEnvoyGrpc().GetClusterName() == CollectorClusterName) ||
				otel.GetHttpService().GetHttpUri().GetUri() != c.uri || otel.GetServiceName() != EnvoyServiceName {
				t.Errorf("tracer %v", otel)
			}
			cc := find(t, render(t, rt), CollectorClusterName)
			if c.grpc && protocolOptions(t, cc).GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil ||
				!c.grpc && len(cc.GetTypedExtensionProtocolOptions()) != 0 {
				t.Errorf("collector cluster protocol %v", cc.GetTypedExtensionProtocolOptions())
			}
			if c.tls != (cc.GetTransportSocket() != nil) {
				t.Errorf("collector cluster TLS %v", cc.GetTransportSocket())
			}
			res, err := ADSResources(rt)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, cl := range res.Clusters {
				found = found || cl.GetName() == CollectorClusterName
			}
			if !found {
				t.Error("no collector cluster over ADS")
			}
		})
	}
	for _, yaml := range []string{"", "tracing: {endpoint: http://otel-collector:4317, envoy: false}"} {
		rt := tracingRuntime(t, yaml)
		if tr := hcmOf(t, rt).GetTracing(); tr != nil {
			t.Errorf("%q: tracing %v", yaml, tr)
		}
		for _, cl := range render(t, rt).GetStaticResources().GetClusters() {
			if cl.GetName() == CollectorClusterName {
				t.Errorf("%q: a collector cluster", yaml)
			}
		}
	}
}
