package xds

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/llmproc/llmproc/envoy"
	"github.com/llmproc/llmproc/filter/config"
)

// hangGuard bounds every wait; it turns a hang into a failure and is never
// what a test asserts.
const hangGuard = 30 * time.Second

// pools is a config with one pool per name; each pool has one backend.
func pools(names ...string) string {
	var b strings.Builder
	b.WriteString("backends:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - {name: %s, schema: openai-compatible, url: \"http://%s.local:8000\"}\n", n, n)
	}
	b.WriteString("models:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - {name: m-%s, pool: %s}\n", n, n)
	}
	b.WriteString("pools:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - {name: %s, backends: [{backend: %s}]}\n", n, n)
	}
	return b.String()
}

func runtime(t *testing.T, yaml string) *config.Runtime {
	t.Helper()
	c, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Topology(c)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestSnapshot(t *testing.T) {
	one := runtime(t, pools("alpha"))
	snap, v, err := Snapshot(one)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Consistent(); err != nil {
		t.Fatal(err)
	}
	_, again, err := Snapshot(runtime(t, "# same config, other spelling\n"+strings.ReplaceAll(pools("alpha"), ", ", ",  ")))
	if err != nil {
		t.Fatal(err)
	}
	if again != v {
		t.Errorf("same config, version %s then %s", v, again)
	}

	two, v2, err := Snapshot(runtime(t, pools("alpha", "beta")))
	if err != nil {
		t.Fatal(err)
	}
	if v2 == v {
		t.Error("adding a pool kept the snapshot version")
	}
	for _, tc := range []struct {
		typ     string
		changed bool
	}{{resourcev3.ClusterType, true}, {resourcev3.RouteType, true}, {resourcev3.ListenerType, false}} {
		if got := snap.GetVersion(tc.typ) != two.GetVersion(tc.typ); got != tc.changed {
			t.Errorf("%s: version changed = %v, want %v", typeName(tc.typ), got, tc.changed)
		}
	}
	if n := len(two.GetResources(resourcev3.EndpointType)); n != 0 {
		t.Errorf("%d EDS resources; endpoints belong inline in the STRICT_DNS clusters", n)
	}
}

// fakeMetrics records what the server reports.
type fakeMetrics struct {
	mu        sync.Mutex
	snapshots []string // result/version
	rejected  []string
	streams   int
}

func (f *fakeMetrics) XDSSnapshot(result, version string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snapshots = append(f.snapshots, result+"/"+version)
}

func (f *fakeMetrics) XDSRejected(typ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejected = append(f.rejected, typ)
}

func (f *fakeMetrics) XDSStream() func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streams++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.streams--
	}
}

func (f *fakeMetrics) read(fn func(*fakeMetrics)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// serve runs s on a loopback gRPC server until the test ends.
func serve(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	s.Register(gs)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// adsClient plays Envoy's side of one SOTW ADS stream.
type adsClient struct {
	t      *testing.T
	node   *corev3.Node
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
}

func dial(t *testing.T, conn *grpc.ClientConn, node string) *adsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &adsClient{t: t, node: &corev3.Node{Id: node, Cluster: "test"}, stream: st}
}

// request subscribes to (or ACKs) a type; names only for RDS.
func (c *adsClient) request(typeURL, version, nonce string, names ...string) {
	c.t.Helper()
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce, ResourceNames: names})
}

func (c *adsClient) ack(r *discoveryv3.DiscoveryResponse, names ...string) {
	c.t.Helper()
	c.request(r.GetTypeUrl(), r.GetVersionInfo(), r.GetNonce(), names...)
}

// nack rejects r, reporting kept as the last version accepted, like Envoy.
func (c *adsClient) nack(r *discoveryv3.DiscoveryResponse, kept string) {
	c.t.Helper()
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), VersionInfo: kept, ResponseNonce: r.GetNonce(),
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: "cluster pool/x: something Envoy dislikes"}})
}

