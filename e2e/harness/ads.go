package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/llmproc/llmproc/envoy"
)

// Envoy's xDS timings the ADS client follows.
const (
	// adsInitialFetch is Envoy's default initial_fetch_timeout. Envoy goes
	// on without the resources when it passes; Start fails instead, having
	// nothing to serve.
	adsInitialFetch = 15 * time.Second
	// adsBackoffBase and adsBackoffMax bound the jittered exponential
	// back-off between ADS stream attempts (Envoy's gRPC mux defaults).
	adsBackoffBase = 500 * time.Millisecond
	adsBackoffMax  = 30 * time.Second
)

// adsClient is Envoy's side of the aggregated discovery service, state of
// the world: one gRPC stream to the ADS cluster carrying CDS, LDS and RDS.
// Its fields below conn are owned by the run goroutine.
type adsClient struct {
	e    *Envoy
	bs   *bootstrapv3.Bootstrap
	opts Options
	log  *slog.Logger
	node *corev3.Node
	once bool // set_node_on_first_message_only
	conn *grpc.ClientConn

	subs   map[string]*subscription // by type URL
	order  []string                 // type URLs in the order subscribed
	state  adsState                 // what was accepted
	static map[string]bool          // static cluster names, which CDS cannot replace
	served bool                     // a plan from ADS is installed
	failed error                    // the initial configuration was rejected
	first  chan error               // the initial outcome, for Start

	mu   sync.Mutex // guards note
	note string     // what the client waits for, for Start's timeout error
}

// subscription is one resource type on the stream.
type subscription struct {
	url     string
	version string   // version_info last accepted
	nonce   string   // nonce of the last response on this stream
	names   []string // resource_names; none: every resource (wildcard)
}

func (s *subscription) request() *discoveryv3.DiscoveryRequest {
	return &discoveryv3.DiscoveryRequest{TypeUrl: s.url, VersionInfo: s.version,
		ResourceNames: slices.Clone(s.names), ResponseNonce: s.nonce}
}

// adsState is the last accepted resources of each type.
type adsState struct {
	haveCDS, haveLDS bool
	clusters         []*clusterv3.Cluster
	listeners        []*listenerv3.Listener
	routes           map[string]*routev3.RouteConfiguration
	rds              []rdsRef // the route configurations the listeners name
}

// rdsRef is a route configuration an HCM takes from RDS.
type rdsRef struct {
	statPrefix, name string
}

