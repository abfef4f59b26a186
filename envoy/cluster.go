package envoy

import (
	"fmt"
	"math"
	"net/netip"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/llmproc/llmproc/filter/config"
)

// Extension and filter names used in clusters.
const (
	// HTTPProtocolOptionsKey is the typed_extension_protocol_options key for
	// upstream HTTP settings (protocol, upstream filters).
	HTTPProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	// UpstreamCodecFilterName must be the last upstream HTTP filter.
	UpstreamCodecFilterName = "envoy.filters.http.upstream_codec"
	// TransportSocketMatchKey is the endpoint metadata namespace Envoy reads
	// to pick a cluster's transport_socket_matches entry.
	TransportSocketMatchKey = "envoy.transport_socket_match"
	// TLSSocketName is the name of the TLS transport socket extension.
	TLSSocketName = "envoy.transport_sockets.tls"
	// SystemCAFile is the CA bundle upstream certificates are checked against.
	SystemCAFile = "/etc/ssl/certs/ca-certificates.crt"
	// OverprovisioningFactor is Envoy's default (140, i.e. 1.4), written out so
	// the priority behaviour is visible: a priority keeps all of a pool's traffic
	// while at least 100/1.4 ≈ 72% of its hosts are healthy, and spills the
	// rest to the next priority below that. With one endpoint per priority,
	// P0 keeps everything until its only host is ejected.
	OverprovisioningFactor = 140
)

const (
	llmprocConnectTimeout = time.Second
	poolConnectTimeout    = 5 * time.Second
	tlsSNIKey             = "tls_sni"
)

// LLMProcCluster is the HTTP/2 (h2c) cluster through which both ext_proc
// filters reach llmproc at envoy.llmproc: STATIC for an IP, STRICT_DNS for a name.
func LLMProcCluster(rt *config.Runtime) (*clusterv3.Cluster, error) {
	addr, err := socketAddress(rt.Source.Envoy.LLMProc)
	if err != nil {
		return nil, fmt.Errorf("envoy.llmproc: %w", err)
	}
	kind := clusterv3.Cluster_STRICT_DNS
	if _, err := netip.ParseAddr(addr.GetSocketAddress().GetAddress()); err == nil {
		kind = clusterv3.Cluster_STATIC
	}
	return &clusterv3.Cluster{
		Name:                 LLMProcClusterName,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: kind},
		ConnectTimeout:       durationpb.New(llmprocConnectTimeout),
		CircuitBreakers:      LLMProcCircuitBreakers(rt),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			HTTPProtocolOptionsKey: typed(&httpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: explicitHTTP2(),
			}),
		},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: LLMProcClusterName,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: addr}},
				}},
			}},
		},
	}, nil
}

func explicitHTTP2() *httpv3.HttpProtocolOptions_ExplicitHttpConfig_ {
	return &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
		ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
		},
	}}
}

func explicitHTTP1() *httpv3.HttpProtocolOptions_ExplicitHttpConfig_ {
	return &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
		ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
			HttpProtocolOptions: &corev3.Http1ProtocolOptions{},
		},
	}}
}

// PoolCluster is the cluster "pool/<name>" for a pool: STRICT_DNS, round robin,
// one LocalityLbEndpoints per member with priority = its place in the fallback
// chain, each endpoint tagged with its backend name (llmproc.backend) for the
// upstream ext_proc filter. HTTPS backends get TLS through
// transport_socket_matches keyed by endpoint metadata; plain HTTP ones none.
// The upstream HTTP filters are llmproc's upstream role, then upstream_codec.
func PoolCluster(rt *config.Runtime, pool *config.RPool) *clusterv3.Cluster {
	return PoolClusterVia(rt, pool, LLMProcClusterName)
}

// PoolClusterVia is PoolCluster whose upstream ext_proc filter reaches
// llmproc through the named cluster (see RouterFilterVia); nothing else
// differs.
func PoolClusterVia(rt *config.Runtime, pool *config.RPool, llmproc string) *clusterv3.Cluster {
	name := PoolClusterName(pool.Name)
	cla := &endpointv3.ClusterLoadAssignment{
		ClusterName: name,
		Policy: &endpointv3.ClusterLoadAssignment_Policy{
			OverprovisioningFactor: wrapperspb.UInt32(OverprovisioningFactor),
		},
	}
	var matches []*clusterv3.Cluster_TransportSocketMatch
	seen := map[string]bool{}
	for _, m := range pool.Members {
		b := m.Backend
		md := map[string]*structpb.Struct{
			MetadataNamespace: strct(map[string]string{BackendKey: b.Name}),
		}
		if b.TLS {
			md[TransportSocketMatchKey] = strct(map[string]string{tlsSNIKey: b.Host})
			if !seen[b.Host] {
				seen[b.Host] = true
				matches = append(matches, tlsMatch(b.Host))
			}
		}
		cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{
			Priority: uint32(m.Priority),
			LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: tcpAddress(b.Host, b.Port),
					// host[:port] as a client would send it: auto_host_rewrite
					// makes it the Host header, and Bedrock's SigV4 signs it.
					Hostname: b.Authority(),
				}},
				Metadata: &corev3.Metadata{FilterMetadata: md},
			}},
		})
	}
	return &clusterv3.Cluster{
		Name:                   name,
		ClusterDiscoveryType:   &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		ConnectTimeout:         durationpb.New(poolConnectTimeout),
		LbPolicy:               clusterv3.Cluster_ROUND_ROBIN,
		DnsLookupFamily:        clusterv3.Cluster_V4_PREFERRED,
		LoadAssignment:         cla,
		OutlierDetection:       outlierDetection(),
		CircuitBreakers:        PoolCircuitBreakers(rt, pool),
		TransportSocketMatches: matches,
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			HTTPProtocolOptionsKey: typed(&httpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: explicitHTTP1(),
				HttpFilters: []*hcmv3.HttpFilter{
					UpstreamFilterVia(rt, llmproc),
					{
						Name:       UpstreamCodecFilterName,
						ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(&upstreamcodecv3.UpstreamCodec{})},
					},
				},
			}),
		},
	}
}

