package envoy

import (
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"
)

func identityRuntime(t *testing.T, identity string) *config.Runtime {
	t.Helper()
	c, err := config.Parse([]byte("identity:\n" + identity + `
backends: [{name: p, schema: openai, url: "https://api.openai.com"}]
models: [{name: m, pool: c}]
pools: [{name: c, backends: [{backend: p}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Topology(c)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func hcmOf(t *testing.T, rt *config.Runtime) *hcmv3.HttpConnectionManager {
	t.Helper()
	bs := render(t, rt)
	if err := Check(bs, rt); err != nil {
		t.Fatal(err)
	}
	h := &hcmv3.HttpConnectionManager{}
	if err := bs.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(h); err != nil {
		t.Fatal(err)
	}
	return h
}

// identity.source jwt renders jwt_authn first, with the config's issuer,
// audiences and JWKS, the payload in metadata the router role is forwarded,
// and a cluster for a remote JWKS; other sources render none of it.
func TestJWTRendering(t *testing.T) {
	rt := identityRuntime(t, `  source: jwt
  jwt: {issuer: "https://id.example.com", audiences: [llmproc], jwks_uri: "https://id.example.com/.well-known/jwks.json"}`)
	h := hcmOf(t, rt)
	names := []string{}
	for _, f := range h.GetHttpFilters() {
		names = append(names, f.GetName())
	}
	if !slices.Equal(names, []string{JWTFilterName, ExtProcFilterName, RouterFilterName}) {
		t.Fatalf("http filters %v", names)
	}
	ja := &jwtauthnv3.JwtAuthentication{}
	if err := h.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(ja); err != nil {
		t.Fatal(err)
	}
	p := ja.GetProviders()[JWTProviderName]
	if p.GetIssuer() != "https://id.example.com" || !slices.Equal(p.GetAudiences(), []string{"llmproc"}) || p.GetForward() ||
		p.GetPayloadInMetadata() != extproc.JWTPayloadKey || p.GetRemoteJwks().GetHttpUri().GetCluster() != JWKSClusterName ||
		ja.GetRules()[0].GetRequires().GetProviderName() != JWTProviderName {
		t.Fatalf("provider %v, rules %v", p, ja.GetRules())
	}
	ep := &extprocfilterv3.ExternalProcessor{}
	if err := h.GetHttpFilters()[1].GetTypedConfig().UnmarshalTo(ep); err != nil {
		t.Fatal(err)
	}
	if got := ep.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(); !slices.Equal(got, []string{extproc.JWTNamespace}) {
		t.Errorf("router forwarding namespaces %v", got)
	}
	var jwks bool
	for _, c := range render(t, rt).GetStaticResources().GetClusters() {
		if c.GetName() == JWKSClusterName {
			jwks = c.GetTransportSocket() != nil && c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue() == 443
		}
	}
	if !jwks {
		t.Error("no TLS cluster for the JWKS on port 443")
	}
	if len(jwtMappers(rt)) == 0 {
		t.Error("no local-reply mappers for jwt_authn's refusals")
	}
	res, err := ADSResources(rt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == JWKSClusterName }) {
		t.Error("the ADS clusters lack the JWKS cluster")
	}

	// A JWKS file: local_jwks, no cluster.
	local := identityRuntime(t, `  source: jwt
  jwt: {issuer: "https://id.example.com", jwks_file: /etc/llmproc/jwks.json}`)
	if JWKSCluster(local) != nil || JWTAuthentication(local.Source.Identity.JWT).GetProviders()[JWTProviderName].GetLocalJwks().GetFilename() != "/etc/llmproc/jwks.json" {
		t.Error("jwks_file is not local_jwks")
	}
	hcmOf(t, local)

	// mesh asks for the peer's URI SAN; header renders neither.
	mesh := identityRuntime(t, `  source: mesh
  principals: [{principal: "spiffe://cluster.local/ns/a/*", tenant: a}]`)
	ep = &extprocfilterv3.ExternalProcessor{}
	if err := hcmOf(t, mesh).GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(ep); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ep.GetRequestAttributes(), []string{extproc.AttrPeerURISAN}) {
		t.Errorf("mesh router attributes %v", ep.GetRequestAttributes())
	}
	if n := len(hcmOf(t, identityRuntime(t, "  source: header\n  trusted_setter: x")).GetHttpFilters()); n != 2 {
		t.Errorf("header source: %d http filters, want 2", n)
	}
}
