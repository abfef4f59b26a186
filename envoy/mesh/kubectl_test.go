package mesh

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kubectlValidate finds kubectl-validate: $KUBECTL_VALIDATE, PATH, or
// $(go env GOPATH)/bin (`go install sigs.k8s.io/kubectl-validate@v0.0.4`).
func kubectlValidate(t *testing.T) string {
	if p := os.Getenv("KUBECTL_VALIDATE"); p != "" {
		return p
	}
	if p, err := exec.LookPath("kubectl-validate"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "kubectl-validate")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" { // make test installs it; CI must not skip silently
		t.Fatal("kubectl-validate not installed (make tools)")
	}
	t.Skip("kubectl-validate not installed (make tools, or go install sigs.k8s.io/kubectl-validate@v0.0.4)")
	return ""
}

// crds copies the CRDs of the Istio and Gateway API modules this package
// builds with (their schemas and CEL rules, as the API server has them) into
// a directory for kubectl-validate --local-crds.
func crds(t *testing.T) string {
	dir := t.TempDir()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	mods := strings.Fields(string(out))
	if len(mods) != 2 {
		t.Fatalf("module dirs: %q", out)
	}
	for dst, src := range map[string]string{
		"istio.yaml":    filepath.Join(mods[0], "kubernetes", "customresourcedefinitions.gen.yaml"),
		"gateways.yaml": filepath.Join(mods[1], "config", "crd", "standard", "gateway.networking.k8s.io_gateways.yaml"),
	} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestKubectlValidate runs kubectl-validate, the API server's own schema and
// CEL validation offline, over every golden rendering, with the Istio and
// Gateway API CRDs. ServiceMonitor documents are left out: their CRD is not
// in a module this project builds with (Parse still decodes them strictly).
// Skipped when kubectl-validate is not installed.
func TestKubectlValidate(t *testing.T) {
	bin := kubectlValidate(t)
	crdDir := crds(t)
	dir := t.TempDir()
	var files []string
	for _, name := range goldens {
		for _, target := range Targets {
			data, err := os.ReadFile(goldenPath(name, target))
			if err != nil {
				t.Fatal(err)
			}
			var kept []string
			for _, doc := range docSeparator.Split(string(data), -1) {
				if strings.TrimSpace(stripComments(doc)) != "" && !strings.Contains(doc, "\nkind: ServiceMonitor\n") {
					kept = append(kept, doc)
				}
			}
			f := filepath.Join(dir, name+"-"+target+".yaml")
			if err := os.WriteFile(f, []byte("---\n"+strings.Join(kept, "---\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	// A broken copy proves the tool validates rather than passing anything.
	istio, err := os.ReadFile(goldenPath("quickstart", TargetIstio))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(istio), "  gatewayClassName: istio\n", "  gatewayClassName: istio\n  bogus: 1\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(files ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"--local-crds", crdDir, "--version", "1.30"}, files...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := run(files...); err != nil {
		t.Fatalf("kubectl-validate: %v\n%s", err, out)
	}
	if out, err := run(bad); err == nil || !strings.Contains(out, "bogus") {
		t.Fatalf("kubectl-validate accepted an unknown field: %v\n%s", err, out)
	}
}
