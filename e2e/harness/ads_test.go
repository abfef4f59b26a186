package harness

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// hangGuard bounds every wait on the fake ADS server; it turns a hang into
// a failure and is never what a test asserts.
const hangGuard = 30 * time.Second

// fakeADS is a scripted ADS server: tests read the requests Envoy sends
// and choose every response.
type fakeADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	reqs  chan *discoveryv3.DiscoveryRequest
	resps chan *discoveryv3.DiscoveryResponse
	kill  chan error // ends the current stream with the error
	addr  string
}

func startADS(t *testing.T) *fakeADS {
	t.Helper()
	f := &fakeADS{reqs: make(chan *discoveryv3.DiscoveryRequest, 100),
		resps: make(chan *discoveryv3.DiscoveryResponse), kill: make(chan error)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	s := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(s, f)
	go s.Serve(ln) //nolint:errcheck
	t.Cleanup(s.Stop)
	return f
}

func (f *fakeADS) StreamAggregatedResources(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			f.reqs <- r
		}
	}()
	for {
		select {
		case r := <-f.resps:
			if err := s.Send(r); err != nil {
				return err
			}
		case err := <-f.kill:
			return err
		case <-s.Context().Done():
			return nil
		}
	}
}

// next returns the next request Envoy sent.
func (f *fakeADS) next(t *testing.T) *discoveryv3.DiscoveryRequest {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(hangGuard):
		t.Fatal("no ADS request")
		return nil
	}
}

// send sends a response of type url holding res.
func (f *fakeADS) send(t *testing.T, url, version, nonce string, res ...proto.Message) {
	t.Helper()
	resp := &discoveryv3.DiscoveryResponse{TypeUrl: url, VersionInfo: version, Nonce: nonce}
	for _, m := range res {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		resp.Resources = append(resp.Resources, a)
	}
	select {
	case f.resps <- resp:
	case <-time.After(hangGuard):
		t.Fatal("no ADS stream to send on")
	}
}

// want checks a request: type, version_info, nonce, resource_names, node
// (nil: none sent) and whether it is a NACK whose message holds nack.
func want(t *testing.T, r *discoveryv3.DiscoveryRequest, url, version, nonce string, names []string, node bool, nack string) {
	t.Helper()
	if r.GetTypeUrl() != url || r.GetVersionInfo() != version || r.GetResponseNonce() != nonce || !slices.Equal(r.GetResourceNames(), names) {
		t.Errorf("request {type %s, version %q, nonce %q, names %q}, want {%s, %q, %q, %q}",
			r.GetTypeUrl(), r.GetVersionInfo(), r.GetResponseNonce(), r.GetResourceNames(), url, version, nonce, names)
	}
	if got := r.GetNode() != nil; got != node {
		t.Errorf("%s request carries node: %v, want %v", url, got, node)
	} else if node && (r.GetNode().GetId() != "n1" || r.GetNode().GetCluster() != "c1") {
		t.Errorf("node %v, want the bootstrap's", r.GetNode())
	}
	switch d := r.GetErrorDetail(); {
	case nack == "" && d != nil:
		t.Errorf("%s request is a NACK: %v", url, d)
	case nack != "" && (d == nil || d.GetCode() != int32(codes.Internal) || !strings.Contains(d.GetMessage(), nack)):
		t.Errorf("%s request: error_detail %v, want a NACK with %q", url, d, nack)
	}
}

// adsFixture is the test bootstrap split the way an ADS server serves it:
// an ADS bootstrap (node, the ext_proc cluster, the ADS cluster "xds"),
// the pool clusters for CDS, the listener for LDS (routes from RDS "r")
// and its route configuration.
type adsFixture struct {
	bs       *bootstrapv3.Bootstrap
	clusters map[string]*clusterv3.Cluster
	listener *listenerv3.Listener
	routes   *routev3.RouteConfiguration
}

