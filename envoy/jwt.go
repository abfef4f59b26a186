package envoy

import (
	"net"
	"net/url"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"
)

// Names of the jwt source's Envoy pieces.
const (
	JWTFilterName = "envoy.filters.http.jwt_authn"
	// JWTProviderName is the one provider's name in the filter.
	JWTProviderName = "llmproc"
	// JWKSClusterName is the cluster Envoy fetches identity.jwt.jwks_uri
	// through.
	JWKSClusterName = "llmproc_jwks"
	// JWTDeniedDetails starts the response code details of jwt_authn's
	// refusals: jwt_authn_access_denied{<status, spaces as _>}
	// (generateRcDetails in source/extensions/filters/http/jwt_authn/filter.cc).
	JWTDeniedDetails = "jwt_authn_access_denied"
)

// JWTFilter is Envoy's jwt_authn filter for identity.source jwt, placed
// before the router-role ext_proc filter: every request must carry a token
// of identity.jwt.issuer (Authorization: Bearer, the default location) that
// verifies against the JWKS, within exp/nbf and, when audiences are set,
// for one of them. Otherwise Envoy answers 401 (403 for an audience not
// allowed) itself, and llmproc never sees the request. The verified payload
// goes to dynamic metadata (envoy.filters.http.jwt_authn / payload), which
// the router role is forwarded; the token itself is removed (forward:
// false), so it never reaches a provider. nil for other sources.
func JWTFilter(rt *config.Runtime) *hcmv3.HttpFilter {
	j := rt.Source.Identity.JWT
	if rt.IdentitySource != config.SourceJWT || j == nil {
		return nil
	}
	return &hcmv3.HttpFilter{
		Name:       JWTFilterName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(JWTAuthentication(j))},
	}
}

// JWTAuthentication is the jwt_authn filter config for an issuer: one
// provider, required on every path.
func JWTAuthentication(j *config.JWT) *jwtauthnv3.JwtAuthentication {
	p := &jwtauthnv3.JwtProvider{
		Issuer:            j.Issuer,
		Audiences:         j.Audiences,
		Forward:           false,
		PayloadInMetadata: extproc.JWTPayloadKey,
	}
	if j.JWKSFile != "" {
		p.JwksSourceSpecifier = &jwtauthnv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{
			Specifier: &corev3.DataSource_Filename{Filename: j.JWKSFile},
		}}
	} else {
		p.JwksSourceSpecifier = &jwtauthnv3.JwtProvider_RemoteJwks{RemoteJwks: &jwtauthnv3.RemoteJwks{
			HttpUri: &corev3.HttpUri{
				Uri:              j.JWKSURI,
				HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: JWKSClusterName},
				Timeout:          durationpb.New(jwksTimeout),
			},
			CacheDuration: durationpb.New(jwksCacheDuration),
		}}
	}
	return &jwtauthnv3.JwtAuthentication{
		Providers: map[string]*jwtauthnv3.JwtProvider{JWTProviderName: p},
		Rules: []*jwtauthnv3.RequirementRule{{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			RequirementType: &jwtauthnv3.RequirementRule_Requires{Requires: &jwtauthnv3.JwtRequirement{
				RequiresType: &jwtauthnv3.JwtRequirement_ProviderName{ProviderName: JWTProviderName},
			}},
		}},
	}
}

const (
	jwksTimeout       = 5_000_000_000   // 5s
	jwksCacheDuration = 300_000_000_000 // 5m: a rotated signing key is picked up within it
)

// JWKSCluster is the cluster for identity.jwt.jwks_uri (TLS for https);
// nil when the source is not jwt or the keys come from a file.
func JWKSCluster(rt *config.Runtime) *clusterv3.Cluster {
	j := rt.Source.Identity.JWT
	if rt.IdentitySource != config.SourceJWT || j == nil || j.JWKSURI == "" {
		return nil
	}
	u, err := url.Parse(j.JWKSURI)
	if err != nil { // validated
		return nil
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	n, _ := strconv.Atoi(port)
	c := &clusterv3.Cluster{
		Name:                 JWKSClusterName,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		ConnectTimeout:       durationpb.New(poolConnectTimeout),
		DnsLookupFamily:      clusterv3.Cluster_V4_PREFERRED,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: JWKSClusterName,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address:  tcpAddress(host, uint32(n)),
					Hostname: net.JoinHostPort(host, port),
				}},
			}}}},
		},
	}
	if u.Scheme == "https" {
		c.TransportSocket = &corev3.TransportSocket{
			Name: "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed(&tlsv3.UpstreamTlsContext{
				Sni: host,
			})},
		}
	}
	return c
}

// jwtMappers put jwt_authn's refusals (a plain-text status such as "Jwt is
// missing" or "Jwt is expired", 401, or 403 for an audience not allowed,
// Filter::onComplete in filter.cc) into the client API's error shape,
// keeping the status and the WWW-Authenticate header Envoy set.
func jwtMappers(rt *config.Runtime) []*hcmv3.ResponseMapper {
	if rt.IdentitySource != config.SourceJWT {
		return nil
	}
	const cond = "response.code_details.startsWith('" + JWTDeniedDetails + "')"
	const msg = "JWT authentication failed: %LOCAL_REPLY_BODY%"
	var out []*hcmv3.ResponseMapper
	for _, f := range []struct{ cond, typ, anthropicType, code string }{
		{cond + " && response.code == 403", "invalid_request_error", "permission_error", "jwt_audience_not_allowed"},
		{cond, "authentication_error", "authentication_error", "invalid_jwt"},
	} {
		out = append(out,
			jsonMapper(celFilter(f.cond+" && request.path.startsWith('/v1/messages')"), anthropicError(f.anthropicType, msg)),
			jsonMapper(celFilter(f.cond), openAIError(msg, f.typ, f.code)))
	}
	return out
}