// startADS checks the bootstrap's dynamic_resources, opens the ADS stream
// and waits until the first plan built from its resources is installed.
func (e *Envoy) startADS(ctx context.Context, bs *bootstrapv3.Bootstrap, opts Options) error {
	a, target, err := newADS(e, bs, opts)
	if err != nil {
		return err
	}
	if a.conn, err = dialProc(target); err != nil {
		return fmt.Errorf("dynamic_resources.ads_config: %w", err)
	}
	e.ads, e.adsEnd = a, make(chan struct{})
	go func() {
		defer close(e.adsEnd)
		a.run(e.root)
	}()
	t := time.NewTimer(adsInitialFetch)
	defer t.Stop()
	select {
	case err := <-a.first:
		if err != nil {
			return fmt.Errorf("ADS: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ADS: %w (%s)", ctx.Err(), a.waiting())
	case <-t.C:
		return fmt.Errorf("ADS: no complete configuration within %v (initial_fetch_timeout); %s", adsInitialFetch, a.waiting())
	}
}

// newADS reads the ADS settings of bs: LDS and CDS over ADS, ADS over gRPC
// (SotW, v3) to a static HTTP/2 cluster, and a node with id and cluster.
// It returns the client and the ADS cluster's address.
func newADS(e *Envoy, bs *bootstrapv3.Bootstrap, opts Options) (*adsClient, string, error) {
	dr := bs.GetDynamicResources()
	if err := checkFields(dr, "dynamic_resources"); err != nil {
		return nil, "", err
	}
	for _, s := range []struct {
		path string
		src  *corev3.ConfigSource
	}{{"dynamic_resources.cds_config", dr.GetCdsConfig()}, {"dynamic_resources.lds_config", dr.GetLdsConfig()}} {
		if err := checkADSSource(s.src, s.path); err != nil {
			return nil, "", err
		}
	}
	ads := dr.GetAdsConfig()
	if ads == nil {
		return nil, "", errors.New("dynamic_resources.ads_config: missing")
	}
	if err := checkFields(ads, "dynamic_resources.ads_config"); err != nil {
		return nil, "", err
	}
	if ads.GetApiType() != corev3.ApiConfigSource_GRPC {
		return nil, "", fmt.Errorf("dynamic_resources.ads_config.api_type: %v unsupported by the harness (GRPC only)", ads.GetApiType())
	}
	if ads.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		return nil, "", errors.New("dynamic_resources.ads_config.transport_api_version: want V3")
	}
	if len(ads.GetGrpcServices()) != 1 {
		return nil, "", fmt.Errorf("dynamic_resources.ads_config.grpc_services: want one, got %d", len(ads.GetGrpcServices()))
	}
	gs := ads.GetGrpcServices()[0]
	if err := checkFields(gs, "dynamic_resources.ads_config.grpc_services[0]"); err != nil {
		return nil, "", err
	}
	if err := checkFields(gs.GetEnvoyGrpc(), "dynamic_resources.ads_config.grpc_services[0].envoy_grpc"); err != nil {
		return nil, "", err
	}
	name := gs.GetEnvoyGrpc().GetClusterName()
	if name == "" {
		return nil, "", errors.New("dynamic_resources.ads_config.grpc_services[0]: envoy_grpc.cluster_name required (google_grpc unsupported by the harness)")
	}
	a := &adsClient{e: e, bs: bs, opts: opts, once: ads.GetSetNodeOnFirstMessageOnly(),
		subs: map[string]*subscription{}, static: map[string]bool{}, first: make(chan error, 1),
		log: e.logger.With("component", "ads")}
	var target string
	for i, c := range bs.GetStaticResources().GetClusters() {
		a.static[c.GetName()] = true
		if c.GetName() != name {
			continue
		}
		cl, err := compileCluster(c, fmt.Sprintf("clusters[%d]", i))
		if err != nil {
			return nil, "", err
		}
		if !cl.http2 || len(cl.hosts) == 0 {
			return nil, "", fmt.Errorf("dynamic_resources.ads_config: cluster %q must be HTTP/2 with an endpoint", name)
		}
		target = cl.hosts[0].addr
	}
	if target == "" {
		return nil, "", fmt.Errorf("dynamic_resources.ads_config: no static cluster %q", name)
	}
	// Envoy refuses CDS and LDS without both (Config::Utility::checkLocalInfo).
	n := bs.GetNode()
	if n.GetId() == "" || n.GetCluster() == "" {
		return nil, "", errors.New("node: id and cluster are required with dynamic_resources")
	}
	a.node = proto.Clone(n).(*corev3.Node)
	a.subscribe(resourcev3.ClusterType, nil)
	a.setNote("waiting for CDS")
	return a, target, nil
}

// checkADSSource accepts only {ads: {}, resource_api_version: V3}.
func checkADSSource(src *corev3.ConfigSource, path string) error {
	if src == nil {
		return fmt.Errorf("%s: missing (the harness takes clusters and listeners from ADS or from static_resources, not both ways)", path)
	}
	if err := checkFields(src, path); err != nil {
		return err
	}
	if src.GetAds() == nil || src.GetResourceApiVersion() != corev3.ApiVersion_V3 {
		return fmt.Errorf("%s: want {ads: {}, resource_api_version: V3} (other sources unsupported by the harness)", path)
	}
	return nil
}

func (a *adsClient) subscribe(url string, names []string) *subscription {
	s := a.subs[url]
	if s == nil {
		s = &subscription{url: url}
		a.subs[url] = s
		a.order = append(a.order, url)
	}
	s.names = names
	return s
}

func (a *adsClient) setNote(n string) {
	a.mu.Lock()
	a.note = n
	a.mu.Unlock()
}

func (a *adsClient) waiting() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.note
}

// run keeps an ADS stream open until ctx ends, reconnecting with back-off.
func (a *adsClient) run(ctx context.Context) {
	backoff := adsBackoffBase
	for {
		got, err := a.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff = adsBackoffBase
		}
		wait := backoff/2 + rand.N(backoff/2)
		a.log.Warn("ADS stream ended; retrying", "err", err, "in", wait)
		if !a.served {
			a.setNote(fmt.Sprintf("%s; last stream error: %v", a.waiting(), err))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, adsBackoffMax)
	}
}

// stream runs one ADS stream: it (re)sends a request per subscribed type,
// with the versions accepted so far, then answers every response with an
// ACK or a NACK. got reports whether a response arrived.
func (a *adsClient) stream(ctx context.Context) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(a.conn).StreamAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	first := true
	send := func(r *discoveryv3.DiscoveryRequest) error {
		if first || !a.once {
			r.Node = a.node
		}
		first = false
		return s.Send(r)
	}
	for _, url := range a.order {
		sub := a.subs[url]
		sub.nonce = "" // nonces belong to the stream that sent them
		if err := send(sub.request()); err != nil {
			return false, err
		}
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return got, err
		}
		got = true
		for _, r := range a.handle(resp) {
			if err := send(r); err != nil {
				return got, err
			}
		}
		if a.failed != nil {
			// Start fails and closes the stream; the NACK goes first.
			_ = s.CloseSend()
			a.report(a.failed)
			<-ctx.Done()
			return got, ctx.Err()
		}
	}
}

