package config

import (
	"fmt"
	"strings"
	"testing"
)

// benchRules is a registry with 20 rules; a chat request for "auto" is
// decided by the last one, so every condition before it is evaluated.
func benchRules(b *testing.B) *Runtime {
	var sb strings.Builder
	sb.WriteString(`
identity: {allow_client_tenant: true} # the tenant header as sent: a test
backends:
  - {name: openai, schema: openai, url: https://api.openai.com}
models:
  - {name: gpt-4o-mini, pool: cheap}
pools:
  - {name: cheap, backends: [{backend: openai}]}
  - {name: big, backends: [{backend: openai}]}
routing:
  tenant_header: x-tenant
  headers: [x-team]
routes:
`)
	conds := []string{
		`tenant == "blocked-%d"`,
		`class == "code" && input_tokens > %d000`,
		`images && headers["x-team"] == "vision-%d"`,
		`response_format == "json_schema" && max_tokens > %d0000`,
		`signals.exists(s, s == "reasoning:prove-%d")`,
	}
	for i := range 19 {
		fmt.Fprintf(&sb, "  - {name: r%d, match: {model: auto, when: '%s'}, pool: big}\n", i, fmt.Sprintf(conds[i%len(conds)], i))
	}
	sb.WriteString("  - {name: last, match: {model: auto, when: 'class == \"chat\" || class == \"extraction\" || class == \"reasoning\"'}, pool: cheap}\n")
	c, err := Parse([]byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	rt, err := Topology(c)
	if err != nil {
		b.Fatal(err)
	}
	return rt
}

// benchBody is a chat request of about size bytes: a system prompt and a
// user question padded with prose.
func benchBody(size int) []byte {
	prose := "Please summarize the following meeting notes for the team and list the decisions we made. "
	text := strings.Repeat(prose, size/len(prose)+1)[:size-200]
	return fmt.Appendf(nil, `{"model":"auto","user":"u-42","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":%q}]}`, text)
}

// BenchmarkRoutingDecision measures what the router adds per request when
// rules need features: parsing the body for features, classifying it, and
// evaluating 20 CEL rules (19 misses, then the match).
func BenchmarkRoutingDecision(b *testing.B) {
	rt := benchRules(b)
	for _, size := range []int{2 << 10, 64 << 10} {
		body := benchBody(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				f, err := rt.Classifier.Features(body)
				if err != nil {
					b.Fatal(err)
				}
				f.Tenant, f.Headers = "acme", map[string]string{"x-team": "search"}
				d, err := rt.Decide(&f)
				if err != nil || d.Route != "last" {
					b.Fatalf("decision %+v, %v", d, err)
				}
			}
		})
	}
}

// BenchmarkDecide20Rules is the rule walk alone: 19 CEL conditions that do
// not match, then the one that does, on precomputed features.
func BenchmarkDecide20Rules(b *testing.B) {
	rt := benchRules(b)
	f0, err := rt.Classifier.Features(benchBody(2 << 10))
	if err != nil {
		b.Fatal(err)
	}
	f0.Tenant, f0.Headers = "acme", map[string]string{"x-team": "search"}
	b.ReportAllocs()
	for b.Loop() {
		f := f0
		if d, err := rt.Decide(&f); err != nil || d.Route != "last" {
			b.Fatalf("decision %+v, %v", d, err)
		}
	}
}
