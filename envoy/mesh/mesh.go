// Package mesh renders llmproc's Kubernetes and Istio objects from its config
// file, with the official Go types (k8s.io/api, istio.io/client-go, Gateway
// API, prometheus-operator) and the same go-control-plane builders as the
// standalone Envoy bootstrap, so the pools an Istio gateway gets are the pools
// the bootstrap has.
//
// Three renderings:
//
//   - Istio: the dedicated LLM gateway (a Gateway API Gateway of class istio)
//     and the EnvoyFilters that make it llmproc's Envoy: the router-role
//     ext_proc before the router, the pool clusters added whole, the pool
//     routes, the listener buffer limit; a ServiceEntry per provider host.
//   - Kubernetes: llmproc itself: Namespace, ServiceAccount, ConfigMap,
//     Deployment, Service, PodDisruptionBudget, ServiceMonitor and an
//     AuthorizationPolicy letting only the gateway call it.
//   - Envoy: a plain Envoy Deployment running the rendered bootstrap, for
//     clusters without Istio.
//
// Check decodes a rendering back strictly, the way admission would: every
// object into its Go type with unknown fields rejected, and every EnvoyFilter
// patch value into the go-control-plane type its applyTo implies.
package mesh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/llmproc/llmproc/envoy"
	"github.com/llmproc/llmproc/filter/config"
)

// Defaults for Options fields left empty.
const (
	DefaultNamespace   = "llmproc"
	DefaultGateway     = "llm-gateway"
	DefaultGatewayPort = 80
	DefaultImage       = "ghcr.io/llmproc/llmproc:latest"
	DefaultEnvoyImage  = "envoyproxy/envoy:v" + envoy.MinVersion + "-latest"
	DefaultReplicas    = 2
	DefaultSecret      = "llmproc-credentials"
	DefaultTrustDomain = "cluster.local"
)

// Mesh modes: how llmproc's namespace joins Istio.
const (
	MeshSidecar = "sidecar" // istio-injection=enabled
	MeshAmbient = "ambient" // istio.io/dataplane-mode=ambient
	MeshNone    = "none"    // no mesh: no labels, no AuthorizationPolicy
)

// Object names and labels shared by the renderings.
const (
	// Name is the name of llmproc's Deployment, Service, ServiceAccount,
	// PodDisruptionBudget, ServiceMonitor and AuthorizationPolicy.
	Name = "llmproc"
	// ConfigMapName holds llmproc.yaml.
	ConfigMapName = "llmproc-config"
	// ConfigDir is where the ConfigMap is mounted; the config file is
	// ConfigDir/ConfigFile.
	ConfigDir  = "/etc/llmproc"
	ConfigFile = "llmproc.yaml"
	// EnvoyName names the plain Envoy's objects.
	EnvoyName = "llmproc-envoy"
	// HeadlessName is the headless Service through which plain Envoy
	// resolves every llmproc pod (STRICT_DNS balances streams across them).
	HeadlessName = "llmproc-grpc"
	// NameLabel is the label every llmproc pod carries and selectors use.
	NameLabel = "app.kubernetes.io/name"
	// GRPCPortName and MetricsPortName name the container and Service ports.
	GRPCPortName    = "grpc"
	MetricsPortName = "http-metrics"
)

// Options are what the config file does not say about a cluster. Zero values
// take the defaults above.
type Options struct {
	// Namespace holds llmproc, its gateway and every rendered object.
	Namespace string
	// Gateway is the LLM gateway's name; Istio deploys it as Gateway+"-istio"
	// (Deployment, Service and ServiceAccount).
	Gateway string
	// GatewayPort is the gateway's plain-HTTP listener port.
	GatewayPort uint32
	// Image is llmproc's container image; EnvoyImage plain Envoy's.
	Image      string
	EnvoyImage string
	// Replicas of llmproc (and of plain Envoy); at least 2 by default.
	Replicas int32
	// Secret is the Secret provider credentials are read from: an env
	// credential NAME is key NAME, a file credential is key base(file).
	Secret string
	// TrustDomain is the mesh's SPIFFE trust domain.
	TrustDomain string
	// Mesh is MeshSidecar, MeshAmbient or MeshNone.
	Mesh string
	// Transparent also renders, per TLS provider host, port 80 on its
	// ServiceEntry and a VirtualService sending it to the LLM gateway, so
	// applications in sidecar mode keep their SDK and only change base_url
	// to http://<provider host>/v1.
	Transparent bool
}