// handle applies one response and returns the requests to send: its ACK
// (version_info = the response's) or NACK (version_info = the last
// accepted, error_detail = why), each with the response's nonce, then any
// new subscription: LDS once clusters are in, RDS for the route
// configurations an accepted listener names.
func (a *adsClient) handle(resp *discoveryv3.DiscoveryResponse) []*discoveryv3.DiscoveryRequest {
	sub := a.subs[resp.GetTypeUrl()]
	if sub == nil {
		// Envoy drops responses for a type nothing watches.
		a.log.Warn("ADS response for a type not subscribed to; ignored", "type", resp.GetTypeUrl())
		return nil
	}
	sub.nonce = resp.GetNonce()
	stats := a.stats(resp.GetTypeUrl())
	err := a.update(resp)
	if err != nil {
		for _, s := range stats {
			a.e.count(s+"update_rejected", 1)
		}
		a.log.Warn("ADS update rejected", "type", resp.GetTypeUrl(), "version", resp.GetVersionInfo(), "err", err)
		if !a.served {
			a.failed = err // reported once the NACK is sent
		}
		nack := sub.request()
		nack.ErrorDetail = &rpcstatus.Status{Code: int32(codes.Internal), Message: err.Error()}
		return []*discoveryv3.DiscoveryRequest{nack}
	}
	for _, s := range a.stats(resp.GetTypeUrl()) {
		a.e.count(s+"update_success", 1)
	}
	sub.version = resp.GetVersionInfo()
	out := []*discoveryv3.DiscoveryRequest{sub.request()}
	switch resp.GetTypeUrl() {
	case resourcev3.ClusterType:
		if a.subs[resourcev3.ListenerType] == nil {
			out = append(out, a.subscribe(resourcev3.ListenerType, nil).request())
		}
	case resourcev3.ListenerType:
		var names []string
		for _, r := range a.state.rds {
			if !slices.Contains(names, r.name) {
				names = append(names, r.name)
			}
		}
		slices.Sort(names)
		if rds := a.subs[resourcev3.RouteType]; len(names) > 0 && (rds == nil || !slices.Equal(rds.names, names)) {
			out = append(out, a.subscribe(resourcev3.RouteType, names).request())
		}
	}
	if !a.served {
		a.setNote("waiting for " + a.missing())
	}
	return out
}

// stats are Envoy's stat prefixes for a resource type's updates.
func (a *adsClient) stats(url string) []string {
	switch url {
	case resourcev3.ClusterType:
		return []string{"cluster_manager.cds."}
	case resourcev3.ListenerType:
		return []string{"listener_manager.lds."}
	}
	var out []string
	for _, r := range a.state.rds {
		out = append(out, "http."+r.statPrefix+".rds."+r.name+".")
	}
	return out
}

// missing names what the configuration still lacks.
func (a *adsClient) missing() string {
	var out []string
	if !a.state.haveCDS {
		out = append(out, "CDS")
	}
	if !a.state.haveLDS {
		out = append(out, "LDS")
	}
	for _, r := range a.state.rds {
		if a.state.routes[r.name] == nil {
			out = append(out, fmt.Sprintf("RDS %q", r.name))
		}
	}
	return strings.Join(out, ", ")
}

func (a *adsClient) report(err error) {
	if !a.served {
		select {
		case a.first <- err:
		default:
		}
	}
}

// update decodes a response into a new state. Once the state is complete
// (clusters, listeners and every route configuration they name), it is
// compiled and installed; an error rejects the response and keeps the old
// state. An incomplete state is kept as it is: a listener waits for its
// routes, as Envoy's listener warms.
func (a *adsClient) update(resp *discoveryv3.DiscoveryResponse) error {
	next := a.state
	switch resp.GetTypeUrl() {
	case resourcev3.ClusterType:
		cs, err := decode(resp, func() *clusterv3.Cluster { return &clusterv3.Cluster{} })
		if err != nil {
			return err
		}
		next.clusters = nil
		for _, c := range cs {
			if a.static[c.GetName()] {
				// Envoy's cluster manager skips a CDS cluster named like a
				// static one (addOrUpdateCluster returns false).
				a.log.Warn("CDS cluster named like a static cluster; skipped", "cluster", c.GetName())
				continue
			}
			next.clusters = append(next.clusters, c)
		}
		next.haveCDS = true
	case resourcev3.ListenerType:
		ls, err := decode(resp, func() *listenerv3.Listener { return &listenerv3.Listener{} })
		if err != nil {
			return err
		}
		refs, err := rdsRefs(ls)
		if err != nil {
			return err
		}
		next.listeners, next.rds, next.haveLDS = ls, refs, true
	case resourcev3.RouteType:
		rs, err := decode(resp, func() *routev3.RouteConfiguration { return &routev3.RouteConfiguration{} })
		if err != nil {
			return err
		}
		next.routes = map[string]*routev3.RouteConfiguration{}
		for _, r := range rs {
			next.routes[r.GetName()] = r
		}
	}
	if !next.complete() {
		if resp.GetTypeUrl() == resourcev3.ListenerType && next.haveCDS {
			// Envoy checks a listener when it arrives, before its routes:
			// compiled with empty route configurations, it is not served.
			if _, err := a.compile(next.withEmptyRoutes()); err != nil {
				return err
			}
		}
		a.state = next
		return nil
	}
	p, err := a.compile(next)
	if err != nil {
		return err
	}
	if err := a.e.install(p); err != nil {
		return err
	}
	a.state = next
	if !a.served {
		a.report(nil)
		a.served = true
	}
	a.log.Info("ADS configuration installed", "type", resp.GetTypeUrl(), "version", resp.GetVersionInfo())
	return nil
}

