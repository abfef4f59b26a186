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
// translator's. Envoy applies the removals first, then the sets, each set
// replacing every value of its header (MutationUtils::applyHeaderMutations,
// ext_proc/mutation_utils.cc). The mutation leaves out what would change
// nothing in the map Envoy holds now (u.current): removing an absent
// header, setting a header to the one value it has (and then not removing
// it first). Fewer entries also keep it under Envoy's limit: a mutation
// with more removals or sets than the HCM's max_request_headers_count
// (100 by default) is refused whole.
func (u *upstream) attemptHeaders(path string, bodyLen int, set [][2]string) *extprocv3.HeaderMutation {
	be := u.member.Backend
	// The value each header ends with (a later set replaces an earlier
	// one: configured, then the translator's), in first-set order.
	type kv = [2]string
	final := make([]kv, 0, 5+len(be.SetHeaders)+len(set))
	add := func(k, v string) {
		for i := range final {
			if final[i][0] == k {
				final[i][1] = v
				return
			}
		}
		final = append(final, kv{k, v})
	}
	add(":path", path)
	add("content-type", "application/json")
	// Compressed answers could not be read for usage; ask for plain bytes.
	add("accept-encoding", "identity")
	// Always, against the map: an earlier attempt may have left its own
	// body's length.
	add("content-length", strconv.Itoa(bodyLen))
	for _, h := range be.SetHeaders {
		add(h[0], h[1])
	}
	for _, h := range set {
		add(h[0], h[1])
	}
	out := make([]*corev3.HeaderValueOption, 0, len(final))
	var kept []string // already the one value they end with: neither removed nor set
	for _, h := range final {
		if cur, ok := u.current[h[0]]; ok && cur == h[1] {
			kept = append(kept, h[0])
			continue
		}
		out = append(out, header(h[0], h[1]))
	}
	var remove []string
	for _, k := range u.s.owned(u.rt) {
		if _, ok := u.current[k]; ok && !slices.Contains(kept, k) {
			remove = append(remove, k)
		}
	}
	remove = append(remove, u.internal...)
	return &extprocv3.HeaderMutation{RemoveHeaders: remove, SetHeaders: out}
}

// currentHeaders is the request-header map as Envoy holds it at the
// attempt's headers message: lowercase name to value, "\x00" for a header
// with more than one value (a set replaces them all, so it is never an
// echo).
func currentHeaders(h *extprocv3.HttpHeaders) map[string]string {
	out := make(map[string]string, len(h.GetHeaders().GetHeaders()))
	for _, hv := range h.GetHeaders().GetHeaders() {
		v := string(hv.RawValue)
		if v == "" {
			v = hv.Value
		}
		if _, dup := out[hv.Key]; dup {
			v = "\x00"
		}
		out[hv.Key] = v
	}
	return out
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
