package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// credential_next is read like credential, re-read like it when it is a
// file, and a problem reading it names its own field.
func TestCredentialNext(t *testing.T) {
	dir := t.TempDir()
	next := filepath.Join(dir, "next")
	yaml := strings.Replace(minimal, "credential: {env: OPENAI_API_KEY}",
		`credential: {env: OPENAI_API_KEY}
    credential_next: {file: "`+next+`"}`, 1)
	cfg := mustParse(t, yaml)
	if got := cfg.CredentialFiles(); !slices.Contains(got, next) {
		t.Errorf("CredentialFiles() = %v, want %s among them (re-read on change)", got, next)
	}
	_, err := Compile(cfg, env("OPENAI_API_KEY", "sk-old"))
	if err == nil || !strings.Contains(err.Error(), "backends[0].credential_next.file: ") {
		t.Fatalf("missing file: err = %v, want it to name backends[0].credential_next.file", err)
	}
	if err := os.WriteFile(next, []byte("sk-new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := Compile(cfg, env("OPENAI_API_KEY", "sk-old"))
	if err != nil {
		t.Fatal(err)
	}
	if b := rt.Backends["openai"]; b.Credential != "sk-old" || b.CredentialNext != "sk-new" {
		t.Errorf("credential %q, credential_next %q; want sk-old, sk-new", b.Credential, b.CredentialNext)
	}
	if b := mustCompile(t, minimal).Backends["openai"]; b.CredentialNext != "" {
		t.Errorf("no credential_next configured, got %q", b.CredentialNext)
	}
}
