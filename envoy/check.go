package envoy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/llmproc/llmproc/filter/config"
)

// Invariants Check enforces; test with errors.Is.
var (
	// ErrInvalid wraps go-control-plane's own validation (ValidateAll).
	ErrInvalid = errors.New("bootstrap fails proto validation")
	// ErrUnknownCluster: a route or ext_proc filter names a missing cluster.
	ErrUnknownCluster = errors.New("unknown cluster")
	// ErrExtProcNotHTTP2: an ext_proc gRPC cluster is not explicitly HTTP/2.
	ErrExtProcNotHTTP2 = errors.New("ext_proc cluster is not HTTP/2")
	// ErrBufferLimit: a buffer limit is below what llmproc must be able to see.
	ErrBufferLimit = errors.New("buffer limit too small")
	// ErrEndpointMetadata: a pool endpoint lacks a known llmproc.backend tag.
	ErrEndpointMetadata = errors.New("pool endpoint without llmproc.backend")
	// ErrCodecNotLast: upstream HTTP filters do not end with upstream_codec.
	ErrCodecNotLast = errors.New("upstream_codec is not the last upstream HTTP filter")
	// ErrMissingPool: a pool of the config has no route or no cluster.
	ErrMissingPool = errors.New("pool not rendered")
	// ErrCircuitBreaker: a cluster's thresholds are below what
	// envoy.max_concurrent_requests needs.
	ErrCircuitBreaker = errors.New("circuit breaker too small")
	// ErrRetryHeaders: a pool route lets clients' x-envoy-* retry headers
	// reach the router.
	ErrRetryHeaders = errors.New("pool route keeps client retry headers")
	// ErrMalformed: a part Check needs to read cannot be decoded.
	ErrMalformed = errors.New("malformed bootstrap")
)

// Check runs the bootstrap's proto validation plus llmproc's cross-checks and
// returns every problem found, joined: each route's cluster exists; each
// ext_proc filter's gRPC cluster exists and speaks HTTP/2; the listener's
// per_connection_buffer_limit_bytes exceeds limits.max_request_bytes and each
// pool route's request_body_buffer_limit is at least that; each pool endpoint
// carries filter_metadata llmproc.backend naming a configured backend;
// upstream_codec is the last upstream HTTP filter; every pool route removes
// the client retry headers (RetryControlHeaders); every pool has its route
// and its cluster; the circuit breakers of pool clusters and ext_proc
// clusters hold envoy.max_concurrent_requests (PoolCircuitBreakers,
// LLMProcCircuitBreakers; an unset threshold counts as Envoy's default).
func Check(bs *bootstrapv3.Bootstrap, rt *config.Runtime) error {
	c := &checker{rt: rt, max: rt.Source.Limits.MaxRequestBytes, clusters: map[string]*clusterv3.Cluster{}}
	if err := bs.ValidateAll(); err != nil {
		c.fail(ErrInvalid, "%v", err)
	}
	for _, cl := range bs.GetStaticResources().GetClusters() {
		c.clusters[cl.GetName()] = cl
	}
	routed := map[string]bool{}
	for _, l := range bs.GetStaticResources().GetListeners() {
		if got := int64(l.GetPerConnectionBufferLimitBytes().GetValue()); l.GetPerConnectionBufferLimitBytes() == nil || got <= c.max {
			c.fail(ErrBufferLimit, "listener %q: per_connection_buffer_limit_bytes %d must exceed limits.max_request_bytes %d", l.GetName(), got, c.max)
		}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() != HCMFilterName {
					continue
				}
				hcm := &hcmv3.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
					c.fail(ErrMalformed, "listener %q: %v", l.GetName(), err)
					continue
				}
				c.httpFilters("listener "+l.GetName(), hcm.GetHttpFilters())
				for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
					for i, r := range vh.GetRoutes() {
						if cl := c.route(fmt.Sprintf("virtual host %q route %d", vh.GetName(), i), r); cl != "" {
							routed[cl] = true
						}
					}
				}
			}
		}
	}
	for _, cl := range bs.GetStaticResources().GetClusters() {
		c.cluster(cl)
	}
	for name := range rt.Pools {
		cn := PoolClusterName(name)
		if c.clusters[cn] == nil {
			c.fail(ErrMissingPool, "pool %q: no cluster %q", name, cn)
		}
		if !routed[cn] {
			c.fail(ErrMissingPool, "pool %q: no route to %q", name, cn)
		}
	}
	return errors.Join(c.errs...)
}

type checker struct {
	rt       *config.Runtime
	max      int64
	clusters map[string]*clusterv3.Cluster
	errs     []error
	// breakersSeen: clusters whose circuit breakers were checked.
	breakersSeen map[string]bool
}

func (c *checker) fail(kind error, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...)))
}

// route checks a route's cluster and body buffer limit and returns the cluster.
func (c *checker) route(where string, r *routev3.Route) string {
	ra := r.GetRoute()
	if ra == nil {
		return ""
	}
	cl := ra.GetCluster()
	if c.clusters[cl] == nil {
		c.fail(ErrUnknownCluster, "%s: cluster %q", where, cl)
	}
	if lim := r.GetRequestBodyBufferLimit(); lim == nil || lim.GetValue() < uint64(c.max) {
		c.fail(ErrBufferLimit, "%s: request_body_buffer_limit %d is below limits.max_request_bytes %d", where, lim.GetValue(), c.max)
	}
	for _, h := range RetryControlHeaders {
		if !slices.Contains(r.GetRequestHeadersToRemove(), h) {
			c.fail(ErrRetryHeaders, "%s: request_headers_to_remove lacks %s", where, h)
		}
	}
	return cl
}

