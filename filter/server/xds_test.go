package server

import (
	"context"
	"fmt"
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/llmproc/llmproc/envoy"
)

// xdsConfig serves ADS; shutdown_grace is long so that a shutdown
// completes within the test only if the ADS streams are ended, not waited for.
const xdsConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
limits: {reload_interval: 20ms, shutdown_grace: 1h}
envoy: {xds: %v}
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:18081", credential: {env: PRIMARY_API_KEY}}
  - {name: local, schema: openai-compatible, url: "http://127.0.0.1:18082"}
models:
  - {name: gpt-4o-mini, pool: cheap}
%s
pools:
  - name: cheap
    backends: [{backend: primary}, {backend: local}]
%s`

// adsStream is Envoy's side of an ADS stream on llmproc's gRPC listener.
type adsStream struct {
	t *testing.T
	s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
}

func (r *running) ads(ctx context.Context) *adsStream {
	r.t.Helper()
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(r.conn).StreamAggregatedResources(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return &adsStream{t: r.t, s: s}
}

func (a *adsStream) send(typeURL, version, nonce string, names ...string) error {
	return a.s.Send(&discoveryv3.DiscoveryRequest{
		Node:    &corev3.Node{Id: "envoy-under-test", Cluster: "test"},
		TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce, ResourceNames: names,
	})
}

func (a *adsStream) recv(typeURL string) *discoveryv3.DiscoveryResponse {
	a.t.Helper()
	resp, err := a.s.Recv()
	if err != nil {
		a.t.Fatalf("recv %s: %v", typeURL, err)
	}
	if resp.GetTypeUrl() != typeURL {
		a.t.Fatalf("got %s, want %s", resp.GetTypeUrl(), typeURL)
	}
	return resp
}

// subscribe requests a type and ACKs what comes back.
func (a *adsStream) subscribe(typeURL string, names ...string) *discoveryv3.DiscoveryResponse {
	a.t.Helper()
	if err := a.send(typeURL, "", "", names...); err != nil {
		a.t.Fatal(err)
	}
	resp := a.recv(typeURL)
	a.ack(resp, names...)
	return resp
}

func (a *adsStream) ack(resp *discoveryv3.DiscoveryResponse, names ...string) {
	a.t.Helper()
	if err := a.send(resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), names...); err != nil {
		a.t.Fatal(err)
	}
}

func (a *adsStream) clusters(resp *discoveryv3.DiscoveryResponse) []string {
	a.t.Helper()
	var names []string
	for _, r := range resp.GetResources() {
		c := &clusterv3.Cluster{}
		if err := r.UnmarshalTo(c); err != nil {
			a.t.Fatal(err)
		}
		names = append(names, c.GetName())
	}
	slices.Sort(names) // the order on the wire is arbitrary
	return names
}

func (a *adsStream) routes(resp *discoveryv3.DiscoveryResponse) []string {
	a.t.Helper()
	var names []string
	for _, r := range resp.GetResources() {
		rc := &routev3.RouteConfiguration{}
		if err := r.UnmarshalTo(rc); err != nil {
			a.t.Fatal(err)
		}
		for _, rt := range rc.GetVirtualHosts()[0].GetRoutes() {
			names = append(names, rt.GetName())
		}
	}
	return names
}

// TestXDS: with envoy.xds, llmproc serves ADS on its gRPC listener, pushes
// a rewritten config's new pool to a connected Envoy, and ends the stream
// when shutting down.
func TestXDS(t *testing.T) {
	r := start(t, fmt.Sprintf(xdsConfig, true, "", ""))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	a := r.ads(ctx)
	cds := a.subscribe(resourcev3.ClusterType)
	a.subscribe(resourcev3.ListenerType)
	rds := a.subscribe(resourcev3.RouteType, envoy.RouteConfigName)
	if got := a.clusters(cds); !cmp.Equal(got, []string{"pool/cheap"}) {
		t.Errorf("clusters = %v", got)
	}
	if got := a.routes(rds); !cmp.Equal(got, []string{"pool/cheap", "no-pool-anthropic", "no-pool-gemini", "no-pool"}) {
		t.Errorf("routes = %v", got)
	}
	if n := r.metric("llmproc_xds_streams"); n != 1 {
		t.Errorf("llmproc_xds_streams = %v, want 1", n)
	}

	// A pool added to the file: the reload pushes clusters, then routes.
	writeConfig(t, r.path, fmt.Sprintf(xdsConfig, true, "  - {name: local-llama, pool: local}", `  - name: local
    backends: [{backend: local, model: llama-3.1-8b}]
`))
	cds2 := a.recv(resourcev3.ClusterType)
	if got := a.clusters(cds2); !cmp.Equal(got, []string{"pool/cheap", "pool/local"}) {
		t.Errorf("clusters after reload = %v", got)
	}
	a.ack(cds2)
	rds2 := a.recv(resourcev3.RouteType)
	if got := a.routes(rds2); !cmp.Equal(got, []string{"pool/cheap", "pool/local", "no-pool-anthropic", "no-pool-gemini", "no-pool"}) {
		t.Errorf("routes after reload = %v", got)
	}
	if cds2.GetVersionInfo() == cds.GetVersionInfo() || rds2.GetVersionInfo() == rds.GetVersionInfo() {
		t.Error("reload pushed without a new version")
	}
	a.ack(rds2, envoy.RouteConfigName)
	eventually(t, "the push to be counted", func() bool {
		return r.metric(`llmproc_xds_snapshots_total{result="pushed"}`) == 2
	})

	// Shutdown ends the ADS stream rather than waiting an hour for it.
	r.cancel()
	if err := r.wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Recv(); err == nil {
		t.Error("ADS stream still open after shutdown")
	}
}

func TestXDSOff(t *testing.T) {
	r := start(t, fmt.Sprintf(xdsConfig, false, "", ""))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	a := r.ads(ctx)
	_ = a.send(resourcev3.ClusterType, "", "")
	if _, err := a.s.Recv(); status.Code(err) != codes.Unimplemented {
		t.Fatalf("ADS with envoy.xds off: %v, want Unimplemented", err)
	}
}
