package envoy

import (
	"bytes"
	"errors"
	"os"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/llmproc/llmproc/filter/config"
)

const quickstartADSGolden = "quickstart-ads.yaml"

func renderADS(t testing.TB, rt *config.Runtime) (*bootstrapv3.Bootstrap, *Resources) {
	t.Helper()
	bs, err := ADSBootstrap(rt)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ADSResources(rt)
	if err != nil {
		t.Fatal(err)
	}
	return bs, res
}

func TestADSRender(t *testing.T) {
	for _, path := range []string{quickstartConfig, httpsConfig} {
		t.Run(path, func(t *testing.T) {
			rt := load(t, path)
			bs, res := renderADS(t, rt)
			if err := bs.ValidateAll(); err != nil {
				t.Fatalf("ValidateAll: %v", err)
			}
			if err := CheckADS(bs, res, rt); err != nil {
				t.Fatalf("CheckADS: %v", err)
			}
			y, err := YAML(bs)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(y)
			if err != nil {
				t.Fatalf("Parse of the rendering: %v\n%s", err, y)
			}
			if d := cmp.Diff(bs, back, protocmp.Transform()); d != "" {
				t.Errorf("YAML round trip differs (-rendered +parsed):\n%s", d)
			}
			// The bootstrap alone is not a complete Envoy: Check must miss
			// the pools that only ADS supplies.
			if err := Check(bs, rt); !errors.Is(err, ErrMissingPool) {
				t.Errorf("Check of the bare ADS bootstrap = %v, want ErrMissingPool", err)
			}
		})
	}
}

// TestADSMatchesStatic: once Envoy has the ADS resources it runs exactly the
// static bootstrap's clusters, listener and routes.
func TestADSMatchesStatic(t *testing.T) {
	for _, path := range []string{quickstartConfig, httpsConfig} {
		t.Run(path, func(t *testing.T) {
			rt := load(t, path)
			static := render(t, rt)
			bs, res := renderADS(t, rt)

			// The pieces, one by one.
			if d := cmp.Diff(static.GetStaticResources().GetClusters()[1:], res.Clusters, protocmp.Transform()); d != "" {
				t.Errorf("CDS clusters differ from the static pool clusters (-static +ads):\n%s", d)
			}
			if d := cmp.Diff(hcm(t, static).GetRouteConfig(), res.Routes[0], protocmp.Transform()); d != "" {
				t.Errorf("RDS route configuration differs from the static one (-static +ads):\n%s", d)
			}
			if d := cmp.Diff(static.GetStaticResources().GetClusters()[0], bs.GetStaticResources().GetClusters()[0], protocmp.Transform()); d != "" {
				t.Errorf("llmproc cluster differs (-static +ads):\n%s", d)
			}

			// The listener differs only in where the routes come from.
			h := &hcmv3.HttpConnectionManager{}
			if err := res.Listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(h); err != nil {
				t.Fatal(err)
			}
			if rds := h.GetRds(); rds.GetRouteConfigName() != RouteConfigName || rds.GetConfigSource().GetAds() == nil {
				t.Errorf("listener HCM route source = %v, want RDS %q over ADS", h.GetRouteSpecifier(), RouteConfigName)
			}

			// And the whole: Inline folds the resources into the bootstrap.
			in, err := Inline(bs, res)
			if err != nil {
				t.Fatal(err)
			}
			in.Node = nil
			if !proto.Equal(static, in) {
				t.Errorf("static bootstrap and ADS bootstrap + resources differ (-static +ads):\n%s", cmp.Diff(static, in, protocmp.Transform()))
			}
			if bs.GetDynamicResources() == nil || len(bs.GetStaticResources().GetListeners()) != 0 {
				t.Error("Inline changed its input bootstrap")
			}
		})
	}
}

func TestCheckADS(t *testing.T) {
	type mutation func(t *testing.T, bs *bootstrapv3.Bootstrap, res *Resources)
	tests := []struct {
		name   string
		mutate mutation
		want   error
	}{
		{"lds from a file", func(t *testing.T, bs *bootstrapv3.Bootstrap, _ *Resources) {
			bs.GetDynamicResources().LdsConfig = &corev3.ConfigSource{
				ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{Path: "/lds.yaml"}},
			}
		}, ErrADS},
		{"cds without api version", func(t *testing.T, bs *bootstrapv3.Bootstrap, _ *Resources) {
			bs.GetDynamicResources().GetCdsConfig().ResourceApiVersion = corev3.ApiVersion_AUTO
		}, ErrADS},
		{"ads over REST", func(t *testing.T, bs *bootstrapv3.Bootstrap, _ *Resources) {
			bs.GetDynamicResources().GetAdsConfig().ApiType = corev3.ApiConfigSource_REST
		}, ErrADS},
		{"ads cluster missing", func(t *testing.T, bs *bootstrapv3.Bootstrap, _ *Resources) {
			bs.GetDynamicResources().GetAdsConfig().GetGrpcServices()[0].GetEnvoyGrpc().ClusterName = "elsewhere"
		}, ErrUnknownCluster},
		{"ads cluster HTTP/1", func(t *testing.T, bs *bootstrapv3.Bootstrap, _ *Resources) {
			c := bs.GetStaticResources().GetClusters()[0]
			o := &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: explicitHTTP1()}
			c.GetTypedExtensionProtocolOptions()[HTTPProtocolOptionsKey] = typed(o)
		}, ErrExtProcNotHTTP2},
		{"rds names an unserved route configuration", func(t *testing.T, _ *bootstrapv3.Bootstrap, res *Resources) {
			res.Routes[0].Name = "other"
		}, ErrADS},
		{"pool cluster not served", func(t *testing.T, _ *bootstrapv3.Bootstrap, res *Resources) {
			res.Clusters = res.Clusters[:len(res.Clusters)-1]
		}, ErrMissingPool},
		{"served cluster invalid", func(t *testing.T, _ *bootstrapv3.Bootstrap, res *Resources) {
			res.Clusters[0].ConnectTimeout.Nanos = -1
		}, ErrInvalid},
	}
	rt := load(t, quickstartConfig)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, res := renderADS(t, rt)
			tt.mutate(t, bs, res)
			if err := CheckADS(bs, res, rt); !errors.Is(err, tt.want) {
				t.Fatalf("CheckADS = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestGoldenADS keeps envoy/quickstart-ads.yaml equal to `llmproc
// envoy-config -ads` for the quickstart config. `make envoy` (go test ./envoy
// -run TestGolden -update) rewrites it with quickstart.yaml.
func TestGoldenADS(t *testing.T) {
	rt := load(t, quickstartConfig)
	bs, res := renderADS(t, rt)
	got, err := YAML(bs)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(quickstartADSGolden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(quickstartADSGolden)
	if err != nil {
		t.Fatalf("%v: run `make envoy` to render it", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("envoy/%s is stale; run `make envoy` to re-render it from %s.\n-checked in +rendered:\n%s",
			quickstartADSGolden, quickstartConfig, cmp.Diff(string(want), string(got)))
	}
	back, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckADS(back, res, rt); err != nil {
		t.Fatal(err)
	}
}
