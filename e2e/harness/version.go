package harness

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultEnvoyVersion is the Envoy release the harness behaves as unless
// Options.EnvoyVersion says otherwise: the oldest one llmproc's rendered
// configuration works on. 1.37 is the first release in which an upstream
// ext_proc filter's immediate response becomes a local reply
// (envoyproxy/envoy#41231); before it the request stalls.
const DefaultEnvoyVersion = "1.37"

// oldestEnvoyVersion is the oldest release whose differences the harness
// models.
var oldestEnvoyVersion = envoyVersion{1, 35}

// envoyVersion is a release, major.minor.
type envoyVersion struct{ major, minor int }

// parseEnvoyVersion reads "1.37" or "1.37.2"; "" is DefaultEnvoyVersion.
func parseEnvoyVersion(s string) (envoyVersion, error) {
	if s == "" {
		s = DefaultEnvoyVersion
	}
	bad := fmt.Errorf("EnvoyVersion %q: want major.minor, e.g. %s", s, DefaultEnvoyVersion)
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return envoyVersion{}, bad
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return envoyVersion{}, bad
		}
		n[i] = v
	}
	v := envoyVersion{n[0], n[1]}
	if v.before(oldestEnvoyVersion) {
		return envoyVersion{}, fmt.Errorf("EnvoyVersion %q: the harness models Envoy %s and later", s, oldestEnvoyVersion)
	}
	return v, nil
}

// before reports whether v is older than o.
func (v envoyVersion) before(o envoyVersion) bool {
	return v.major < o.major || (v.major == o.major && v.minor < o.minor)
}

func (v envoyVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// since fails when the Envoy the harness plays predates a field the config
// sets: that Envoy rejects the unknown field when it loads the config.
func (p *plan) since(set bool, path string, added envoyVersion) error {
	if set && p.version.before(added) {
		return fmt.Errorf("%s: unknown field in Envoy %s (added in %s)", path, p.version, added)
	}
	return nil
}
