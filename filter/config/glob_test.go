package config

import (
	"testing"

	"github.com/llmproc/llmproc/filter/route"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"claude-sonnet-4-5*", "claude-sonnet-4-5", true},
		{"claude-sonnet-4-5*", "claude-sonnet-4-5-20250929", true},
		{"claude-sonnet-4-5*", "claude-sonnet-4-5[1m]", true},
		{"claude-sonnet-4-5*", "claude-sonnet-4", false},
		{"claude-*-4-5*", "claude-haiku-4-5-20251001", true},
		{"claude-*-4-5", "claude-haiku-4-5-x", false},
		{"*", "", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"claude-sonnet-4-5[1m]", "claude-sonnet-4-5[1m]", true}, // brackets are literal
		{"gpt-?", "gpt-4", false},                                // so is ?
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestGlobsOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"claude-sonnet-4-5*", "claude-sonnet-*", true},
		{"claude-sonnet-4-5*", "claude-haiku-4-5*", false},
		{"claude-haiku-4-5*", "claude-haiku-4-5-*", true},
		{"*-20250929", "claude-*", true},
		{"a*", "*b", true},
		{"a*c", "b*", false},
		{"a*x", "a*y", false},
		{"abc", "a*", true},
		{"abc", "a*d", false},
		{"*", "anything*", true},
	}
	for _, tt := range tests {
		if got := globsOverlap(tt.a, tt.b); got != tt.want {
			t.Errorf("globsOverlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := globsOverlap(tt.b, tt.a); got != tt.want {
			t.Errorf("globsOverlap(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

// FuzzGlobsOverlap: a name both patterns match proves they overlap.
func FuzzGlobsOverlap(f *testing.F) {
	f.Add("a*b", "*b*", "aXb")
	f.Add("claude-*", "*-4-5", "claude-haiku-4-5")
	f.Fuzz(func(t *testing.T, a, b, name string) {
		if len(a) > 64 || len(b) > 64 {
			return
		}
		if globMatch(a, name) && globMatch(b, name) && !globsOverlap(a, b) {
			t.Fatalf("%q matches %q and %q, which globsOverlap says do not overlap", name, a, b)
		}
	})
}

const globConfig = `
backends:
  - {name: anthropic, schema: anthropic, url: https://api.anthropic.com}
models:
  - {name: claude-sonnet-4-5, aliases: ["claude-sonnet-4-5*"], pool: claude, price: {input: 3, output: 15}}
  - {name: claude-haiku-4-5, aliases: [haiku, "claude-haiku-4-5*"], pool: claude, price: {input: 1, output: 5}}
  - {name: claude-sonnet-4-5-exact, pool: claude}
pools:
  - {name: claude, backends: [{backend: anthropic}]}
routes:
  - {name: dated-haiku, match: {model: claude-haiku-4-5-20251001}, pool: claude}
`

// TestGlobAliases: Claude Code's dated and suffixed names resolve to their
// model through its glob alias, an exact name wins over every pattern, and
// ModelMatch names the entry that matched.
func TestGlobAliases(t *testing.T) {
	rt := mustCompile(t, globConfig)
	tests := []struct{ name, model, field string }{
		{"claude-sonnet-4-5", "claude-sonnet-4-5", "models[0].name"},
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "models[0].aliases[0]"},
		{"claude-sonnet-4-5[1m]", "claude-sonnet-4-5", "models[0].aliases[0]"},
		{"claude-sonnet-4-5-exact", "claude-sonnet-4-5-exact", "models[2].name"},
		{"claude-haiku-4-5", "claude-haiku-4-5", "models[1].name"},
		{"claude-haiku-4-5-20251001", "claude-haiku-4-5", "models[1].aliases[1]"},
		{"haiku", "claude-haiku-4-5", "models[1].aliases[0]"},
		{"claude-opus-4-1", "", ""},
	}
	for _, tt := range tests {
		m, field, ok := rt.ModelMatch(tt.name)
		got := ""
		if ok {
			got = m.Name
		}
		if got != tt.model || field != tt.field {
			t.Errorf("ModelMatch(%q) = %q %q, want %q %q", tt.name, got, field, tt.model, tt.field)
		}
	}
	d, err := rt.Decide(&route.Features{Model: "claude-sonnet-4-5-20250929"})
	if err != nil || d.Pool.Name != "claude" || d.Model.Name != "claude-sonnet-4-5" {
		t.Errorf("Decide = %+v, %v", d, err)
	}
	if p, ok := rt.PriceFor("claude-haiku-4-5-20251001", ""); !ok || p.Input.Text != "1" {
		t.Errorf("PriceFor the dated haiku = %+v, %v", p, ok)
	}
	if d, err := rt.Decide(&route.Features{Model: "claude-haiku-4-5-20251001"}); err != nil || d.Route != "dated-haiku" {
		t.Errorf("a rule naming a dated name: %+v, %v", d, err)
	}
}
