package envoy

import (
	"fmt"
	"regexp"
	"strconv"
)

// MinVersion is the oldest Envoy release the rendered configuration works
// on, and MinIstio the first Istio release whose proxy is built on it.
//
//   - 1.37: an upstream (cluster) ext_proc filter's immediate response
//     becomes a local reply, which local_reply_config maps and the router
//     never retries (envoyproxy/envoy#41231, merged after 1.36.0 was cut).
//     Before it Filter::sendImmediateResponse dropped it on upstream filters
//     (counter send_immediate_resp_upstream_ignored) and the request stalled
//     until per_try_timeout: every error llmproc's upstream role answers
//     itself (unsupported parameters, refused translations) would hang.
//   - 1.36: routes' request_body_buffer_limit (changelogs/1.36.0.yaml), the
//     buffer the rendered pool routes raise above limits.max_request_bytes,
//     and, without internal_address_config, no address trusted as internal.
//
// Istio 1.29 is the Istio release on Envoy 1.37: Istio's supported-releases
// table maps Istio 1.N onto Envoy 1.N+8, and Istio 1.29.0 (2026-02-16) is the
// first release after Envoy 1.37.0 (2026-01-13).
const (
	MinVersion = "1.37"
	MinIstio   = "1.29"
)

// minMajor, minMinor are MinVersion as numbers.
const minMajor, minMinor = 1, 37

// versionRE finds the release in `envoy --version` output, e.g.
// "envoy  version: 7b8baff1…/1.37.1/Clean/RELEASE/BoringSSL" or
// "…/1.38.0-dev/Modified/DEBUG/BoringSSL".
var versionRE = regexp.MustCompile(`version: [^/\s]+/(\d+)\.(\d+)\.(\d+)`)

// ParseVersion reads the release from `envoy --version` output.
func ParseVersion(out string) (major, minor, patch int, err error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, 0, fmt.Errorf("no Envoy version in %q (want \"version: <sha>/<major>.<minor>.<patch>/…\")", out)
	}
	n := make([]int, 3)
	for i := range n {
		if n[i], err = strconv.Atoi(m[i+1]); err != nil {
			return 0, 0, 0, fmt.Errorf("version in %q: %w", out, err)
		}
	}
	return n[0], n[1], n[2], nil
}

// CheckVersion refuses `envoy --version` output older than MinVersion, with
// a message saying what breaks and what to run instead.
func CheckVersion(out string) error {
	major, minor, patch, err := ParseVersion(out)
	if err != nil {
		return err
	}
	if major > minMajor || (major == minMajor && minor >= minMinor) {
		return nil
	}
	return fmt.Errorf("this is Envoy %d.%d.%d, older than %s, the oldest release llmproc's rendered config works on: "+
		"before %s an upstream ext_proc filter's immediate responses are dropped and those requests hang until per_try_timeout "+
		"(and before 1.36 routes reject request_body_buffer_limit); use Envoy %s or newer (Istio %s or newer)",
		major, minor, patch, MinVersion, MinVersion, MinVersion, MinIstio)
}

// yamlHeader opens every rendered bootstrap.
const yamlHeader = "# Envoy bootstrap rendered by llmproc (`llmproc envoy-config`); do not edit, re-render it.\n" +
	"# Needs Envoy " + MinVersion + " or newer (Istio " + MinIstio + " or newer): upstream ext_proc immediate\n" +
	"# responses become local replies only from 1.37, route request_body_buffer_limit exists from 1.36.\n"
