package mesh

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	apisecurity "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/llmproc/llmproc/filter/config"
)

// RequestAuthenticationName names the gateway's RequestAuthentication.
const RequestAuthenticationName = "llmproc-jwt"

// requestAuthentication is identity.source jwt on the Istio gateway: Istio
// renders it as Envoy's jwt_authn filter before the gateway's other HTTP
// filters (the router-role ext_proc, inserted before the router, comes
// after it), with payload_in_metadata "payload" (EnvoyJwtFilterPayload in
// istio's pilot/pkg/xds/filters), the key llmproc reads, and
// forwardOriginalToken false, so the token never reaches a provider. A
// present but bad token is refused by Envoy with 401; Istio lets a request
// without a token through (RequestAuthentication alone does not require
// one), and llmproc refuses it with 401 missing_jwt, in the client API's
// shape. nil for other sources.
//
// jwks_file has no meaning in the gateway's pod: its content is inlined
// (jwks), read when rendering.
func requestAuthentication(c *config.Config, o Options) (*securityv1.RequestAuthentication, error) {
	j := c.Identity.JWT
	if c.Identity.Source != config.SourceJWT || j == nil {
		return nil, nil
	}
	rule := &apisecurity.JWTRule{Issuer: j.Issuer, Audiences: j.Audiences, JwksUri: j.JWKSURI}
	if j.JWKSFile != "" {
		data, err := os.ReadFile(j.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("identity.jwt.jwks_file: the Istio rendering inlines it: %w", err)
		}
		if len(data) == 0 {
			return nil, errors.New("identity.jwt.jwks_file: is empty")
		}
		rule.Jwks = string(data)
	}
	return &securityv1.RequestAuthentication{
		TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "RequestAuthentication"},
		ObjectMeta: meta(o, RequestAuthenticationName),
		Spec: apisecurity.RequestAuthentication{
			TargetRefs: []*typev1beta1.PolicyTargetReference{{Group: GatewayAPIGroup, Kind: "Gateway", Name: o.Gateway}},
			JwtRules:   []*apisecurity.JWTRule{rule},
		},
	}, nil
}

// Names of the gateway's AuthorizationPolicies.
const (
	JWTRequiredPolicyName    = "llmproc-jwt-required"
	MeshPrincipalsPolicyName = "llmproc-mesh-principals"
	spiffePrefix             = "spiffe://"
)

// gatewayAuthorization is the Istio AuthorizationPolicy (ALLOW, bound to the
// gateway) that refuses, at the gateway, what llmproc would refuse with 401:
// for identity.source jwt a request without a verified token
// (requestPrincipals ["*"]: RequestAuthentication alone lets a request
// without a token through), for mesh a caller whose workload identity no
// identity.principals entry names. Istio's RBAC filter answers 403 "RBAC:
// access denied" before llmproc sees the request; llmproc's own 401 stays
// for when the policy is not applied. nil for other sources.
//
// Istio matches principals exactly or with one leading or trailing *, and
// without spiffe://; a glob it cannot express is widened to its literal
// prefix and * (llmproc still maps the exact identity).
func gatewayAuthorization(c *config.Config, o Options) *securityv1.AuthorizationPolicy {
	var name string
	var src *apisecurity.Source
	switch c.Identity.Source {
	case config.SourceJWT:
		name, src = JWTRequiredPolicyName, &apisecurity.Source{RequestPrincipals: []string{"*"}}
	case config.SourceMesh:
		src = &apisecurity.Source{}
		for _, p := range c.Identity.Principals {
			if ip := istioPrincipal(p.Principal); !slices.Contains(src.Principals, ip) {
				src.Principals = append(src.Principals, ip)
			}
		}
		name = MeshPrincipalsPolicyName
	default:
		return nil
	}
	return &securityv1.AuthorizationPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy"},
		ObjectMeta: meta(o, name),
		Spec: apisecurity.AuthorizationPolicy{
			TargetRefs: []*typev1beta1.PolicyTargetReference{{Group: GatewayAPIGroup, Kind: "Gateway", Name: o.Gateway}},
			Action:     apisecurity.AuthorizationPolicy_ALLOW,
			Rules:      []*apisecurity.Rule{{From: []*apisecurity.Rule_From{{Source: src}}}},
		},
	}
}

// istioPrincipal turns an identity.principals glob into an Istio principal
// matching at least the same identities.
func istioPrincipal(glob string) string {
	p := strings.TrimPrefix(glob, spiffePrefix)
	i := strings.IndexAny(p, "*?[\\")
	switch {
	case i < 0:
		return p
	case i == len(p)-1 && p[i] == '*': // trailing *
		return p
	case i == 0 && p[0] == '*' && !strings.ContainsAny(p[1:], "*?[\\"): // leading *
		return p
	}
	return p[:i] + "*"
}
