package stack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmproc/llmproc/e2e/harness"
	"github.com/llmproc/llmproc/envoy"
)

// fakeEnvoy writes a script that prints out for --version, as Envoy does.
func fakeEnvoy(t *testing.T, out string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "envoy")
	script := "#!/bin/sh\n[ \"$1\" = --version ] && { printf '%s\\n' '" + out + "'; exit 0; }\nexit 3\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRealEnvoyVersionChecked: `make run` and the e2e tests with ENVOY_BIN
// refuse an Envoy older than the rendered config needs, before starting it,
// saying which release is needed.
func TestRealEnvoyVersionChecked(t *testing.T) {
	ctx := context.Background()
	old := fakeEnvoy(t, "envoy  version: 0123abcd/1.35.3/Clean/RELEASE/BoringSSL")
	_, err := startEnvoy(ctx, Options{EnvoyBin: old, WorkDir: t.TempDir()}, nil, "127.0.0.1:1", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "Envoy 1.35.3, older than "+envoy.MinVersion) || !strings.Contains(err.Error(), old) {
		t.Errorf("old Envoy: %v", err)
	}
	if err := checkEnvoyVersion(ctx, fakeEnvoy(t, "envoy  version: 0123abcd/"+envoy.MinVersion+".0/Clean/RELEASE/BoringSSL")); err != nil {
		t.Errorf("Envoy %s refused: %v", envoy.MinVersion, err)
	}
	if err := checkEnvoyVersion(ctx, fakeEnvoy(t, "not an envoy")); err == nil || !strings.Contains(err.Error(), "no Envoy version") {
		t.Errorf("unparsable --version: %v", err)
	}
}

// TestHarnessPlaysTheFloor: the harness stands in for the oldest Envoy the
// rendered config supports, so it fails where that Envoy would.
func TestHarnessPlaysTheFloor(t *testing.T) {
	if harness.DefaultEnvoyVersion != envoy.MinVersion {
		t.Errorf("harness.DefaultEnvoyVersion %s, envoy.MinVersion %s", harness.DefaultEnvoyVersion, envoy.MinVersion)
	}
}