func newADSFixture(t *testing.T, p bsParams, adsAddr string) *adsFixture {
	t.Helper()
	p.RouterFilterOn = true
	static, err := LoadBootstrapYAML(renderBootstrap(t, p))
	if err != nil {
		t.Fatal(err)
	}
	fx := &adsFixture{clusters: map[string]*clusterv3.Cluster{}}
	bs := &bootstrapv3.Bootstrap{
		Node:             &corev3.Node{Id: "n1", Cluster: "c1"},
		StaticResources:  &bootstrapv3.Bootstrap_StaticResources{},
		DynamicResources: adsDynamic("xds"),
	}
	for _, c := range static.GetStaticResources().GetClusters() {
		if c.GetName() != "ext_proc" {
			fx.clusters[c.GetName()] = c
			continue
		}
		bs.StaticResources.Clusters = append(bs.StaticResources.Clusters, c)
		x := proto.Clone(c).(*clusterv3.Cluster)
		x.Name, x.LoadAssignment = "xds", loadAssignment("xds", adsAddr)
		bs.StaticResources.Clusters = append(bs.StaticResources.Clusters, x)
	}
	fx.bs = bs
	l := static.GetStaticResources().GetListeners()[0]
	h := &hcmv3.HttpConnectionManager{}
	if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(h); err != nil {
		t.Fatal(err)
	}
	fx.routes = h.GetRouteConfig()
	fx.routes.Name = "r"
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "r", ConfigSource: adsSource()}}
	a, err := anypb.New(h)
	if err != nil {
		t.Fatal(err)
	}
	l.GetFilterChains()[0].GetFilters()[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	fx.listener = l
	return fx
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

func adsDynamic(cluster string) *bootstrapv3.Bootstrap_DynamicResources {
	return &bootstrapv3.Bootstrap_DynamicResources{
		AdsConfig: &corev3.ApiConfigSource{
			ApiType:                   corev3.ApiConfigSource_GRPC,
			TransportApiVersion:       corev3.ApiVersion_V3,
			SetNodeOnFirstMessageOnly: true,
			GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster}}}},
		},
		LdsConfig: adsSource(),
		CdsConfig: adsSource(),
	}
}

func loadAssignment(name, addr string) *endpointv3.ClusterLoadAssignment {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
		LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(n)}}}},
		}}}},
	}}}
}

// poolRoute is a route to cluster pool/<name> on x-llmproc-pool: name.
func poolRoute(name string) *routev3.Route {
	return &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
			Headers: []*routev3.HeaderMatcher{{Name: "x-llmproc-pool", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
				StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: name}}}}}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "pool/" + name}}},
	}
}

// startAsync runs Start in the background, for tests that serve its ADS;
// the Envoy it starts is closed when the test ends.
func startAsync(t *testing.T, bs *bootstrapv3.Bootstrap) *pending {
	t.Helper()
	p := &pending{ch: make(chan startResult, 1)}
	go func() {
		e, err := Start(context.Background(), bs, Options{ListenAddr: "127.0.0.1:0"})
		p.ch <- startResult{e, err}
	}()
	t.Cleanup(func() {
		if r := p.wait(); r.e != nil {
			r.e.Close() //nolint:errcheck
		}
	})
	return p
}

type startResult struct {
	e   *Envoy
	err error
}

// pending is a Start running in the background.
type pending struct {
	ch  chan startResult
	mu  sync.Mutex
	got bool
	r   startResult
}

// wait returns Start's result once it has returned.
func (p *pending) wait() startResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.got {
		p.r, p.got = <-p.ch, true
	}
	return p.r
}

// returned reports whether Start has returned, without waiting.
func (p *pending) returned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.got {
		select {
		case p.r = <-p.ch:
			p.got = true
		default:
		}
	}
	return p.got
}

