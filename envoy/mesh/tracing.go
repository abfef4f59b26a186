package mesh

import (
	"fmt"

	"google.golang.org/protobuf/types/known/wrapperspb"
	apitelemetry "istio.io/api/telemetry/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/llmproc/llmproc/filter/config"
)

// Tracing in Istio: the gateway's Envoy traces with the mesh's tracer, not
// a rendered one (Istio owns the gateway's HCM; the listener patch leaves
// its tracing alone). The rendering adds a Telemetry resource
// (telemetry.istio.io/v1; Tracing in istio.io/api telemetry/v1alpha1/
// telemetry.proto) that turns tracing on for the LLM gateway with provider
// TracingProvider at tracing.sample_ratio; the provider itself is mesh-wide
// configuration, an OpenTelemetry extensionProvider in meshConfig
// (TracingComment shows it), pointing at the collector llmproc exports to.
const (
	// TelemetryName is the Telemetry resource's name.
	TelemetryName = "llmproc-tracing"
	// TracingProvider is the meshConfig.extensionProviders[].name the
	// Telemetry resource refers to.
	TracingProvider = "llmproc-otel"
	// TelemetryVersion is the Telemetry resource's apiVersion.
	TelemetryVersion = "telemetry.istio.io/v1"
)

// telemetry is the gateway's Telemetry resource, nil without Envoy tracing.
func telemetry(c *config.Config, o Options) *telemetryv1.Telemetry {
	t := c.Tracing
	if !t.EnvoyTracer() {
		return nil
	}
	return &telemetryv1.Telemetry{
		TypeMeta:   metav1.TypeMeta{APIVersion: TelemetryVersion, Kind: "Telemetry"},
		ObjectMeta: meta(o, TelemetryName),
		Spec: apitelemetry.Telemetry{
			TargetRefs: []*typev1beta1.PolicyTargetReference{{Group: GatewayAPIGroup, Kind: "Gateway", Name: o.Gateway}},
			Tracing: []*apitelemetry.Tracing{{
				Providers:                []*apitelemetry.ProviderRef{{Name: TracingProvider}},
				RandomSamplingPercentage: wrapperspb.Double(*t.SampleRatio * 100),
			}},
		},
	}
}

// TracingComment is the meshConfig the Telemetry resource needs, as a
// comment for the rendering's header ("" without Envoy tracing).
func TracingComment(c *config.Config) string {
	t := c.Tracing
	if !t.EnvoyTracer() {
		return ""
	}
	u := t.Collector()
	port := u.Port()
	otel := fmt.Sprintf("{service: %s, port: %s}", u.Hostname(), port)
	if t.Protocol == "http" {
		path := u.Path
		if path == "" || path == "/" {
			path = "/v1/traces"
		}
		otel = fmt.Sprintf("{service: %s, port: %s, http: {path: %s}}", u.Hostname(), port, path)
	}
	return "# Tracing: the Telemetry " + TelemetryName + " names provider " + TracingProvider + "; define it in meshConfig\n" +
		"# (istioctl install --set or the istio ConfigMap), with the collector's Service name as service:\n" +
		"#   meshConfig: {extensionProviders: [{name: " + TracingProvider + ", opentelemetry: " + otel + "}]}\n"
}
