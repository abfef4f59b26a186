package harness

import (
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/llmproc/llmproc/envoy"

	// The file access logger is not in llmproc's renderings but may appear in
	// hand-written test bootstraps; envoy.Parse registers the rest.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
)

// LoadBootstrapYAML parses an Envoy bootstrap in YAML (or JSON) into the
// proto, with the same parser llmproc's own tests use (envoy.Parse). Unknown
// fields and unknown typed_config types are errors.
func LoadBootstrapYAML(data []byte) (*bootstrapv3.Bootstrap, error) {
	return envoy.Parse(data)
}