// TestADS follows one harness through an ADS stream's life: the initial
// fetch (CDS, then LDS, then the RDS the listener names, each ACKed with
// its version and nonce, the node on the first request only), serving,
// a NACKed update that changes nothing, a live update of clusters and
// routes that new requests use, and a reconnect that resends the accepted
// versions.
func TestADS(t *testing.T) {
	var pool atomic.Value
	pool.Store("a")
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		return routeTo(pool.Load().(string), true)(role, req)
	}}
	a, a2, c := newUpstream(t, "a", nil), newUpstream(t, "a2", nil), newUpstream(t, "c", nil)
	ads := startADS(t)
	fx := newADSFixture(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}, PoolB: []endpoint{{a.addr, 0, "b"}}}, ads.addr)
	started := startAsync(t, fx.bs)

	want(t, ads.next(t), resourcev3.ClusterType, "", "", nil, true, "")
	ads.send(t, resourcev3.ClusterType, "c1", "n1", fx.clusters["pool/a"], fx.clusters["pool/b"])
	want(t, ads.next(t), resourcev3.ClusterType, "c1", "n1", nil, false, "")
	want(t, ads.next(t), resourcev3.ListenerType, "", "", nil, false, "")
	ads.send(t, resourcev3.ListenerType, "l1", "n2", fx.listener)
	want(t, ads.next(t), resourcev3.ListenerType, "l1", "n2", nil, false, "")
	want(t, ads.next(t), resourcev3.RouteType, "", "", []string{"r"}, false, "")
	if started.returned() {
		t.Fatalf("Start returned before the route configuration arrived: %v", started.wait().err)
	}
	ads.send(t, resourcev3.RouteType, "r1", "n3", fx.routes)
	want(t, ads.next(t), resourcev3.RouteType, "r1", "n3", []string{"r"}, false, "")
	r := started.wait()
	if r.err != nil {
		t.Fatal(r.err)
	}
	e := r.e
	get := func(p string) (int, string) {
		t.Helper()
		pool.Store(p)
		resp, body := mustDo(t, e, "POST", "/v1/chat/completions", `{"model":"m"}`, nil)
		return resp.StatusCode, body
	}
	if code, body := get("a"); code != 200 || body != `{"from":"a"}` {
		t.Fatalf("pool a: %d %s", code, body)
	}

	// A cluster the harness cannot run (EDS) is NACKed with the version
	// last accepted; the running configuration stays.
	eds := proto.Clone(fx.clusters["pool/a"]).(*clusterv3.Cluster)
	eds.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
	ads.send(t, resourcev3.ClusterType, "c2", "n4", eds, fx.clusters["pool/b"])
	want(t, ads.next(t), resourcev3.ClusterType, "c1", "n4", nil, false, "EDS")
	if code, body := get("a"); code != 200 || body != `{"from":"a"}` {
		t.Fatalf("after the NACK: %d %s", code, body)
	}

	// Live update: pool/a moves to a2, pool/c appears, then its route and
	// one to a cluster CDS does not have (fine over RDS, where
	// validate_clusters defaults to false). The harness installs a
	// configuration before it ACKs it.
	moved := proto.Clone(fx.clusters["pool/a"]).(*clusterv3.Cluster)
	moved.LoadAssignment = loadAssignment("pool/a", a2.addr)
	pc := proto.Clone(fx.clusters["pool/b"]).(*clusterv3.Cluster)
	pc.Name, pc.LoadAssignment = "pool/c", loadAssignment("pool/c", c.addr)
	ads.send(t, resourcev3.ClusterType, "c3", "n5", moved, fx.clusters["pool/b"], pc)
	want(t, ads.next(t), resourcev3.ClusterType, "c3", "n5", nil, false, "")
	if code, body := get("a"); code != 200 || body != `{"from":"a2"}` {
		t.Errorf("pool a after CDS update: %d %s", code, body)
	}
	// Until RDS routes it, pool c takes the catch-all route to pool/a.
	if code, body := get("c"); code != 200 || body != `{"from":"a2"}` {
		t.Errorf("pool c before its route: %d %s", code, body)
	}
	rc := proto.Clone(fx.routes).(*routev3.RouteConfiguration)
	vh := rc.GetVirtualHosts()[0]
	vh.Routes = append([]*routev3.Route{poolRoute("c"), poolRoute("gone")}, vh.Routes...)
	ads.send(t, resourcev3.RouteType, "r2", "n6", rc)
	want(t, ads.next(t), resourcev3.RouteType, "r2", "n6", []string{"r"}, false, "")
	if code, body := get("c"); code != 200 || body != `{"from":"c"}` {
		t.Errorf("pool c after RDS update: %d %s", code, body)
	}
	if code, _ := get("gone"); code != 503 {
		t.Errorf("route to a cluster CDS does not have: %d, want 503 (cluster_not_found)", code)
	}

	// The stream breaks: the harness reconnects, sends the node again and
	// every subscription with the versions it accepted, and keeps serving.
	ads.kill <- status.Error(codes.Unavailable, "control plane restarts")
	want(t, ads.next(t), resourcev3.ClusterType, "c3", "", nil, true, "")
	want(t, ads.next(t), resourcev3.ListenerType, "l1", "", nil, false, "")
	want(t, ads.next(t), resourcev3.RouteType, "r2", "", []string{"r"}, false, "")
	if code, body := get("c"); code != 200 || body != `{"from":"c"}` {
		t.Errorf("pool c after reconnect: %d %s", code, body)
	}

	got := e.Counters()
	for name, n := range map[string]uint64{
		"cluster_manager.cds.update_success":  2,
		"cluster_manager.cds.update_rejected": 1,
		"listener_manager.lds.update_success": 1,
		"http.llm.rds.r.update_success":       2,
	} {
		if got[name] != n {
			t.Errorf("counter %s = %d, want %d", name, got[name], n)
		}
	}
}

