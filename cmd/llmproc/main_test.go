package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const quickstart = "../../examples/quickstart/llmproc.yaml"

func TestRun(t *testing.T) {
	t.Setenv("PRIMARY_API_KEY", "sk-primary")
	t.Setenv("SECONDARY_API_KEY", "sk-secondary")
	tests := []struct {
		name       string
		args       []string
		wantErr    bool
		wantUsage  bool     // the error is errUsage
		stdout     []string // each must appear in stdout
		stderr     []string // each must appear in stderr
		noStdout   bool
		noStderrOK bool // stderr must stay empty
	}{
		{name: "version", args: []string{"version"}, stdout: []string{"llmproc "}, noStderrOK: true},
		{name: "no args", args: nil, wantErr: true, wantUsage: true, stderr: []string{"usage: llmproc <command>"}, noStdout: true},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: true, wantUsage: true,
			stderr: []string{`unknown command "frobnicate"`, "usage: llmproc <command>"}, noStdout: true},
		{name: "help", args: []string{"help"}, stdout: []string{"usage: llmproc <command>", "envoy-config"}, noStderrOK: true},
		{name: "unknown flag", args: []string{"validate", "-nope"}, wantErr: true, wantUsage: true,
			stderr: []string{"flag provided but not defined: -nope"}, noStdout: true},
		{name: "validate quickstart", args: []string{"validate", "-config", quickstart},
			stdout: []string{"ok (2 backends, 3 models, 3 pools, 1 routes)"}, noStderrOK: true},
		{name: "validate missing file", args: []string{"validate", "-config", "testdata/does-not-exist.yaml"}, wantErr: true, noStdout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("run(%q) = %v, want error %v\nstderr: %s", tt.args, err, tt.wantErr, stderr.String())
			}
			if errors.Is(err, errUsage) != tt.wantUsage {
				t.Errorf("run(%q) = %v; usage error %v", tt.args, err, tt.wantUsage)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout %q does not contain %q", stdout.String(), s)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), s)
				}
			}
			if tt.noStdout && stdout.Len() != 0 {
				t.Errorf("unexpected stdout: %s", stdout.String())
			}
			if tt.noStderrOK && stderr.Len() != 0 {
				t.Errorf("unexpected stderr: %s", stderr.String())
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // every problem, each with its field path
	}{
		{"several problems", "testdata/broken.yaml", []string{
			`log.level: unknown value "loud"`,
			`backends[1].schema: unknown value "cohere"`,
			`pools[0].backends[0].backend: unknown backend "azur"`,
			`models[0].pool: unknown pool "nowhere"`,
		}},
		{"missing env credential", "testdata/missing_env.yaml", []string{
			"backends[0].credential.env:",
			"LLMPROC_TEST_UNSET_KEY",
		}},
		{"quickstart without its keys", quickstart, []string{
			"backends[0].credential.env:",
			"backends[1].credential.env:",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LLMPROC_TEST_UNSET_KEY", "")
			t.Setenv("PRIMARY_API_KEY", "")
			t.Setenv("SECONDARY_API_KEY", "")
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"validate", "-config", tt.file}, &stdout, &stderr)
			if err == nil {
				t.Fatalf("validate %s succeeded: %s", tt.file, stdout.String())
			}
			if errors.Is(err, errUsage) {
				t.Fatalf("a config problem reported as a usage error: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error does not name the file %s:\n%v", tt.file, err)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout on failure: %s", stdout.String())
			}
		})
	}
}

// TestEnvoyConfigQuickstart checks that the checked-in envoy/quickstart.yaml is
// exactly what envoy-config renders, on stdout and with -o.
func TestEnvoyConfigQuickstart(t *testing.T) {
	want, err := os.ReadFile("../../envoy/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("stdout", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"envoy-config", "-config", quickstart}, &stdout, &stderr); err != nil {
			t.Fatalf("%v\nstderr: %s", err, stderr.String())
		}
		if !bytes.Equal(stdout.Bytes(), want) {
			t.Errorf("envoy-config output differs from envoy/quickstart.yaml (%d vs %d bytes); re-render it with\n\tgo run ./cmd/llmproc envoy-config -config examples/quickstart/llmproc.yaml -o envoy/quickstart.yaml", stdout.Len(), len(want))
		}
	})
	t.Run("-o", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "envoy.yaml")
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"envoy-config", "-config", quickstart, "-o", out}, &stdout, &stderr); err != nil {
			t.Fatalf("%v\nstderr: %s", err, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("-o also wrote to stdout: %d bytes", stdout.Len())
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("-o %s differs from envoy/quickstart.yaml", out)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"envoy-config", "-config", "testdata/broken.yaml"}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), `pools[0].backends[0].backend: unknown backend "azur"`) {
			t.Errorf("got %v", err)
		}
		if stdout.Len() != 0 {
			t.Errorf("rendered despite errors: %s", stdout.String())
		}
	})
}

// TestEnvoyConfigNeedsNoCredentials: rendering only needs the topology, so a
// CI job without provider keys can still produce the bootstrap.
func TestEnvoyConfigNeedsNoCredentials(t *testing.T) {
	t.Setenv("PRIMARY_API_KEY", "")
	t.Setenv("SECONDARY_API_KEY", "")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"envoy-config", "-config", quickstart}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
}

func TestServeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"serve", "-config", "testdata/serve.yaml"}, &stdout, &stderr); err != nil {
		t.Fatalf("serve with a canceled context: %v\nstderr: %s", err, stderr.String())
	}
}

func TestServeBadConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "-config", "testdata/broken.yaml"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("got %v", err)
	}
}
