package envoy

import (
	"net"
	"net/netip"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/llmproc/llmproc/filter/config"
)

// Envoy's own tracing, rendered when the config has a tracing section with
// envoy on (the default): the HCM's OpenTelemetry tracer
// (envoy.tracers.opentelemetry, OpenTelemetryConfig in
// api/envoy/config/trace/v3/opentelemetry.proto; the HCM's Tracing in
// api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto)
// exporting to the collector llmproc exports to, over the same protocol.
// Envoy then starts (or continues) the request's trace, spans each attempt
// (spawn_upstream_span) and injects its span for each ext_proc stream into
// the stream's gRPC metadata, where llmproc's router span finds its parent.
const (
	// CollectorClusterName is the cluster of tracing.endpoint.
	CollectorClusterName = "llmproc_otel_collector"
	// EnvoyServiceName is the service.name of Envoy's spans.
	EnvoyServiceName = "envoy"
	// TracerName is the HCM tracer extension.
	TracerName = "envoy.tracers.opentelemetry"
)

// Tracing is the HCM's tracing for a config, nil without Envoy tracing.
func Tracing(rt *config.Runtime) *hcmv3.HttpConnectionManager_Tracing {
	t := rt.Source.Tracing
	if !t.EnvoyTracer() {
		return nil
	}
	otel := &tracev3.OpenTelemetryConfig{ServiceName: EnvoyServiceName}
	if t.Protocol == "http" {
		u := t.Collector()
		path := u.Path
		if path == "" || path == "/" {
			path = "/v1/traces"
		}
		otel.HttpService = &corev3.HttpService{HttpUri: &corev3.HttpUri{
			Uri:              u.Scheme + "://" + u.Host + path,
			HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: CollectorClusterName},
			Timeout:          durationpb.New(t.ExportTimeout.Duration),
		}}
	} else {
		otel.GrpcService = &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: CollectorClusterName}},
			Timeout:         durationpb.New(t.ExportTimeout.Duration),
		}
	}
	return &hcmv3.HttpConnectionManager_Tracing{
		Provider:          &tracev3.Tracing_Http{Name: TracerName, ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: typed(otel)}},
		RandomSampling:    &typev3.Percent{Value: *t.SampleRatio * 100},
		SpawnUpstreamSpan: wrapperspb.Bool(true),
	}
}

// CollectorCluster is the cluster Envoy exports its spans through: HTTP/2
// for OTLP/gRPC, TLS for an https endpoint; nil without Envoy tracing.
func CollectorCluster(rt *config.Runtime) *clusterv3.Cluster {
	t := rt.Source.Tracing
	if !t.EnvoyTracer() {
		return nil
	}
	u := t.Collector()
	host, port := u.Hostname(), u.Port() // validated: a port is named
	n, _ := strconv.Atoi(port)
	kind := clusterv3.Cluster_STRICT_DNS
	if _, err := netip.ParseAddr(host); err == nil {
		kind = clusterv3.Cluster_STATIC
	}
	c := &clusterv3.Cluster{
		Name:                 CollectorClusterName,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: kind},
		ConnectTimeout:       durationpb.New(poolConnectTimeout),
		DnsLookupFamily:      clusterv3.Cluster_V4_PREFERRED,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: CollectorClusterName,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address:  tcpAddress(host, uint32(n)),
					Hostname: net.JoinHostPort(host, port),
				}},
			}}}},
		},
	}
	if t.Protocol == "grpc" {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			HTTPProtocolOptionsKey: typed(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: explicitHTTP2()}),
		}
	}
	if u.Scheme == "https" {
		c.TransportSocket = &corev3.TransportSocket{
			Name:       "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed(&tlsv3.UpstreamTlsContext{Sni: host})},
		}
	}
	return c
}