// TestADSInitialNACKFailsStart: a first listener the harness cannot run
// is NACKed when it arrives, before its routes, and Start fails with the
// reason.
func TestADSInitialNACKFailsStart(t *testing.T) {
	ads := startADS(t)
	fx := newADSFixture(t, bsParams{Proc: "127.0.0.1:1", PoolA: []endpoint{{"127.0.0.1:2", 0, "a"}}}, ads.addr)
	started := startAsync(t, fx.bs)
	want(t, ads.next(t), resourcev3.ClusterType, "", "", nil, true, "")
	ads.send(t, resourcev3.ClusterType, "c1", "n1", fx.clusters["pool/a"], fx.clusters["pool/b"])
	want(t, ads.next(t), resourcev3.ClusterType, "c1", "n1", nil, false, "")
	want(t, ads.next(t), resourcev3.ListenerType, "", "", nil, false, "")
	bad := proto.Clone(fx.listener).(*listenerv3.Listener)
	bad.ListenerFilters = []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector"}}
	ads.send(t, resourcev3.ListenerType, "l1", "n2", bad)
	want(t, ads.next(t), resourcev3.ListenerType, "", "n2", nil, false, "listener_filters")
	if r := started.wait(); r.err == nil || !strings.Contains(r.err.Error(), "listener_filters") {
		t.Errorf("Start: %v, want the NACK's reason", r.err)
	}
}

// TestADSBootstrapUnsupported: ADS settings the harness does not implement
// make Start fail before any stream.
func TestADSBootstrapUnsupported(t *testing.T) {
	fx := newADSFixture(t, bsParams{Proc: "127.0.0.1:1", PoolA: []endpoint{{"127.0.0.1:2", 0, "a"}}}, "127.0.0.1:3")
	tests := []struct {
		name   string
		change func(bs *bootstrapv3.Bootstrap)
		want   string
	}{
		{"delta xDS", func(bs *bootstrapv3.Bootstrap) {
			bs.DynamicResources.AdsConfig.ApiType = corev3.ApiConfigSource_DELTA_GRPC
		}, "DELTA_GRPC"},
		{"LDS from a file", func(bs *bootstrapv3.Bootstrap) {
			bs.DynamicResources.LdsConfig = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Path{Path: "/tmp/lds.yaml"}}
		}, "lds_config"},
		{"static listeners, CDS only", func(bs *bootstrapv3.Bootstrap) { bs.DynamicResources.LdsConfig = nil }, "lds_config: missing"},
		{"initial_fetch_timeout", func(bs *bootstrapv3.Bootstrap) {
			bs.DynamicResources.CdsConfig.InitialFetchTimeout = durationpb.New(time.Second)
		}, "initial_fetch_timeout"},
		{"no node", func(bs *bootstrapv3.Bootstrap) { bs.Node = nil }, "node"},
		{"unknown ADS cluster", func(bs *bootstrapv3.Bootstrap) {
			bs.DynamicResources = adsDynamic("nope")
		}, `no static cluster "nope"`},
		{"ADS over HTTP/1", func(bs *bootstrapv3.Bootstrap) {
			bs.DynamicResources = adsDynamic("pool")
			bs.StaticResources.Clusters = append(bs.StaticResources.Clusters, &clusterv3.Cluster{Name: "pool",
				ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}, LoadAssignment: loadAssignment("pool", "127.0.0.1:4")})
		}, "HTTP/2"},
		{"rate limit settings", func(bs *bootstrapv3.Bootstrap) {
			bs.DynamicResources.AdsConfig.RateLimitSettings = &corev3.RateLimitSettings{}
		}, "rate_limit_settings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs := proto.Clone(fx.bs).(*bootstrapv3.Bootstrap)
			tt.change(bs)
			e, err := Start(t.Context(), bs, Options{ListenAddr: "127.0.0.1:0"})
			if err == nil {
				e.Close() //nolint:errcheck
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}