func (c *adsClient) send(req *discoveryv3.DiscoveryRequest) {
	c.t.Helper()
	req.Node = c.node
	if err := c.stream.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

// recv waits for the next response and checks its type.
func (c *adsClient) recv(typeURL string) *discoveryv3.DiscoveryResponse {
	c.t.Helper()
	r, err := c.stream.Recv()
	if err != nil {
		c.t.Fatalf("recv %s: %v", typeName(typeURL), err)
	}
	if r.GetTypeUrl() != typeURL {
		c.t.Fatalf("got %s version %s, want %s", typeName(r.GetTypeUrl()), r.GetVersionInfo(), typeName(typeURL))
	}
	return r
}

// subscribe opens CDS, LDS and RDS the way Envoy does, ACKing each, and
// returns the three responses.
func (c *adsClient) subscribe() (cds, lds, rds *discoveryv3.DiscoveryResponse) {
	c.t.Helper()
	c.request(resourcev3.ClusterType, "", "")
	cds = c.recv(resourcev3.ClusterType)
	c.ack(cds)
	c.request(resourcev3.ListenerType, "", "")
	lds = c.recv(resourcev3.ListenerType)
	c.ack(lds)
	c.request(resourcev3.RouteType, "", "", envoy.RouteConfigName)
	rds = c.recv(resourcev3.RouteType)
	c.ack(rds, envoy.RouteConfigName)
	return cds, lds, rds
}

func unpack[T proto.Message](t *testing.T, r *discoveryv3.DiscoveryResponse, mk func() T) []T {
	t.Helper()
	var out []T
	for _, a := range r.GetResources() {
		m := mk()
		if err := a.UnmarshalTo(m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func clusterNames(t *testing.T, r *discoveryv3.DiscoveryResponse) []string {
	t.Helper()
	var names []string
	for _, c := range unpack(t, r, func() *clusterv3.Cluster { return &clusterv3.Cluster{} }) {
		names = append(names, c.GetName())
	}
	slices.Sort(names) // wire order is arbitrary
	return names
}

// routeClusters lists the cluster of every route; direct responses (the
// no-pool replies, OpenAI- and Anthropic-shaped) have none.
func routeClusters(t *testing.T, r *discoveryv3.DiscoveryResponse) []string {
	t.Helper()
	var names []string
	for _, rc := range unpack(t, r, func() *routev3.RouteConfiguration { return &routev3.RouteConfiguration{} }) {
		for _, rt := range rc.GetVirtualHosts()[0].GetRoutes() {
			names = append(names, rt.GetRoute().GetCluster())
		}
	}
	return names
}

// eventually polls cond until it holds; the guard only prevents a hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServedEqualsStatic: what an ADS client receives is, resource for
// resource, the static bootstrap of the same config, the listener's route
// source aside, whatever its node id.
func TestServedEqualsStatic(t *testing.T) {
	rt := runtime(t, pools("alpha", "beta"))
	s := New(context.Background(), Options{})
	if err := s.Update(rt); err != nil {
		t.Fatal(err)
	}
	conn := serve(t, s)
	static, err := envoy.Bootstrap(rt)
	if err != nil {
		t.Fatal(err)
	}
	staticHCM := &hcmv3.HttpConnectionManager{}
	if err := static.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(staticHCM); err != nil {
		t.Fatal(err)
	}

	for _, node := range []string{"envoy-7f9c-abcde", "another-node"} {
		c := dial(t, conn, node)
		cds, lds, rds := c.subscribe()
		for _, r := range []*discoveryv3.DiscoveryResponse{cds, lds, rds} {
			if r.GetVersionInfo() == "" || r.GetNonce() == "" {
				t.Errorf("%s: version %q nonce %q", typeName(r.GetTypeUrl()), r.GetVersionInfo(), r.GetNonce())
			}
		}

		// The cache keeps resources by name, so their order on the wire is
		// arbitrary (Envoy does not care); compare in config order.
		clusters := unpack(t, cds, func() *clusterv3.Cluster { return &clusterv3.Cluster{} })
		slices.SortFunc(clusters, func(a, b *clusterv3.Cluster) int { return strings.Compare(a.GetName(), b.GetName()) })
		if d := cmp.Diff(static.GetStaticResources().GetClusters()[1:], clusters, protocmp.Transform()); d != "" {
			t.Errorf("node %s: CDS differs from the static pool clusters (-static +ads):\n%s", node, d)
		}
		routes := unpack(t, rds, func() *routev3.RouteConfiguration { return &routev3.RouteConfiguration{} })
		if len(routes) != 1 || !proto.Equal(staticHCM.GetRouteConfig(), routes[0]) {
			t.Errorf("node %s: RDS differs from the static route configuration (-static +ads):\n%s",
				node, cmp.Diff([]*routev3.RouteConfiguration{staticHCM.GetRouteConfig()}, routes, protocmp.Transform()))
		}

		// The listener, with RDS folded back in, is the static one.
		listeners := unpack(t, lds, func() *listenerv3.Listener { return &listenerv3.Listener{} })
		in, err := envoy.Inline(&bootstrapv3.Bootstrap{}, &envoy.Resources{Listeners: listeners, Routes: routes})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(static.GetStaticResources().GetListeners(), in.GetStaticResources().GetListeners(), protocmp.Transform()); d != "" {
			t.Errorf("node %s: LDS + RDS differ from the static listener (-static +ads):\n%s", node, d)
		}
	}
}

// TestReloadPushes follows one stream through config changes: a no-op
// reload pushes nothing, a new pool re-sends clusters and routes (not the
// listener), and a rejected version is not sent again.
func TestReloadPushes(t *testing.T) {
	m := &fakeMetrics{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := New(ctx, Options{Metrics: m})
	if err := s.Update(runtime(t, pools("alpha"))); err != nil {
		t.Fatal(err)
	}
	v1 := s.Version()
	c := dial(t, serve(t, s), "envoy-1")
	cds1, lds1, _ := c.subscribe()
	if got := clusterNames(t, cds1); !cmp.Equal(got, []string{"pool/alpha"}) {
		t.Fatalf("clusters = %v", got)
	}

	// The same config again: unchanged, nothing sent (the next message on
	// the stream below is the new pool's).
	if err := s.Update(runtime(t, pools("alpha"))); err != nil {
		t.Fatal(err)
	}
	if s.Version() != v1 {
		t.Fatalf("no-op update changed the version %s → %s", v1, s.Version())
	}

	// A pool added: clusters, then routes; the listener is unchanged.
	if err := s.Update(runtime(t, pools("alpha", "beta"))); err != nil {
		t.Fatal(err)
	}
	cds2 := c.recv(resourcev3.ClusterType)
	if cds2.GetVersionInfo() == cds1.GetVersionInfo() {
		t.Fatal("CDS re-sent with the old version")
	}
	if got := clusterNames(t, cds2); !cmp.Equal(got, []string{"pool/alpha", "pool/beta"}) {
		t.Errorf("clusters = %v", got)
	}
	c.ack(cds2)
	rds2 := c.recv(resourcev3.RouteType) // not LDS: its version did not change
	if got := routeClusters(t, rds2); !cmp.Equal(got, []string{"pool/alpha", "pool/beta", "", "", ""}) {
		t.Errorf("route clusters = %v", got)
	}
	c.ack(rds2, envoy.RouteConfigName)

	// Envoy rejects the next clusters: they must not come back before the
	// config changes again.
	if err := s.Update(runtime(t, pools("alpha", "beta", "gamma"))); err != nil {
		t.Fatal(err)
	}
	cds3 := c.recv(resourcev3.ClusterType)
	rds3 := c.recv(resourcev3.RouteType)
	c.nack(cds3, cds2.GetVersionInfo())
	c.ack(rds3, envoy.RouteConfigName)
	// Once both requests are in, the cache holds a watch per type again.
	eventually(t, "the NACK and ACK are processed", func() bool {
		return s.cache.GetStatusInfo(nodeKey).GetNumWatches() == 3
	})
	if err := s.Update(runtime(t, pools("alpha", "gamma"))); err != nil {
		t.Fatal(err)
	}
	cds4 := c.recv(resourcev3.ClusterType)
	if cds4.GetVersionInfo() == cds3.GetVersionInfo() {
		t.Fatal("the rejected clusters were sent again")
	}
	if got := clusterNames(t, cds4); !cmp.Equal(got, []string{"pool/alpha", "pool/gamma"}) {
		t.Errorf("clusters after the NACK = %v", got)
	}
	c.ack(cds4)
	if got := routeClusters(t, c.recv(resourcev3.RouteType)); !cmp.Equal(got, []string{"pool/alpha", "pool/gamma", "", "", ""}) {
		t.Errorf("route clusters after the NACK = %v", got)
	}
	if lds1.GetVersionInfo() == "" {
		t.Error("listener without version")
	}

	m.read(func(m *fakeMetrics) {
		want := []string{"pushed/" + v1, "unchanged/" + v1, "pushed/", "pushed/", "pushed/"}
		var got []string
		for _, s := range m.snapshots {
			if strings.HasPrefix(s, "pushed/") && s != "pushed/"+v1 {
				s = "pushed/"
			}
			got = append(got, s)
		}
		if !cmp.Equal(got, want) {
			t.Errorf("snapshots = %v, want %v", m.snapshots, want)
		}
		if !cmp.Equal(m.rejected, []string{"cluster"}) {
			t.Errorf("rejections = %v", m.rejected)
		}
		if m.streams != 1 {
			t.Errorf("open streams = %d, want 1", m.streams)
		}
	})

	// Cancelling the server's context ends the stream (graceful shutdown).
	cancel()
	if _, err := c.stream.Recv(); err == nil {
		t.Fatal("stream still open after the server's context ended")
	}
	eventually(t, "the stream is counted closed", func() bool {
		n := -1
		m.read(func(m *fakeMetrics) { n = m.streams })
		return n == 0
	})
}

func TestSnapshotResourcesAreTheEnvoyBuilders(t *testing.T) {
	rt := runtime(t, pools("alpha", "beta"))
	snap, _, err := Snapshot(rt)
	if err != nil {
		t.Fatal(err)
	}
	res, err := envoy.ADSResources(rt)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]types.Resource{
		resourcev3.ClusterType:  resourceList(res.Clusters),
		resourcev3.ListenerType: resourceList(res.Listeners),
		resourcev3.RouteType:    resourceList(res.Routes),
	}
	for typ, items := range want {
		got := snap.GetResources(typ)
		if len(got) != len(items) {
			t.Fatalf("%s: %d resources, want %d", typeName(typ), len(got), len(items))
		}
		for _, r := range items {
			name := cachev3.GetResourceName(r)
			if !proto.Equal(got[name], r) {
				t.Errorf("%s %q differs from envoy.ADSResources", typeName(typ), name)
			}
		}
	}
}

// BenchmarkSnapshot measures building a snapshot (resources, hashes,
// consistency) for a config with ten pools, what each reload costs.
//
//	go test -run '^$' -bench Snapshot -benchmem ./filter/xds
func BenchmarkSnapshot(b *testing.B) {
	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("pool%d", i))
	}
	c, err := config.Parse([]byte(pools(names...)))
	if err != nil {
		b.Fatal(err)
	}
	rt, err := config.Topology(c)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Snapshot(rt); err != nil {
			b.Fatal(err)
		}
	}
}
