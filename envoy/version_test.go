package envoy

import (
	"strings"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	for _, tt := range []struct {
		out  string
		ok   bool
		want string // in the error
	}{
		{"envoy  version: 7b8baff1758f0a584dcc3cb657b5032000bcb3d7/1.37.0/Clean/RELEASE/BoringSSL", true, ""},
		{"envoy  version: 0123abcd/1.37.4/Clean/RELEASE/BoringSSL\n", true, ""},
		{"envoy  version: 0123abcd/1.40.0-dev/Modified/DEBUG/BoringSSL", true, ""},
		{"envoy  version: 0123abcd/2.0.0/Clean/RELEASE/BoringSSL", true, ""},
		{"envoy  version: 0123abcd/1.36.2/Clean/RELEASE/BoringSSL", false, "Envoy 1.36.2, older than 1.37"},
		{"envoy  version: 0123abcd/1.31.0/Clean/RELEASE/BoringSSL", false, "use Envoy 1.37 or newer (Istio 1.29 or newer)"},
		{"envoy 1.37.0", false, "no Envoy version"},
		{"", false, "no Envoy version"},
	} {
		err := CheckVersion(tt.out)
		if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckVersion(%q) = %v, want ok %v (%q)", tt.out, err, tt.ok, tt.want)
		}
	}
}

// TestRenderingNamesTheFloor: envoy-config's output says which Envoy it needs.
func TestRenderingNamesTheFloor(t *testing.T) {
	y, err := YAML(render(t, load(t, quickstartConfig)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(y), "# ") || !strings.Contains(strings.SplitN(string(y), "static_resources", 2)[0], "Needs Envoy "+MinVersion+" or newer (Istio "+MinIstio) {
		t.Errorf("bootstrap does not open with the version floor:\n%.300s", y)
	}
}
