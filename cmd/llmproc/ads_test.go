package main

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/llmproc/llmproc/envoy"
	"github.com/llmproc/llmproc/filter/config"
)

// TestEnvoyConfigADS: `envoy-config -ads` prints the checked-in
// envoy/quickstart-ads.yaml, which passes CheckADS with the resources llmproc
// serves for that config.
func TestEnvoyConfigADS(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"envoy-config", "-ads", "-config", quickstart}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\nstderr: %s", err, stderr.String())
	}
	want, err := os.ReadFile("../../envoy/quickstart-ads.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Fatalf("envoy-config -ads differs from envoy/quickstart-ads.yaml; re-render it with `make envoy`")
	}
	bs, err := envoy.Parse(stdout.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(quickstart)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Topology(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := envoy.CheckADSBootstrap(bs, rt); err != nil {
		t.Fatal(err)
	}
	if bs.GetDynamicResources().GetAdsConfig() == nil || len(bs.GetStaticResources().GetListeners()) != 0 {
		t.Error("-ads rendered a static bootstrap")
	}
}
