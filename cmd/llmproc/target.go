package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/llmproc/llmproc/envoy/mesh"
)

// targetBootstrap is envoy-config's default target: the standalone Envoy
// bootstrap. The others are mesh.Targets.
const targetBootstrap = "bootstrap"

// targetOptions are envoy-config's -target and the flags of the Kubernetes
// and Istio renderings.
type targetOptions struct {
	name string
	opts mesh.Options
	bind func() error // copies the numeric flags into opts, checked
}

// targetFlags registers -target and the rendering flags on fs.
func targetFlags(fs *flag.FlagSet) *targetOptions {
	t := &targetOptions{}
	image := mesh.DefaultImage
	if version != "dev" {
		image = "ghcr.io/llmproc/llmproc:" + version
	}
	fs.StringVar(&t.name, "target", targetBootstrap, "what to render: "+targetBootstrap+" (Envoy bootstrap), "+strings.Join(mesh.Targets, ", "))
	fs.StringVar(&t.opts.Namespace, "namespace", mesh.DefaultNamespace, "namespace of llmproc, its gateway and every rendered object")
	fs.StringVar(&t.opts.Gateway, "gateway", mesh.DefaultGateway, "name of the LLM gateway (Gateway API, class istio)")
	gwPort := fs.Uint("gateway-port", mesh.DefaultGatewayPort, "the LLM gateway's HTTP listener port")
	fs.StringVar(&t.opts.Image, "image", image, "llmproc's container image")
	fs.StringVar(&t.opts.EnvoyImage, "envoy-image", mesh.DefaultEnvoyImage, "plain Envoy's container image (-target envoy)")
	replicas := fs.Int("replicas", mesh.DefaultReplicas, "replicas of llmproc (and of plain Envoy)")
	fs.StringVar(&t.opts.Secret, "secret", mesh.DefaultSecret, "Secret holding the provider credentials (referenced, never inlined)")
	fs.StringVar(&t.opts.TrustDomain, "trust-domain", mesh.DefaultTrustDomain, "the mesh's trust domain (AuthorizationPolicy principals)")
	fs.StringVar(&t.opts.Mesh, "mesh", mesh.MeshSidecar, "how llmproc joins Istio: "+mesh.MeshSidecar+", "+mesh.MeshAmbient+" or "+mesh.MeshNone)
	fs.BoolVar(&t.opts.Transparent, "transparent", false, "also route plain-HTTP calls to provider hosts (port 80) to the gateway (sidecar mode)")
	t.bind = func() error {
		if *gwPort == 0 || *gwPort > 65535 {
			return fmt.Errorf("-gateway-port %d: want 1-65535", *gwPort)
		}
		if *replicas < 1 || *replicas > 1000 {
			return fmt.Errorf("-replicas %d: want 1-1000", *replicas)
		}
		t.opts.GatewayPort = uint32(*gwPort)
		t.opts.Replicas = int32(*replicas)
		return nil
	}
	return t
}

// render writes the target's objects for the config at path.
func (t *targetOptions) render(path, out string, stdout io.Writer) error {
	if !slices.Contains(mesh.Targets, t.name) {
		return fmt.Errorf("-target %q: want %s or %s", t.name, targetBootstrap, strings.Join(mesh.Targets, ", "))
	}
	if err := t.bind(); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	src, err := mesh.Load(data)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	y, err := mesh.Render(src, t.name, t.opts)
	if err != nil {
		return err
	}
	return writeOut(out, y, stdout)
}
