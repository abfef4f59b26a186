package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvoyConfigTargets: each -target prints exactly the checked-in
// rendering of the quickstart, on stdout and with -o.
func TestEnvoyConfigTargets(t *testing.T) {
	goldens := map[string]string{
		"istio":      "../../envoy/istio/quickstart.yaml",
		"kubernetes": "../../examples/kubernetes/quickstart.yaml",
		"envoy":      "../../examples/kubernetes/quickstart-envoy.yaml",
	}
	for target, golden := range goldens {
		t.Run(target, func(t *testing.T) {
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{"envoy-config", "-config", quickstart, "-target", target}, &stdout, &stderr); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if !bytes.Equal(stdout.Bytes(), want) {
				t.Errorf("-target %s output differs from %s; re-render with `make envoy`", target, golden)
			}
			out := filepath.Join(t.TempDir(), "out.yaml")
			if err := run(context.Background(), []string{"envoy-config", "-config", quickstart, "-target", target, "-o", out}, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
				t.Errorf("-o output differs from %s", golden)
			}
		})
	}
}

func TestEnvoyConfigTargetFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stdout, or in the error when wantErr
		err  bool
	}{
		{[]string{"-target", "kubernetes", "-namespace", "ai", "-replicas", "3", "-mesh", "ambient", "-image", "example.com/llmproc:1"},
			"istio.io/dataplane-mode: ambient", false},
		{[]string{"-target", "istio", "-gateway", "gw", "-gateway-port", "8080", "-transparent"}, "portNumber: 8080", false},
		{[]string{"-target", "nomad"}, `-target "nomad": want bootstrap or istio, kubernetes, envoy`, true},
		{[]string{"-target", "kubernetes", "-replicas", "0"}, "-replicas 0", true},
		{[]string{"-target", "istio", "-gateway-port", "70000"}, "-gateway-port 70000", true},
		{[]string{"-target", "kubernetes", "-mesh", "linkerd"}, `mesh "linkerd"`, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"envoy-config", "-config", quickstart}, tt.args...), &stdout, &stderr)
			if tt.err {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want one containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout.String(), tt.want) {
				t.Errorf("output lacks %q", tt.want)
			}
		})
	}
}