// PoolCircuitBreakers are a pool cluster's thresholds, sized by
// envoy.max_concurrent_requests (N) instead of Envoy's defaults (1024
// requests, pending requests and connections, and 3 retries), which let
// fallback stop silently under load: a retry the circuit breaker refuses is
// not made, the failed answer goes to the client with response flag UO and
// upstream_rq_retry_overflow counts it. A retry holds its place from being
// scheduled until the retried attempt's outcome is known
// (RetryStateImpl::shouldRetry and resetRetry in
// source/common/router/retry_state_impl.cc), so each request in flight holds
// at most one: max_retries is N when the route retries at all, 0 when
// envoy.num_retries is 0. Requests and pending requests are N. Connections
// are N per backend: one HTTP/1.1 connection per request in flight, and
// max_connections counts the whole cluster's, idle ones to the backends a
// failover left included.
func PoolCircuitBreakers(rt *config.Runtime, pool *config.RPool) *clusterv3.CircuitBreakers {
	e := rt.Source.Envoy
	n := e.MaxConcurrentRequests
	retries := n
	if *e.NumRetries == 0 {
		retries = 0
	}
	conns := min(uint64(n)*uint64(max(1, len(pool.Members))), math.MaxUint32)
	return thresholds(uint32(conns), n, n, retries)
}

// LLMProcCircuitBreakers are the llmproc cluster's thresholds. Every request
// in flight holds two ext_proc streams on it: the router role's (BUFFERED, so
// Envoy keeps it open until the filter is destroyed at the end of the request)
// and the upstream role's for the current attempt (open while the answer
// streams). max_requests, the HTTP/2 stream limit, is therefore
// 2 × envoy.max_concurrent_requests; Envoy's default 1024 would refuse
// streams, and fail requests closed, at 512 concurrent requests. No retries
// are made to llmproc.
func LLMProcCircuitBreakers(rt *config.Runtime) *clusterv3.CircuitBreakers {
	n := 2 * rt.Source.Envoy.MaxConcurrentRequests
	return thresholds(DefaultMaxConnections, n, n, 0)
}

// DefaultMaxConnections is Envoy's default max_connections, kept for the
// llmproc cluster (HTTP/2 multiplexes its streams over a few connections).
const DefaultMaxConnections = 1024

func thresholds(conns, pending, requests, retries uint32) *clusterv3.CircuitBreakers {
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
		Priority:           corev3.RoutingPriority_DEFAULT,
		MaxConnections:     wrapperspb.UInt32(conns),
		MaxPendingRequests: wrapperspb.UInt32(pending),
		MaxRequests:        wrapperspb.UInt32(requests),
		MaxRetries:         wrapperspb.UInt32(retries),
	}}}
}

// outlierDetection ejects a backend after three 5xx or gateway failures in a
// row. Consecutive gateway failures enforce only when asked to (default 0), and
// max_ejection_percent must be 100 or a one-host priority is never ejected. A
// 429 never ejects: rate limits are handled by retries, not ejection.
func outlierDetection() *clusterv3.OutlierDetection {
	return &clusterv3.OutlierDetection{
		Consecutive_5Xx:                    wrapperspb.UInt32(3),
		ConsecutiveGatewayFailure:          wrapperspb.UInt32(3),
		EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(100),
		Interval:                           durationpb.New(10 * time.Second),
		BaseEjectionTime:                   durationpb.New(30 * time.Second),
		MaxEjectionPercent:                 wrapperspb.UInt32(100),
	}
}

// tlsMatch is the transport socket for endpoints whose metadata carries
// envoy.transport_socket_match.tls_sni = host: TLS with that SNI, verified
// against the system CA bundle and the host as DNS SAN.
func tlsMatch(host string) *clusterv3.Cluster_TransportSocketMatch {
	tls := &tlsv3.UpstreamTlsContext{
		Sni: host,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: SystemCAFile}},
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
					SanType: tlsv3.SubjectAltNameMatcher_DNS,
					Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: host}},
				}},
			}},
		},
	}
	return &clusterv3.Cluster_TransportSocketMatch{
		Name:  "tls/" + host,
		Match: strct(map[string]string{tlsSNIKey: host}),
		TransportSocket: &corev3.TransportSocket{
			Name:       TLSSocketName,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed(tls)},
		},
	}
}

// strct builds a Struct of string fields.
func strct(fields map[string]string) *structpb.Struct {
	s := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(fields))}
	for k, v := range fields {
		s.Fields[k] = structpb.NewStringValue(v)
	}
	return s
}
