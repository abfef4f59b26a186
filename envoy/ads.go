package envoy

import (
	"errors"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"github.com/llmproc/llmproc/filter/config"
)

// ADSNodeID and ADSNodeCluster identify Envoy in the ADS bootstrap. Envoy
// refuses xDS without both; llmproc serves every node the same resources,
// so they may be changed freely (e.g. with --service-node).
const (
	ADSNodeID      = "llmproc-envoy"
	ADSNodeCluster = "llmproc"
)

// ErrADS: the bootstrap's dynamic_resources do not take listeners and
// clusters from llmproc over ADS, or a listener's RDS names no served route
// configuration.
var ErrADS = errors.New("dynamic resources not served by llmproc over ADS")

// Resources is what llmproc serves Envoy over ADS for one config: the pool
// clusters (CDS, endpoints inline), the client-facing listener (LDS) and its
// route configuration (RDS). The llmproc cluster is not among them: it stays
// static in the bootstrap, since the ADS stream itself runs over it.
type Resources struct {
	Clusters  []*clusterv3.Cluster
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
}

// ADSResources builds the ADS resources from the same builders as
// Bootstrap, so that the two renderings describe the same Envoy.
//
// Endpoints stay inline in each cluster rather than in EDS: pool clusters
// are STRICT_DNS (provider hosts are names), and EDS serves addresses only.
func ADSResources(rt *config.Runtime) (*Resources, error) {
	lst, err := ADSListener(rt)
	if err != nil {
		return nil, err
	}
	clusters := PoolClusters(rt)
	if jc := JWKSCluster(rt); jc != nil {
		clusters = append(clusters, jc)
	}
	if cc := CollectorCluster(rt); cc != nil {
		clusters = append(clusters, cc)
	}
	return &Resources{
		Clusters:  clusters,
		Listeners: []*listenerv3.Listener{lst},
		Routes:    []*routev3.RouteConfiguration{RouteConfiguration(rt)},
	}, nil
}

// ADSListener is Listener with the HCM's routes taken from RDS over ADS.
//
// RDS rather than inline routes: Envoy replaces a listener whose config
// changes by draining the old one, which would cut the long SSE streams in
// flight every time a pool is added or removed. A route configuration update
// applies in place to existing connections, and pool changes touch only
// routes and clusters, so the listener stays as it is.
func ADSListener(rt *config.Runtime) (*listenerv3.Listener, error) {
	h := HTTPConnectionManager(rt)
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
		ConfigSource:    adsSource(),
		RouteConfigName: RouteConfigName,
	}}
	return listener(rt, h)
}

// adsSource is a config source meaning "over the ADS stream".
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// ADSBootstrap is the bootstrap for an Envoy that takes its listeners and
// clusters from llmproc over ADS: the admin address, a node identity, the
// static llmproc cluster (HTTP/2; ext_proc and ADS share it), and
// dynamic_resources pointing LDS and CDS at the ADS stream to that cluster.
func ADSBootstrap(rt *config.Runtime) (*bootstrapv3.Bootstrap, error) {
	admin, err := socketAddress(rt.Source.Envoy.Admin)
	if err != nil {
		return nil, fmt.Errorf("envoy.admin: %w", err)
	}
	llm, err := LLMProcCluster(rt)
	if err != nil {
		return nil, err
	}
	return &bootstrapv3.Bootstrap{
		Node:  &corev3.Node{Id: ADSNodeID, Cluster: ADSNodeCluster},
		Admin: &bootstrapv3.Admin{Address: admin},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Clusters: []*clusterv3.Cluster{llm},
		},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:                   corev3.ApiConfigSource_GRPC,
				TransportApiVersion:       corev3.ApiVersion_V3,
				SetNodeOnFirstMessageOnly: true,
				GrpcServices: []*corev3.GrpcService{{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: LLMProcClusterName}},
				}},
			},
			LdsConfig: adsSource(),
			CdsConfig: adsSource(),
		},
	}, nil
}

