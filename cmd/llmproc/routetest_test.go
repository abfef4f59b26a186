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

const routingExample = "../../examples/routing-by-task/llmproc.yaml"

func TestRouteTestExample(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"route-test", "-config", routingExample, "../../examples/routing-by-task/requests.jsonl"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("route-test: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "17 requests, 0 failed") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}

func TestRouteTestMismatch(t *testing.T) {
	reqs := filepath.Join(t.TempDir(), "r.jsonl")
	os.WriteFile(reqs, []byte(`{"name":"wrong","body":{"model":"auto","messages":[{"role":"user","content":"hello"}]},"expect":{"pool":"flagship"}}`+"\n"), 0o644)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"route-test", "-config", routingExample, reqs}, &stdout, &stderr)
	if !errors.Is(err, errMismatch) {
		t.Fatalf("route-test = %v, want errMismatch", err)
	}
	if !strings.Contains(stdout.String(), `FAIL pool: want "flagship", got "cheap"`) || !strings.Contains(stdout.String(), "1 requests, 1 failed") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	if err := run(context.Background(), []string{"route-test", "-config", routingExample}, &stdout, &stderr); err == nil {
		t.Error("route-test without a requests file should fail")
	}
}