func (o Options) withDefaults() (Options, error) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Namespace, DefaultNamespace)
	def(&o.Gateway, DefaultGateway)
	def(&o.Image, DefaultImage)
	def(&o.EnvoyImage, DefaultEnvoyImage)
	def(&o.Secret, DefaultSecret)
	def(&o.TrustDomain, DefaultTrustDomain)
	def(&o.Mesh, MeshSidecar)
	if o.GatewayPort == 0 {
		o.GatewayPort = DefaultGatewayPort
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	switch o.Mesh {
	case MeshSidecar, MeshAmbient, MeshNone:
	default:
		return o, fmt.Errorf("mesh %q: want %s, %s or %s", o.Mesh, MeshSidecar, MeshAmbient, MeshNone)
	}
	if o.Replicas < 1 {
		return o, fmt.Errorf("replicas %d: want at least 1", o.Replicas)
	}
	return o, nil
}

// GatewayService is the in-cluster name applications call the LLM gateway by.
func (o Options) GatewayService() string {
	return fmt.Sprintf("%s-istio.%s.svc.cluster.local", o.Gateway, o.Namespace)
}

// gatewayPrincipal is the SPIFFE identity of the gateway Istio deploys for a
// Gateway API Gateway: its own ServiceAccount, named like the Deployment.
func (o Options) gatewayPrincipal() string {
	return fmt.Sprintf("%s/ns/%s/sa/%s-istio", o.TrustDomain, o.Namespace, o.Gateway)
}

// Source is a loaded config: its text (for the ConfigMap) and its topology.
type Source struct {
	Text    []byte
	Config  *config.Config
	Runtime *config.Runtime
}

// Load parses config text and compiles its topology (no credentials read).
func Load(text []byte) (*Source, error) {
	c, err := config.Parse(text)
	if err != nil {
		return nil, err
	}
	rt, err := config.Topology(c)
	if err != nil {
		return nil, err
	}
	return &Source{Text: text, Config: c, Runtime: rt}, nil
}

// YAML renders objects as one multi-document YAML stream, each document
// preceded by "---". Keys are sorted; status and empty specs are left out.
func YAML(objs []runtime.Object) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		js, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("render %T: %w", o, err)
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			return nil, fmt.Errorf("render %T: %w", o, err)
		}
		delete(m, "status") // the API server's to write
		if s, ok := m["spec"].(map[string]any); ok && len(s) == 0 {
			delete(m, "spec")
		}
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("render %T: %w", o, err)
		}
		buf.WriteString("---\n")
		buf.Write(y)
	}
	return buf.Bytes(), nil
}

// hostPort splits "host:port" into its parts.
func hostPort(addr string) (string, uint32, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return h, uint32(n), nil
}

// dnsLabel turns a host name into a DNS-1123 label fragment (dots and other
// characters become dashes), at most max characters.
func dnsLabel(s string, max int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > max {
		out = strings.TrimRight(out[:max], "-")
	}
	return out
}

// Targets of Render.
const (
	TargetIstio      = "istio"      // Istio: the LLM gateway and its EnvoyFilters
	TargetKubernetes = "kubernetes" // llmproc's own Deployment and friends
	TargetEnvoy      = "envoy"      // plain Envoy running the bootstrap
)

// Targets lists Render's targets.
var Targets = []string{TargetIstio, TargetKubernetes, TargetEnvoy}

// Render renders a target as multi-document YAML with a header comment, and
// checks the result (Check) before returning it.
func Render(src *Source, target string, o Options) ([]byte, error) {
	var objs []runtime.Object
	var err error
	header := fmt.Sprintf("# Rendered by `llmproc envoy-config -target %s`; re-render rather than edit.\n", target)
	switch target {
	case TargetIstio:
		objs, err = Istio(src, o)
		header += "# Needs Istio " + envoy.MinIstio + " or newer, whose gateway runs Envoy " + envoy.MinVersion + " (see envoy.MinVersion).\n"
		header += TracingComment(src.Config)
	case TargetKubernetes:
		objs, err = Kubernetes(src, o)
		if err == nil {
			d, _ := o.withDefaults()
			header += secretComment(src.Config, d)
		}
	case TargetEnvoy:
		objs, err = Envoy(src, o)
	default:
		return nil, fmt.Errorf("target %q: want one of %s", target, strings.Join(Targets, ", "))
	}
	if err != nil {
		return nil, err
	}
	if target != TargetKubernetes {
		header += loopbackComment(src.Runtime)
	}
	y, err := YAML(objs)
	if err != nil {
		return nil, err
	}
	out := append([]byte(header), y...)
	if err := Check(out); err != nil {
		return nil, fmt.Errorf("rendered %s objects are invalid: %w", target, err)
	}
	return out, nil
}

// loopbackComment warns about backends on loopback addresses, which a pod
// cannot reach (the quickstart's fake providers are such).
func loopbackComment(rt *config.Runtime) string {
	var names []string
	for _, b := range rt.Source.Backends {
		rb := rt.Backends[b.Name]
		if rb == nil {
			continue
		}
		if a, err := netip.ParseAddr(rb.Host); (err == nil && a.IsLoopback()) || rb.Host == "localhost" {
			names = append(names, b.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("# Note: backends %s are on a loopback address; from a pod their requests fail (503 in OpenAI JSON).\n",
		strings.Join(names, ", "))
}
