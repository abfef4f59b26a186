package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmproc/llmproc/filter/identity"
)

func TestIdentityCompile(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if _, _, err := identity.Create(keys, identity.Key{Tenant: "a"}, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	yaml := func(file string) string {
		return `
identity:
  source: client_keys
  keys_file: ` + file + `
  tenants: [{name: a, models: ["gpt-*", auto]}, {name: b}]
backends: [{name: p, schema: openai, url: "http://127.0.0.1:1"}]
models: [{name: gpt-4o-mini, aliases: [mini], pool: c}, {name: claude-haiku-4-5, aliases: ["haiku*"], pool: c}]
pools: [{name: c, backends: [{backend: p}]}]
`
	}
	cfg, err := Parse([]byte(yaml(keys)))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Compile(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rt.ClientKeys || rt.Keys.Len() != 1 {
		t.Fatalf("ClientKeys %v, %d keys", rt.ClientKeys, rt.Keys.Len())
	}
	if got := cfg.CredentialFiles(); len(got) != 1 || got[0] != keys {
		t.Errorf("watched files %v, want the keys file", got)
	}
	for _, tc := range []struct {
		tenant    string
		keyModels []string
		model     string
		want      bool
	}{
		{"a", nil, "gpt-4o-mini", true},
		{"a", nil, "mini", true}, // an alias of an allowed model
		{"a", nil, "auto", true},
		{"a", nil, "claude-haiku-4-5", false},
		{"a", nil, "haiku-latest", false},
		{"b", nil, "haiku-latest", true}, // no list: everything
		{"c", nil, "claude-haiku-4-5", true},
		{"c", []string{"claude-*"}, "haiku-latest", true}, // the glob alias names claude-haiku-4-5
		{"c", []string{"claude-*"}, "gpt-4o-mini", false},
		{"a", []string{"claude-*"}, "gpt-4o-mini", false}, // key narrows its tenant
	} {
		if got := rt.ModelAllowed(tc.tenant, tc.keyModels, tc.model); got != tc.want {
			t.Errorf("ModelAllowed(%q, %q, %q) = %v, want %v", tc.tenant, tc.keyModels, tc.model, got, tc.want)
		}
	}
	cfg, err = Parse([]byte(yaml(filepath.Join(dir, "absent.json"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(cfg, nil); err == nil || !strings.Contains(err.Error(), "identity.keys_file: ") {
		t.Fatalf("missing keys file: %v", err)
	}
	if _, err := Topology(cfg); err != nil {
		t.Fatalf("Topology reads no keys: %v", err)
	}
}