// Inline is the static bootstrap equivalent to an ADS bootstrap once Envoy
// has received res: the resources added to static_resources, each
// listener's RDS replaced by the route configuration it names, and
// dynamic_resources dropped. For a runtime rt, Inline(ADSBootstrap(rt),
// ADSResources(rt)) equals Bootstrap(rt) but for the node. bs is not changed.
func Inline(bs *bootstrapv3.Bootstrap, res *Resources) (*bootstrapv3.Bootstrap, error) {
	out := proto.Clone(bs).(*bootstrapv3.Bootstrap)
	out.DynamicResources = nil
	if out.StaticResources == nil {
		out.StaticResources = &bootstrapv3.Bootstrap_StaticResources{}
	}
	sr := out.StaticResources
	routes := map[string]*routev3.RouteConfiguration{}
	for _, r := range res.Routes {
		routes[r.GetName()] = r
	}
	for _, l := range res.Listeners {
		l = proto.Clone(l).(*listenerv3.Listener)
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() != HCMFilterName {
					continue
				}
				h := &hcmv3.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
					return nil, fmt.Errorf("%w: listener %q: %v", ErrMalformed, l.GetName(), err)
				}
				rds := h.GetRds()
				if rds == nil {
					continue
				}
				rc := routes[rds.GetRouteConfigName()]
				if rc == nil || rds.GetConfigSource().GetAds() == nil {
					return nil, fmt.Errorf("%w: listener %q: RDS %q is not a route configuration served over ADS",
						ErrADS, l.GetName(), rds.GetRouteConfigName())
				}
				h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: proto.Clone(rc).(*routev3.RouteConfiguration)}
				f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: typed(h)}
			}
		}
		sr.Listeners = append(sr.Listeners, l)
	}
	for _, c := range res.Clusters {
		sr.Clusters = append(sr.Clusters, proto.Clone(c).(*clusterv3.Cluster))
	}
	return out, nil
}

// CheckADS checks an ADS bootstrap together with the resources llmproc
// serves it: dynamic_resources take LDS and CDS from ADS, and ADS runs over
// a static HTTP/2 cluster; then everything Check checks, on Inline(bs, res).
func CheckADS(bs *bootstrapv3.Bootstrap, res *Resources, rt *config.Runtime) error {
	c := &checker{rt: rt, max: rt.Source.Limits.MaxRequestBytes, clusters: map[string]*clusterv3.Cluster{}}
	for _, cl := range bs.GetStaticResources().GetClusters() {
		c.clusters[cl.GetName()] = cl
	}
	dr := bs.GetDynamicResources()
	for _, s := range []struct {
		name string
		src  *corev3.ConfigSource
	}{{"lds_config", dr.GetLdsConfig()}, {"cds_config", dr.GetCdsConfig()}} {
		if s.src.GetAds() == nil || s.src.GetResourceApiVersion() != corev3.ApiVersion_V3 {
			c.fail(ErrADS, "dynamic_resources.%s is not {ads: {}, resource_api_version: V3}", s.name)
		}
	}
	ads := dr.GetAdsConfig()
	if ads.GetApiType() != corev3.ApiConfigSource_GRPC || ads.GetTransportApiVersion() != corev3.ApiVersion_V3 || len(ads.GetGrpcServices()) != 1 {
		c.fail(ErrADS, "dynamic_resources.ads_config is not one GRPC service with transport_api_version V3")
	}
	name := LLMProcClusterName
	if gs := ads.GetGrpcServices(); len(gs) > 0 {
		name = gs[0].GetEnvoyGrpc().GetClusterName()
	}
	if cl := c.clusters[name]; cl == nil {
		c.fail(ErrUnknownCluster, "dynamic_resources.ads_config: no static cluster %q", name)
	} else if opts, err := c.protocolOptions(cl); err == nil && opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		c.fail(ErrExtProcNotHTTP2, "dynamic_resources.ads_config: cluster %q needs explicit_http_config.http2_protocol_options", name)
	}
	in, err := Inline(bs, res)
	if err != nil {
		c.errs = append(c.errs, err)
	} else if err := Check(in, rt); err != nil {
		c.errs = append(c.errs, err)
	}
	return errors.Join(c.errs...)
}

// CheckADSBootstrap is CheckADS with the resources llmproc serves for rt,
// for checking `envoy-config -ads` output; its signature matches Check.
func CheckADSBootstrap(bs *bootstrapv3.Bootstrap, rt *config.Runtime) error {
	res, err := ADSResources(rt)
	if err != nil {
		return err
	}
	return CheckADS(bs, res, rt)
}
