package config

import (
	"testing"

	"github.com/llmproc/llmproc/filter/route"
)

// TestCacheMatch: a route's cache is a mode alone (the older form) or a
// mapping of mode and match; each part left out keeps the cache section's.
func TestCacheMatch(t *testing.T) {
	rt := mustCompile(t, `
backends:
  - {name: openai, schema: openai, url: https://api.openai.com, credential: {env: OPENAI_API_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: openai}]}
routes:
  - {name: scalar, match: {model: a}, pool: cheap, cache: all}
  - {name: both, match: {model: b}, pool: cheap, cache: {mode: all, match: normalized}}
  - {name: match-only, match: {model: c}, pool: cheap, cache: {match: semantic}}
  - {name: none, match: {model: d}, pool: cheap}
cache: {mode: deterministic, match: normalized, semantic: {embeddings_pool: cheap, model: text-embedding-3-small}}
`)
	for _, tc := range []struct{ model, mode, match string }{
		{"a", "all", "normalized"},
		{"b", "all", "normalized"},
		{"c", "deterministic", "semantic"},
		{"d", "deterministic", "normalized"},
		{"gpt-4o-mini", "deterministic", "normalized"},
	} {
		d, err := rt.Decide(&route.Features{Model: tc.model})
		if err != nil || d.Cache != tc.mode || d.CacheMatch != tc.match {
			t.Errorf("%s: mode %q match %q err %v, want %q %q", tc.model, d.Cache, d.CacheMatch, err, tc.mode, tc.match)
		}
	}
	rt = mustCompile(t, `
backends:
  - {name: openai, schema: openai, url: https://api.openai.com, credential: {env: OPENAI_API_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap}
pools:
  - {name: cheap, backends: [{backend: openai}]}
`)
	if d, _ := rt.Decide(&route.Features{Model: "gpt-4o-mini"}); d.CacheMatch != MatchExact {
		t.Errorf("default match %q, want exact", d.CacheMatch)
	}
}
