package mesh

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
)

const meshConfig = `
identity:
  source: mesh
  principals:
    - {principal: "spiffe://cluster.local/ns/team-a/sa/*", tenant: a}
    - {principal: "spiffe://cluster.local/ns/team-b/sa/agent", tenant: b}
    - {principal: "cluster.local/ns/team-c/sa/agent-?", tenant: c}
    - {principal: "*/ns/ops/sa/cron", tenant: ops}
backends:
  - {name: primary, schema: openai, url: "https://api.openai.com", credential: {env: OPENAI_API_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
`

// gatewayPolicy renders src for Istio, checks it and returns its gateway
// AuthorizationPolicy (nil when there is none).
func gatewayPolicy(t *testing.T, src *Source) *securityv1.AuthorizationPolicy {
	t.Helper()
	out, err := Render(src, TargetIstio, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(out); err != nil {
		t.Fatal(err)
	}
	objs, err := Istio(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var found *securityv1.AuthorizationPolicy
	for _, o := range objs {
		if ap, ok := o.(*securityv1.AuthorizationPolicy); ok {
			if found != nil {
				t.Fatal("two AuthorizationPolicies on the gateway")
			}
			found = ap
		}
	}
	return found
}

// TestIstioGatewayAuthorization: identity.source jwt gets an ALLOW policy on
// the gateway that needs a verified token (requestPrincipals *), mesh one
// that lets only the configured principals in (spiffe:// dropped, globs
// Istio cannot express widened to their prefix), other sources none.
func TestIstioGatewayAuthorization(t *testing.T) {
	ap := gatewayPolicy(t, load(t, example("jwt")))
	if ap == nil || ap.Name != JWTRequiredPolicyName || ap.Spec.GetTargetRefs()[0].GetName() != "llm-gateway" ||
		ap.Spec.GetAction().String() != "ALLOW" {
		t.Fatalf("jwt: policy %v", ap)
	}
	if d := cmp.Diff([]string{"*"}, ap.Spec.GetRules()[0].GetFrom()[0].GetSource().GetRequestPrincipals()); d != "" {
		t.Errorf("jwt: requestPrincipals (-want +got):\n%s", d)
	}

	src, err := Load([]byte(meshConfig))
	if err != nil {
		t.Fatal(err)
	}
	ap = gatewayPolicy(t, src)
	if ap == nil || ap.Name != MeshPrincipalsPolicyName || ap.Spec.GetTargetRefs()[0].GetKind() != "Gateway" {
		t.Fatalf("mesh: policy %v", ap)
	}
	want := []string{"cluster.local/ns/team-a/sa/*", "cluster.local/ns/team-b/sa/agent", "cluster.local/ns/team-c/sa/agent-*", "*/ns/ops/sa/cron"}
	if d := cmp.Diff(want, ap.Spec.GetRules()[0].GetFrom()[0].GetSource().GetPrincipals()); d != "" {
		t.Errorf("mesh: principals (-want +got):\n%s", d)
	}

	if ap := gatewayPolicy(t, load(t, example("quickstart"))); ap != nil {
		t.Errorf("header source: unexpected policy %v", ap)
	}
}
