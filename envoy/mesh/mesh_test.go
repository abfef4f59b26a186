package mesh

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/llmproc/llmproc/filter/config"
)

var update = flag.Bool("update", false, "rewrite the golden renderings in envoy/istio and examples/kubernetes")

// goldens are the example configs whose renderings are checked in: the Istio
// objects in envoy/istio/NAME.yaml, llmproc's in examples/kubernetes/NAME.yaml
// and plain Envoy's in examples/kubernetes/NAME-envoy.yaml.
var goldens = []string{"quickstart", "routing-by-task", "openai", "jwt", "tracing"}

func goldenPath(name, target string) string {
	switch target {
	case TargetIstio:
		return filepath.Join("..", "istio", name+".yaml")
	case TargetEnvoy:
		return filepath.Join("..", "..", "examples", "kubernetes", name+"-envoy.yaml")
	}
	return filepath.Join("..", "..", "examples", "kubernetes", name+".yaml")
}

func load(t testing.TB, path string) *Source {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func example(name string) string {
	return filepath.Join("..", "..", "examples", name, "llmproc.yaml")
}

// TestGolden keeps the checked-in renderings equal to what the example configs
// render to; `make envoy` (go test ./envoy/... -run TestGolden -update)
// rewrites them.
func TestGolden(t *testing.T) {
	for _, name := range goldens {
		for _, target := range Targets {
			t.Run(name+"/"+target, func(t *testing.T) {
				got, err := Render(load(t, example(name)), target, Options{})
				if err != nil {
					t.Fatal(err)
				}
				path := goldenPath(name, target)
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v: run `make envoy` to render it", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s is stale; run `make envoy` to re-render it.\n-checked in +rendered:\n%s",
						path, cmp.Diff(string(want), string(got)))
				}
				if err := Check(want); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestExamples renders every example config for every target and mesh mode
// and checks the result strictly, so no example can drift into objects
// admission would refuse.
func TestExamples(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", "llmproc.yaml"))
	if err != nil || len(paths) < 2 {
		t.Fatalf("examples: %v %v", paths, err)
	}
	paths = append(paths, filepath.Join("..", "..", "examples", "prices", "prices.yaml"), filepath.Join("..", "testdata", "https.yaml"))
	opts := map[string]Options{
		"default":     {},
		"ambient":     {Mesh: MeshAmbient},
		"none":        {Mesh: MeshNone, Namespace: "ai", Gateway: "gw", GatewayPort: 8080, Replicas: 3},
		"transparent": {Transparent: true},
	}
	for _, p := range paths {
		src := load(t, p)
		for oname, o := range opts {
			if oname != "default" && !strings.HasSuffix(p, "https.yaml") && !strings.Contains(p, "openai") {
				continue // every option on two configs is enough
			}
			for _, target := range Targets {
				t.Run(filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p)+"/"+oname+"/"+target, func(t *testing.T) {
					y, err := Render(src, target, o)
					if err != nil {
						t.Fatal(err)
					}
					objs, err := Parse(y)
					if err != nil {
						t.Fatal(err)
					}
					if target == TargetIstio {
						gatewayBootstrap(t, src, o, objs)
					}
				})
			}
		}
	}
}

func TestRenderedObjects(t *testing.T) {
	src := load(t, example("openai"))
	kinds := func(objs []runtime.Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.GetObjectKind().GroupVersionKind().Kind)
		}
		return out
	}
	tests := []struct {
		target string
		opts   Options
		want   []string
	}{
		{TargetIstio, Options{}, []string{"Gateway", "EnvoyFilter", "EnvoyFilter", "EnvoyFilter", "VirtualService", "ServiceEntry"}},
		{TargetIstio, Options{Transparent: true}, []string{"Gateway", "EnvoyFilter", "EnvoyFilter", "EnvoyFilter", "VirtualService", "ServiceEntry", "VirtualService"}},
		{TargetKubernetes, Options{}, []string{"Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor", "AuthorizationPolicy"}},
		{TargetKubernetes, Options{Mesh: MeshNone}, []string{"Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"}},
		{TargetEnvoy, Options{}, []string{"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Service"}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			y, err := Render(src, tt.target, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Parse(y)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, kinds(objs)); d != "" {
				t.Errorf("kinds (-want +got):\n%s", d)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	src := load(t, example("quickstart"))
	for _, o := range []Options{{Mesh: "linkerd"}, {Replicas: -1}} {
		if _, err := Render(src, TargetKubernetes, o); err == nil {
			t.Errorf("Render with %+v: no error", o)
		}
	}
	if _, err := Render(src, "nomad", Options{}); err == nil || !strings.Contains(err.Error(), "istio, kubernetes, envoy") {
		t.Errorf("unknown target: %v", err)
	}
}

func TestRenderIsStable(t *testing.T) {
	src := load(t, filepath.Join("..", "testdata", "https.yaml"))
	for _, target := range Targets {
		a, err := Render(src, target, Options{Transparent: true})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Render(src, target, Options{Transparent: true})
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two renderings differ", target)
		}
	}
}

func TestPodConfig(t *testing.T) {
	in := []byte("# top comment\nlog: {level: info} # trailing\nlisten:\n  grpc: 127.0.0.1:7000\n  http: 127.0.0.1:7001\nbackends: []\n")
	out, err := podConfig(in, 7000, 7001)
	if err != nil {
		t.Fatal(err)
	}
	want := "# top comment\nlog: {level: info} # trailing\nlisten:\n  grpc: 0.0.0.0:7000\n  http: 0.0.0.0:7001\nbackends: []\n"
	if string(out) != want {
		t.Errorf("podConfig:\n%s\nwant:\n%s", out, want)
	}
	// A config without a listen block gets one.
	out, err = podConfig([]byte("backends: []\n"), 50051, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := "backends: []\nlisten:\n  grpc: 0.0.0.0:50051\n"; string(out) != want {
		t.Errorf("podConfig without listen:\n%s\nwant:\n%s", out, want)
	}
	if _, err := podConfig([]byte("- a list\n"), 1, 0); err == nil {
		t.Error("podConfig of a list: no error")
	}
}

func TestSecretRefs(t *testing.T) {
	c := &config.Config{
		Backends: []config.Backend{
			{Credential: config.Credential{Env: "OPENAI_API_KEY"}},
			{Credential: config.Credential{Env: "OPENAI_API_KEY"}},
			{Credential: config.Credential{File: "/var/run/secrets/gcp/sa.json"}},
			{Credential: config.Credential{File: "/var/run/secrets/gcp/token"}},
			{Credential: config.Credential{File: "/etc/anthropic/key"}, CredentialNext: config.Credential{File: "/etc/anthropic/key-next"}},
			{Credential: config.Credential{Env: "GROQ_API_KEY"}, CredentialNext: config.Credential{Env: "GROQ_API_KEY_NEXT"}},
			{},
		},
		Cache: config.Cache{Redis: &config.Redis{Password: config.Credential{Env: "REDIS_PASSWORD"}}},
	}
	env, vols, mounts, err := secretRefs(c, "creds")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range env {
		if e.Value != "" || e.ValueFrom.SecretKeyRef.Name != "creds" || e.ValueFrom.SecretKeyRef.Key != e.Name {
			t.Errorf("env %s is not a reference to creds/%s: %+v", e.Name, e.Name, e)
		}
		names = append(names, e.Name)
	}
	if d := cmp.Diff([]string{"OPENAI_API_KEY", "GROQ_API_KEY", "GROQ_API_KEY_NEXT", "REDIS_PASSWORD"}, names); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
	type vm struct{ Dir, Keys string }
	var got []vm
	for i, m := range mounts {
		var keys []string
		for _, it := range vols[i].Secret.Items {
			keys = append(keys, it.Key+"="+it.Path)
		}
		if !m.ReadOnly || vols[i].Secret.SecretName != "creds" || m.Name != vols[i].Name {
			t.Errorf("mount %+v / volume %+v", m, vols[i])
		}
		got = append(got, vm{m.MountPath, strings.Join(keys, ",")})
	}
	want := []vm{{"/var/run/secrets/gcp", "sa.json=sa.json,token=token"}, {"/etc/anthropic", "key=key,key-next=key-next"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("mounts (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"OPENAI_API_KEY", "sa.json", "token", "key", "key-next", "GROQ_API_KEY", "GROQ_API_KEY_NEXT", "REDIS_PASSWORD"}, SecretKeys(c)); d != "" {
		t.Errorf("SecretKeys (-want +got):\n%s", d)
	}

	c.Backends = append(c.Backends, config.Backend{Credential: config.Credential{File: "/other/key"}})
	if _, _, _, err := secretRefs(c, "creds"); err == nil || !strings.Contains(err.Error(), `Secret key "key"`) {
		t.Errorf("two files named key: %v", err)
	}
}

// TestNoInlineSecrets renders a config whose credentials are set in the
// environment and checks that no value reaches the rendering.
func TestNoInlineSecrets(t *testing.T) {
	const secret = "sk-this-must-never-be-rendered"
	t.Setenv("OPENAI_API_KEY", secret)
	src := load(t, example("openai"))
	for _, target := range Targets {
		y, err := Render(src, target, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(y, []byte(secret)) {
			t.Errorf("%s: the credential's value is in the rendering", target)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	src := load(t, example("quickstart"))
	istio, err := Render(src, TargetIstio, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kube, err := Render(src, TargetKubernetes, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		in        []byte
		old, repl string
		want      error
	}{
		{"unknown field in a Deployment", kube, "  replicas: 2\n", "  replicas: 2\n  replicaz: 2\n", ErrDecode},
		{"snake_case key in an EnvoyFilter spec", istio, "  configPatches:\n", "  config_patches:\n", ErrDecode},
		{"unknown field in an EnvoyFilter spec", istio, "  priority: 10\n", "  priority: 10\n  prio: 1\n", ErrDecode},
		{"unknown field in a patch value", istio, "        per_connection_buffer_limit_bytes: 16777216\n",
			"        per_connection_buffer_limit_bytes: 16777216\n        per_connection_buffer: 1\n", ErrPatch},
		{"unknown type in a patch value", istio, "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
			"type.googleapis.com/envoy.extensions.filters.http.ext_proc.v9.ExternalProcessor", ErrPatch},
		{"patch value failing validation", istio, "        connect_timeout: 5s\n", "        connect_timeout: -5s\n", ErrPatch},
		{"packed value failing validation", istio, "          message_timeout: 10s\n", "          message_timeout: -10s\n", ErrPatch},
		{"merged value failing validation", istio, "            - body_format_override:\n", "            - status_code: 99\n              body_format_override:\n", ErrPatch},
		{"filter without typed_config", istio, "            - name: envoy.filters.http.upstream_codec\n              typed_config:\n                '@type': type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec\n",
			"            - name: envoy.filters.http.upstream_codec\n", ErrPatch},
		{"listener patch with a route match", istio, "  - applyTo: LISTENER\n    match:\n      context: GATEWAY\n      listener:\n        portNumber: 80\n",
			"  - applyTo: LISTENER\n    match:\n      context: GATEWAY\n      routeConfiguration:\n        portNumber: 80\n", ErrPatch},
		{"bad name", kube, "  name: llmproc-config\n", "  name: LLMproc_config\n", ErrName},
		{"unknown kind", kube, "kind: ConfigMap\n", "kind: ConfigMapz\n", ErrUnknownKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(tt.in, []byte(tt.old)) {
				t.Fatalf("rendering has no %q", tt.old)
			}
			bad := bytes.Replace(tt.in, []byte(tt.old), []byte(tt.repl), 1)
			err := Check(bad)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

// identity.source jwt on Istio: a RequestAuthentication on the gateway with
// the config's issuer, audiences and JWKS (a jwks_file inlined), and the
// router filter forwarded jwt_authn's metadata; every object passes Check.
func TestIstioJWT(t *testing.T) {
	src := load(t, example("jwt"))
	out, err := Render(src, TargetIstio, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(out); err != nil {
		t.Fatal(err)
	}
	objs, err := Istio(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ra *securityv1.RequestAuthentication
	for _, o := range objs {
		if r, ok := o.(*securityv1.RequestAuthentication); ok {
			ra = r
		}
	}
	if ra == nil {
		t.Fatal("no RequestAuthentication")
	}
	rule := ra.Spec.GetJwtRules()[0]
	if rule.GetIssuer() != "https://login.example.com" || rule.GetJwksUri() != "https://login.example.com/.well-known/jwks.json" ||
		len(rule.GetAudiences()) != 1 || ra.Spec.GetTargetRefs()[0].GetName() != "llm-gateway" || rule.GetForwardOriginalToken() {
		t.Fatalf("rule %v, targets %v", rule, ra.Spec.GetTargetRefs())
	}
	if !strings.Contains(string(out), "- envoy.filters.http.jwt_authn\n") {
		t.Error("the router filter is not forwarded jwt_authn's metadata")
	}

	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src.Text), "jwks_uri: https://login.example.com/.well-known/jwks.json", "jwks_file: "+jwks, 1)
	local, err := Load([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	out, err = Render(local, TargetIstio, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `jwks: '{"keys":[]}'`) {
		t.Errorf("jwks_file not inlined:\n%s", out)
	}
	if err := Check(out); err != nil {
		t.Fatal(err)
	}
}
