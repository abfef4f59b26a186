package harness

import (
	"net/http"
	"regexp"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// headerMap is an ordered, lowercase-keyed header list with pseudo-headers,
// the way Envoy's HeaderMap presents headers to filters.
type headerMap struct {
	kv []header
}

type header struct{ key, value string }

func (h *headerMap) get(key string) (string, bool) {
	for _, e := range h.kv {
		if e.key == key {
			return e.value, true
		}
	}
	return "", false
}

func (h *headerMap) value(key string) string {
	v, _ := h.get(key)
	return v
}

// values returns every value of key, joined with "," like Envoy's %REQ()%.
func (h *headerMap) joined(key string) (string, bool) {
	var vs []string
	for _, e := range h.kv {
		if e.key == key {
			vs = append(vs, e.value)
		}
	}
	return strings.Join(vs, ","), len(vs) > 0
}

func (h *headerMap) set(key, value string) {
	for i, e := range h.kv {
		if e.key == key {
			h.kv[i].value = value
			h.removeAfter(key, i)
			return
		}
	}
	h.add(key, value)
}

func (h *headerMap) removeAfter(key string, i int) {
	out := h.kv[:i+1]
	for _, e := range h.kv[i+1:] {
		if e.key != key {
			out = append(out, e)
		}
	}
	h.kv = out
}

func (h *headerMap) add(key, value string) {
	if strings.HasPrefix(key, ":") {
		// Pseudo-headers stay in front.
		n := 0
		for n < len(h.kv) && strings.HasPrefix(h.kv[n].key, ":") {
			n++
		}
		h.kv = append(h.kv, header{})
		copy(h.kv[n+1:], h.kv[n:])
		h.kv[n] = header{key, value}
		return
	}
	h.kv = append(h.kv, header{key, value})
}

func (h *headerMap) del(key string) {
	out := h.kv[:0]
	for _, e := range h.kv {
		if e.key != key {
			out = append(out, e)
		}
	}
	h.kv = out
}

func (h *headerMap) clone() *headerMap {
	return &headerMap{kv: append([]header(nil), h.kv...)}
}

// proto encodes the map the way Envoy sends it: lowercase keys, pseudo
// headers included, the value in raw_value only.
func (h *headerMap) proto() *corev3.HeaderMap {
	out := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, 0, len(h.kv))}
	for _, e := range h.kv {
		out.Headers = append(out.Headers, &corev3.HeaderValue{Key: e.key, RawValue: []byte(e.value)})
	}
	return out
}

// httpHeader returns the regular (non-pseudo) headers for net/http.
func (h *headerMap) httpHeader() http.Header {
	out := make(http.Header, len(h.kv))
	for _, e := range h.kv {
		if strings.HasPrefix(e.key, ":") {
			continue
		}
		out[http.CanonicalHeaderKey(e.key)] = append(out[http.CanonicalHeaderKey(e.key)], e.value)
	}
	return out
}

func fromHTTPHeader(h http.Header) *headerMap {
	m := &headerMap{}
	for k, vs := range h {
		for _, v := range vs {
			m.kv = append(m.kv, header{strings.ToLower(k), v})
		}
	}
	return m
}

// mutationRules decides which header mutations an ext_proc server may make
// (HeaderMutationRules; the zero value is Envoy's default).
type mutationRules struct {
	allowAllRouting, allowEnvoy, disallowSystem, disallowAll, disallowIsError bool
	allowExpr, disallowExpr                                                   *regexp.Regexp
}

func (r *mutationRules) allowed(key string) bool {
	switch {
	case r.disallowAll:
		return false
	case r.disallowExpr != nil && r.disallowExpr.MatchString(key):
		return false
	case r.allowExpr != nil && r.allowExpr.MatchString(key):
		return true
	case key == ":authority" || key == "host" || key == ":method" || key == ":scheme":
		return r.allowAllRouting
	case strings.HasPrefix(key, "x-envoy-"):
		return r.allowEnvoy
	case strings.HasPrefix(key, ":"):
		return !r.disallowSystem
	}
	return true
}

// mutationResult says what applying a HeaderMutation did.
type mutationResult struct {
	rejected int  // mutations ignored by the rules
	invalid  bool // invalid characters, or a refusal with disallow_is_error
}

// applyMutation applies m to h. dropCL drops attempts to set or remove
// content-length (streamed bodies).
func applyMutation(h *headerMap, m *extprocv3.HeaderMutation, rules *mutationRules, dropCL bool) mutationResult {
	var res mutationResult
	if m == nil {
		return res
	}
	refuse := func() {
		res.rejected++
		if rules.disallowIsError {
			res.invalid = true
		}
	}
	for _, key := range m.GetRemoveHeaders() {
		key = strings.ToLower(key)
		if strings.HasPrefix(key, ":") || key == "host" || !rules.allowed(key) {
			refuse()
			continue
		}
		if key == "content-length" && dropCL {
			continue
		}
		h.del(key)
	}
	for _, opt := range m.GetSetHeaders() {
		key := strings.ToLower(opt.GetHeader().GetKey())
		val := string(opt.GetHeader().GetRawValue())
		if !validHeader(key, val) {
			res.invalid = true
			continue
		}
		if !rules.allowed(key) {
			refuse()
			continue
		}
		if key == ":status" && !validStatus(val) {
			refuse()
			continue
		}
		if key == "content-length" && dropCL {
			continue
		}
		if opt.GetAppend().GetValue() && !strings.HasPrefix(key, ":") {
			h.add(key, val)
		} else {
			h.set(key, val)
		}
	}
	return res
}

func validStatus(v string) bool {
	if len(v) != 3 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return v >= "200"
}

func validHeader(key, val string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '(' || c == ')' || c == ',' || c == '/' || c == ';' || c == '<' || c == '=' || c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' || c == ']' || c == '{' || c == '}' || (c == ':' && i > 0) {
			return false
		}
	}
	for i := 0; i < len(val); i++ {
		if c := val[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}
