package extproc

import (
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/llmproc/llmproc/filter/config"
)

// clientCredentialHeaders never reach a provider: the backend's own
// credential replaces them.
var clientCredentialHeaders = []string{"authorization", "x-api-key", "api-key", "x-goog-api-key"}

// ownedHeaders is the set of request headers an attempt removes before it
// sets its own backend's, for one compiled config.
type ownedHeaders struct {
	rt    *config.Runtime
	names []string
}

// owned returns every request header that some backend's attempt or llmproc
// could have set: what any translator declares (translate.Set.Headers), the
// client credentials, and every backend's configured headers.set and
// headers.remove names. Envoy hands each attempt the header map the previous
// attempt left, so removing these, then setting this backend's, makes an
// attempt's headers a function of the original request and the backend alone.
func (s *Server) owned(rt *config.Runtime) []string {
	if o := s.ownedCache.Load(); o != nil && o.rt == rt {
		return o.names
	}
	names := slices.Concat(s.tr.Headers(), clientCredentialHeaders)
	for _, b := range rt.Backends {
		for _, kv := range b.SetHeaders {
			names = append(names, kv[0])
		}
		names = append(names, b.RemoveHeaders...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	s.ownedCache.Store(&ownedHeaders{rt: rt, names: names})
	return names
}

// attemptHeaders is the header mutation of one attempt: remove what any
// attempt could have set and every x-llmproc-* header present (internal, for
// no provider), then set :path, plain JSON both ways, the content-length of
// the body that goes out, the backend's configured headers and the
// translator's.
func (u *upstream) attemptHeaders(path string, bodyLen int, set [][2]string) *extprocv3.HeaderMutation {
	be := u.member.Backend
	remove := slices.Concat(u.s.owned(u.rt), u.internal)
	out := make([]*corev3.HeaderValueOption, 0, 5+len(be.SetHeaders)+len(set))
	out = append(out,
		header(":path", path),
		header("content-type", "application/json"),
		// Compressed answers could not be read for usage; ask for plain bytes.
		header("accept-encoding", "identity"),
		// Always: an earlier attempt may have left its own body's length.
		header("content-length", strconv.Itoa(bodyLen)),
	)
	for _, kv := range be.SetHeaders {
		out = append(out, header(kv[0], kv[1]))
	}
	for _, kv := range set {
		out = append(out, header(kv[0], kv[1]))
	}
	return &extprocv3.HeaderMutation{RemoveHeaders: remove, SetHeaders: out}
}

// internalHeaders lists the x-llmproc-* request headers present.
func internalHeaders(h headers) []string {
	var out []string
	for k := range h {
		if strings.HasPrefix(k, headerPrefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
