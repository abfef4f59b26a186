package config

import (
	"fmt"
	"testing"

	"github.com/llmproc/llmproc/filter/route"
)

const rules = `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
backends:
  - {name: openai, schema: openai, url: https://api.openai.com, credential: {env: OPENAI_API_KEY}}
  - {name: anthropic, schema: anthropic, url: https://api.anthropic.com, credential: {env: ANTHROPIC_API_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
  - {name: gpt-4o, pool: flagship, price: {input: 2.50, output: 10}}
  - {name: claude-sonnet-4-5, aliases: [sonnet], pool: code, price: {input: 3, output: 15}}
pools:
  - {name: cheap, backends: [{backend: openai}]}
  - {name: flagship, backends: [{backend: openai}]}
  - {name: code, backends: [{backend: anthropic}]}
  - {name: canary, backends: [{backend: anthropic, model: claude-haiku-4-5}]}
routing:
  tenant_header: X-Tenant
  headers: [x-team]
routes:
  - name: no-images-free
    match: {when: 'tenant == "free" && images'}
    deny: Images are not on the free plan.
  - name: free-cheap
    match: {when: 'tenant == "free"'}
    override_explicit: true
    pool: cheap
  - name: sonnet-canary
    match: {model: sonnet, when: 'headers["x-team"] == "canary"'}
    pool: canary
  - name: auto-code
    match: {model: auto, when: 'class == "code"'}
    model: claude-sonnet-4-5
  - name: auto-long
    match: {model: auto, when: 'input_tokens > 1000'}
    pool: flagship
    cache: off
  - name: auto-split
    match: {models: [auto, auto-split]}
    split: [{pool: cheap, weight: 3}, {pool: flagship, weight: 1}]
    sticky_by: user
  - name: bad-key
    match: {model: strict, when: 'headers["x-missing"] == "a"'}
    pool: cheap
`

func TestDecide(t *testing.T) {
	rt := mustCompile(t, rules)
	if !rt.NeedsFeatures() || rt.TenantHeader != "x-tenant" {
		t.Fatalf("NeedsFeatures %v, TenantHeader %q", rt.NeedsFeatures(), rt.TenantHeader)
	}
	tests := []struct {
		name string
		f    route.Features
		// want is "route pool target" or "deny: message" or an error.
		want string
	}{
		{"explicit model, no rule names it", route.Features{Model: "gpt-4o", Class: route.ClassCode}, "model flagship "},
		{"free tenant denied images even for an explicit model", route.Features{Model: "gpt-4o", Tenant: "free", Images: true}, "deny: Images are not on the free plan."},
		{"override_explicit rule moves an explicit model", route.Features{Model: "gpt-4o", Tenant: "free"}, "free-cheap cheap "},
		{"rule listing an alias matches by its canonical name", route.Features{Model: "claude-sonnet-4-5", Headers: map[string]string{"x-team": "canary"}}, "sonnet-canary canary "},
		{"condition false falls through to the model", route.Features{Model: "sonnet", Headers: map[string]string{"x-team": "web"}}, "model code "},
		{"auto code: model override uses the model's pool", route.Features{Model: "auto", Class: route.ClassCode}, "auto-code code claude-sonnet-4-5"},
		{"auto long", route.Features{Model: "auto", EstimatedInputTokens: 5000}, "auto-long flagship "},
		{"unknown name", route.Features{Model: "gpt-5"}, "error: unknown model"},
		{"routing name no rule matches", route.Features{Model: "strict"}, "error: no routing rule matched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			d, err := rt.Decide(&f)
			var got string
			switch {
			case err != nil:
				got = "error: " + err.Error()
			case d.Deny != "":
				got = "deny: " + d.Deny
			default:
				got = fmt.Sprintf("%s %s %s", d.Route, d.Pool.Name, d.Target)
			}
			if got != tt.want {
				t.Errorf("Decide = %q, want %q", got, tt.want)
			}
		})
	}
	d, _ := rt.Decide(&route.Features{Model: "auto", EstimatedInputTokens: 5000})
	if d.Cache != "off" {
		t.Errorf("route cache mode %q, want off", d.Cache)
	}
	d, err := rt.Decide(&route.Features{Model: "strict", Headers: map[string]string{}})
	if err == nil || d.EvalError == "" {
		t.Errorf("a condition that fails to evaluate: err %v, EvalError %q", err, d.EvalError)
	}
}

func TestDecideSplit(t *testing.T) {
	rt := mustCompile(t, rules)
	// Sticky: the same user always lands on the same pool.
	for i := range 50 {
		user := fmt.Sprintf("user-%d", i)
		first, _ := rt.Decide(&route.Features{Model: "auto-split", User: user})
		for range 5 {
			again, _ := rt.Decide(&route.Features{Model: "auto-split", User: user})
			if again.Pool != first.Pool {
				t.Fatalf("%s: pool %s then %s", user, first.Pool.Name, again.Pool.Name)
			}
		}
	}
	// Weights: 3:1 over many users and over random picks (no user).
	for _, sticky := range []bool{true, false} {
		counts := map[string]int{}
		const n = 4000
		for i := range n {
			f := route.Features{Model: "auto-split"}
			if sticky {
				f.User = fmt.Sprintf("u%d", i)
			}
			d, err := rt.Decide(&f)
			if err != nil {
				t.Fatal(err)
			}
			counts[d.Pool.Name]++
		}
		if c := counts["cheap"]; c < n*70/100 || c > n*80/100 {
			t.Errorf("sticky=%v: cheap got %d of %d, want about 75%%", sticky, c, n)
		}
	}
}

func TestResolveDeny(t *testing.T) {
	rt := mustCompile(t, rules)
	if _, ok := rt.Resolve("auto"); !ok {
		t.Error("Resolve(auto) with no features should reach the split")
	}
}