// httpFilters checks every ext_proc filter's gRPC cluster.
func (c *checker) httpFilters(where string, fs []*hcmv3.HttpFilter) {
	for _, f := range fs {
		if f.GetName() != ExtProcFilterName {
			continue
		}
		ep := &extprocfilterv3.ExternalProcessor{}
		if err := f.GetTypedConfig().UnmarshalTo(ep); err != nil {
			c.fail(ErrMalformed, "%s: ext_proc: %v", where, err)
			continue
		}
		name := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
		cl := c.clusters[name]
		if cl == nil {
			c.fail(ErrUnknownCluster, "%s: ext_proc grpc_service cluster %q", where, name)
			continue
		}
		opts, err := c.protocolOptions(cl)
		if err != nil {
			continue
		}
		if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
			c.fail(ErrExtProcNotHTTP2, "%s: ext_proc cluster %q needs explicit_http_config.http2_protocol_options", where, name)
		}
		c.thresholds(cl, LLMProcCircuitBreakers(c.rt))
	}
}

// protocolOptions decodes a cluster's upstream HTTP options; nil when absent.
func (c *checker) protocolOptions(cl *clusterv3.Cluster) (*httpv3.HttpProtocolOptions, error) {
	opts := &httpv3.HttpProtocolOptions{}
	a := cl.GetTypedExtensionProtocolOptions()[HTTPProtocolOptionsKey]
	if a == nil {
		return opts, nil
	}
	if err := a.UnmarshalTo(opts); err != nil {
		c.fail(ErrMalformed, "cluster %q: %s: %v", cl.GetName(), HTTPProtocolOptionsKey, err)
		return nil, err
	}
	return opts, nil
}

// cluster checks upstream filter order and, for pool clusters, endpoint tags.
func (c *checker) cluster(cl *clusterv3.Cluster) {
	where := fmt.Sprintf("cluster %q", cl.GetName())
	if opts, err := c.protocolOptions(cl); err == nil {
		fs := opts.GetHttpFilters()
		if n := len(fs); n > 0 && fs[n-1].GetName() != UpstreamCodecFilterName {
			c.fail(ErrCodecNotLast, "%s: last upstream HTTP filter is %q", where, fs[n-1].GetName())
		}
		c.httpFilters(where, fs)
	}
	if !strings.HasPrefix(cl.GetName(), PoolClusterPrefix) {
		return
	}
	if p := c.rt.Pools[strings.TrimPrefix(cl.GetName(), PoolClusterPrefix)]; p != nil {
		c.thresholds(cl, PoolCircuitBreakers(c.rt, p))
	}
	for _, lle := range cl.GetLoadAssignment().GetEndpoints() {
		for _, e := range lle.GetLbEndpoints() {
			host := e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()
			b := e.GetMetadata().GetFilterMetadata()[MetadataNamespace].GetFields()[BackendKey].GetStringValue()
			if b == "" {
				c.fail(ErrEndpointMetadata, "%s: endpoint %s (priority %d)", where, host, lle.GetPriority())
			} else if c.rt.Backends[b] == nil {
				c.fail(ErrEndpointMetadata, "%s: endpoint %s names unknown backend %q", where, host, b)
			}
		}
	}
}

// Envoy's default thresholds, for thresholds a cluster leaves unset
// (CircuitBreakers.Thresholds in api/envoy/config/cluster/v3/
// circuit_breaker.proto: max_connections, max_pending_requests and
// max_requests 1024, max_retries 3).
const envoyDefaultThreshold, envoyDefaultRetries = 1024, 3

// thresholds checks that a cluster's DEFAULT-priority thresholds are at
// least want's. Each cluster is checked once, whichever path reaches it.
func (c *checker) thresholds(cl *clusterv3.Cluster, want *clusterv3.CircuitBreakers) {
	if c.breakersSeen == nil {
		c.breakersSeen = map[string]bool{}
	}
	if c.breakersSeen[cl.GetName()] {
		return
	}
	c.breakersSeen[cl.GetName()] = true
	var got *clusterv3.CircuitBreakers_Thresholds
	for _, t := range cl.GetCircuitBreakers().GetThresholds() {
		if t.GetPriority() == corev3.RoutingPriority_DEFAULT {
			got = t
		}
	}
	w := want.GetThresholds()[0]
	for _, f := range []struct {
		name      string
		got, want *wrapperspb.UInt32Value
		def       uint32
	}{
		{"max_connections", got.GetMaxConnections(), w.GetMaxConnections(), envoyDefaultThreshold},
		{"max_pending_requests", got.GetMaxPendingRequests(), w.GetMaxPendingRequests(), envoyDefaultThreshold},
		{"max_requests", got.GetMaxRequests(), w.GetMaxRequests(), envoyDefaultThreshold},
		{"max_retries", got.GetMaxRetries(), w.GetMaxRetries(), envoyDefaultRetries},
	} {
		v := f.def
		if f.got != nil {
			v = f.got.GetValue()
		}
		if v < f.want.GetValue() {
			c.fail(ErrCircuitBreaker, "cluster %q: circuit_breakers %s %d is below %d (envoy.max_concurrent_requests %d)",
				cl.GetName(), f.name, v, f.want.GetValue(), c.rt.Source.Envoy.MaxConcurrentRequests)
		}
	}
}