// compile folds s into the bootstrap and compiles it, taking over the
// served plan's unchanged clusters.
func (a *adsClient) compile(s adsState) (*plan, error) {
	bs, err := s.fold(a.bs)
	if err != nil {
		return nil, err
	}
	return compile(bs, a.opts, &dynamic{prev: a.e.p.Load(), rds: len(s.rds) > 0})
}

// decode unmarshals a response's resources, which must all be of its type
// and have distinct names.
func decode[T interface {
	proto.Message
	GetName() string
}](resp *discoveryv3.DiscoveryResponse, mk func() T) ([]T, error) {
	var out []T
	seen := map[string]bool{}
	for i, r := range resp.GetResources() {
		if r.GetTypeUrl() != resp.GetTypeUrl() {
			return nil, fmt.Errorf("resources[%d]: type %s in a %s response", i, r.GetTypeUrl(), resp.GetTypeUrl())
		}
		m := mk()
		if err := r.UnmarshalTo(m); err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		if seen[m.GetName()] {
			return nil, fmt.Errorf("resources[%d]: duplicate name %q", i, m.GetName())
		}
		seen[m.GetName()] = true
		out = append(out, m)
	}
	return out, nil
}

// rdsRefs lists the route configurations the listeners' HCMs take from RDS,
// which must be served over ADS.
func rdsRefs(ls []*listenerv3.Listener) ([]rdsRef, error) {
	var out []rdsRef
	hcmName := (&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName()
	for _, l := range ls {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetTypedConfig().MessageName() != hcmName {
					continue
				}
				h := &hcmv3.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
					return nil, fmt.Errorf("listener %q: %w", l.GetName(), err)
				}
				rds := h.GetRds()
				if rds == nil {
					continue
				}
				if err := checkADSSource(rds.GetConfigSource(), fmt.Sprintf("listener %q: rds.config_source", l.GetName())); err != nil {
					return nil, err
				}
				out = append(out, rdsRef{statPrefix: h.GetStatPrefix(), name: rds.GetRouteConfigName()})
			}
		}
	}
	return out, nil
}

// complete: clusters and listeners arrived, and every route configuration
// the listeners name.
func (s *adsState) complete() bool {
	if !s.haveCDS || !s.haveLDS {
		return false
	}
	for _, r := range s.rds {
		if s.routes[r.name] == nil {
			return false
		}
	}
	return true
}

// withEmptyRoutes is s with an empty route configuration for each one the
// listeners name that has not arrived.
func (s adsState) withEmptyRoutes() adsState {
	routes := maps.Clone(s.routes)
	if routes == nil {
		routes = map[string]*routev3.RouteConfiguration{}
	}
	for _, r := range s.rds {
		if routes[r.name] == nil {
			routes[r.name] = &routev3.RouteConfiguration{Name: r.name}
		}
	}
	s.routes = routes
	return s
}

// fold is the static bootstrap Envoy runs once it holds s (envoy.Inline).
func (s *adsState) fold(bs *bootstrapv3.Bootstrap) (*bootstrapv3.Bootstrap, error) {
	if n := len(bs.GetStaticResources().GetListeners()) + len(s.listeners); n != 1 {
		return nil, fmt.Errorf("%d listeners (static and from LDS): the harness serves exactly one", n)
	}
	res := &envoy.Resources{Clusters: s.clusters, Listeners: s.listeners}
	for _, r := range s.rds {
		if rc := s.routes[r.name]; !slices.Contains(res.Routes, rc) {
			res.Routes = append(res.Routes, rc)
		}
	}
	return envoy.Inline(bs, res)
}
