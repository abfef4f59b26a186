package extproc

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"

	"github.com/llmproc/llmproc/filter/config"
)

// failoverSchemas are the backend schemas every ordered pair is tried with.
var failoverSchemas = []string{"openai", "openai-compatible", "azure-openai", "anthropic", "gemini", "vertex", "bedrock"}

// failoverConfig has two backends of each schema (suffixes 1 and 2), each
// with a credential and configured headers of its own, and a pool per
// ordered pair (first member <a>-1, second <b>-2), plain and with both
// members pinned to a model, each reached by model name.
func failoverConfig() string {
	var b strings.Builder
	b.WriteString("backends:\n")
	for _, s := range failoverSchemas {
		for _, n := range []string{"1", "2"} {
			name := s + "-" + n
			fmt.Fprintf(&b, "  - name: %s\n    schema: %s\n    url: \"http://127.0.0.1:1/%s\"\n", name, s, name)
			key := "KEY_"
			if s == "bedrock" {
				key = "AWS_" // access key, secret and session token
			}
			fmt.Fprintf(&b, "    credential: {env: %s%s}\n", key, n)
			fmt.Fprintf(&b, "    headers: {set: {x-%s: \"set by %s\"}, remove: [x-drop-%s]}\n", name, name, name)
			switch s {
			case "azure-openai":
				b.WriteString("    azure: {api_version: \"2024-10-21\"}\n")
			case "vertex":
				b.WriteString("    vertex: {project: p, region: europe-west4}\n")
			case "bedrock":
				b.WriteString("    bedrock: {region: us-east-1}\n")
			}
		}
	}
	var models, pools strings.Builder
	for _, a := range failoverSchemas {
		for _, z := range failoverSchemas {
			for _, pin := range []bool{false, true} {
				name, model := a+"-"+z, ""
				if pin {
					name, model = name+"-pin", ", model: pinned-model"
				}
				fmt.Fprintf(&models, "  - {name: m-%s, pool: %s, price: {input: 1, output: 1}}\n", name, name)
				fmt.Fprintf(&pools, "  - {name: %s, backends: [{backend: %s-1%s}, {backend: %s-2%s}]}\n", name, a, model, z, model)
			}
		}
	}
	return b.String() + "models:\n" + models.String() + "pools:\n" + pools.String()
}

// envoyHeaders is a request-header map as Envoy keeps it: ordered entries,
// mutations applied remove first, then set (overwriting every value of the
// header: llmproc never appends; MutationUtils::
// applyHeaderMutations in source/extensions/filters/http/ext_proc/
// mutation_utils.cc).
type envoyHeaders []*corev3.HeaderValue

func (m *envoyHeaders) apply(mut *extprocv3.HeaderMutation) {
	for _, k := range mut.GetRemoveHeaders() {
		*m = slices.DeleteFunc(*m, func(h *corev3.HeaderValue) bool { return h.Key == k })
	}
	for _, o := range mut.GetSetHeaders() {
		k, v := o.GetHeader().GetKey(), o.GetHeader().GetRawValue()
		if i := slices.IndexFunc(*m, func(h *corev3.HeaderValue) bool { return h.Key == k }); i >= 0 {
			// setCopy: the first entry takes the value, the others go.
			(*m)[i] = &corev3.HeaderValue{Key: k, RawValue: v}
			*m = append((*m)[:i+1], slices.DeleteFunc((*m)[i+1:], func(h *corev3.HeaderValue) bool { return h.Key == k })...)
			continue
		}
		*m = append(*m, &corev3.HeaderValue{Key: k, RawValue: v})
	}
}

func (m envoyHeaders) message() *extprocv3.HttpHeaders {
	return &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: slices.Clone(m)}}
}

// sent is the request one attempt hands the provider.
type sent struct {
	headers []string // "key: value", sorted
	body    string
}

// attempt plays one upstream attempt on the shared header map m with a fresh
// copy of body, as Envoy's router does, and returns what the provider gets.
func (h *harness) attempt(t *testing.T, m *envoyHeaders, body, pool, backend string, dec map[string]string) sent {
	t.Helper()
	s := h.stream(RoleUpstream)
	defer s.CloseSend() //nolint:errcheck
	attrs := map[string]string{AttrBackend: backend, AttrCluster: PoolClusterPrefix + pool}
	r := roundTrip(t, s, withDecisions(reqHeaders(m.message(), attrs), dec))
	if r.GetRequestHeaders() == nil {
		t.Fatalf("%s: headers reply %v", backend, r)
	}
	m.apply(r.GetRequestHeaders().GetResponse().GetHeaderMutation())
	out := body
	// The rendered filter allows one mode_override, request body NONE:
	// Envoy then sends no body message and forwards the body as it is.
	if mo := r.GetModeOverride(); mo != nil {
		if !proto.Equal(mo, SkipRequestBodyMode()) {
			t.Fatalf("%s: mode_override %v is not the allowed one", backend, mo)
		}
	} else {
		r = roundTrip(t, s, withDecisions(reqBody(body), dec))
		c := r.GetRequestBody().GetResponse()
		if c == nil {
			t.Fatalf("%s: body reply %v", backend, r)
		}
		m.apply(c.GetHeaderMutation())
		if bm := c.GetBodyMutation(); bm != nil {
			out = string(bm.GetBody())
		}
	}
	var hs []string
	for _, hv := range *m {
		hs = append(hs, hv.Key+": "+string(hv.RawValue))
	}
	slices.Sort(hs)
	return sent{headers: hs, body: out}
}

// TestFailoverRequestIsFirstAttemptRequest: for every client API (chat,
// Messages, Responses, Gemini) and every ordered pair of
// backend schemas, plain and with a model pin, JSON and streaming, the
// request the second backend receives after the first failed is byte for
// byte the one it receives as a first attempt (less SigV4's date and
// signature, which follow the clock). Driven as Envoy would: the router
// role's reply on the client's headers, then both upstream attempts on that
// one header map, each with a fresh copy of the body.
func TestFailoverRequestIsFirstAttemptRequest(t *testing.T) {
	cfg, err := config.Parse([]byte(failoverConfig()))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Compile(cfg, func(k string) string {
		if n, ok := strings.CutPrefix(k, "AWS_"); ok {
			return "AKID" + n + ":secret" + n + ":session-token-" + n
		}
		return "sk-" + strings.ToLower(k)
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessFor(t, rt, nil)
	for _, api := range failoverClientAPIs {
		for _, a := range failoverSchemas {
			for _, z := range failoverSchemas {
				for _, pool := range []string{a + "-" + z, a + "-" + z + "-pin"} {
					for _, stream := range []bool{false, true} {
						t.Run(api.name+"/"+pool+"/stream="+strconv.FormatBool(stream), func(t *testing.T) {
							path, body := api.request("m-"+pool, stream)
							client := envoyHeaders{
								{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte(path)},
								{Key: ":authority", RawValue: []byte("llm.internal")}, {Key: ":scheme", RawValue: []byte("http")},
								{Key: "content-type", RawValue: []byte("application/json; charset=utf-8")},
								{Key: "content-length", RawValue: []byte(strconv.Itoa(len(body)))},
								{Key: "authorization", RawValue: []byte("Bearer client-key")},
								{Key: "accept", RawValue: []byte("application/json")},
								{Key: "x-llmproc-route", RawValue: []byte("forged")},
								{Key: "x-drop-" + z + "-2", RawValue: []byte("client's")},
								{Key: "user-agent", RawValue: []byte("OpenAI/Python 1.99.0")},
							}
							routed, dec, body := h.routeBody(t, client, body)
							first := slices.Clone(routed)
							h.attempt(t, &first, body, pool, a+"-1", dec)
							failover := h.attempt(t, &first, body, pool, z+"-2", dec)
							fresh := slices.Clone(routed)
							direct := h.attempt(t, &fresh, body, pool, z+"-2", dec)
							if z == "bedrock" {
								failover, direct = unsign(t, failover), unsign(t, direct)
							}
							if diff := strings.Join(failover.headers, "\n"); diff != strings.Join(direct.headers, "\n") {
								t.Errorf("headers after failover:\n%s\nas a first attempt:\n%s", diff, strings.Join(direct.headers, "\n"))
							}
							if failover.body != direct.body {
								t.Errorf("body after failover:\n%s\nas a first attempt:\n%s", failover.body, direct.body)
							}
							checkSent(t, direct, z+"-2")
						})
					}
				}
			}
		}
	}
}

// failoverClientAPIs are the client APIs the failover property runs over:
// each makes the same short request (a system prompt, "hi", 64 tokens) in
// its own shape.
var failoverClientAPIs = []struct {
	name    string
	request func(model string, stream bool) (path, body string)
}{
	{"chat", func(model string, stream bool) (string, string) {
		return "/v1/chat/completions", fmt.Sprintf(`{"model":%q,"stream":%v,"max_tokens":64,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}`, model, stream)
	}},
	{"messages", func(model string, stream bool) (string, string) {
		return "/v1/messages", fmt.Sprintf(`{"model":%q,"stream":%v,"max_tokens":64,"system":"be brief","messages":[{"role":"user","content":"hi"}]}`, model, stream)
	}},
	{"responses", func(model string, stream bool) (string, string) {
		return "/v1/responses", fmt.Sprintf(`{"model":%q,"stream":%v,"max_output_tokens":64,"instructions":"be brief","input":"hi"}`, model, stream)
	}},
	{"gemini", func(model string, stream bool) (string, string) {
		path := "/v1beta/models/" + model + ":generateContent"
		if stream {
			path = "/v1beta/models/" + model + ":streamGenerateContent?alt=sse"
		}
		return path, `{"systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":64}}`
	}},
}

// route runs the router role on the client's request and returns the header
// map it leaves and its decisions.
func (h *harness) route(t *testing.T, client envoyHeaders, body string) (envoyHeaders, map[string]string) {
	t.Helper()
	m, dec, _ := h.routeBody(t, client, body)
	return m, dec
}

// routeBody is route that also returns the body Envoy forwards: the
// router's replacement, if any (every attempt gets a copy of it).
func (h *harness) routeBody(t *testing.T, client envoyHeaders, body string) (envoyHeaders, map[string]string, string) {
	t.Helper()
	s := h.stream(RoleRouter)
	defer s.CloseSend() //nolint:errcheck
	m := slices.Clone(client)
	r := roundTrip(t, s, reqHeaders(m.message(), nil))
	m.apply(r.GetRequestHeaders().GetResponse().GetHeaderMutation())
	r = roundTrip(t, s, reqBody(body))
	if r.GetRequestBody() == nil {
		t.Fatalf("router: %v", r)
	}
	m.apply(r.GetRequestBody().GetResponse().GetHeaderMutation())
	if bm := r.GetRequestBody().GetResponse().GetBodyMutation(); bm != nil {
		body = string(bm.GetBody())
	}
	return m, decided(r), body
}

// unsign blanks SigV4's clock-dependent parts (x-amz-date, the date in the
// credential scope and the signature), keeping the rest of authorization.
func unsign(t *testing.T, s sent) sent {
	t.Helper()
	out := sent{body: s.body}
	for _, kv := range s.headers {
		k, v, _ := strings.Cut(kv, ": ")
		switch k {
		case "x-amz-date":
			v = "<date>"
		case "authorization":
			cred, rest, ok := strings.Cut(v, ", SignedHeaders=")
			signed, _, ok2 := strings.Cut(rest, ", Signature=")
			if !ok || !ok2 {
				t.Fatalf("authorization %q is no SigV4", v)
			}
			scope := strings.Split(cred, "/")
			if len(scope) > 1 {
				scope[1] = "<date>"
			}
			v = strings.Join(scope, "/") + ", SignedHeaders=" + signed + ", Signature=<signature>"
		}
		out.headers = append(out.headers, k+": "+v)
	}
	return out
}

// checkSent states what every provider request must be: a content-length
// matching the body, no llmproc header, no client credential, the
// backend's own configured header and none it removes.
func checkSent(t *testing.T, s sent, backend string) {
	t.Helper()
	var cl string
	for _, kv := range s.headers {
		k, v, _ := strings.Cut(kv, ": ")
		switch {
		case k == "content-length":
			cl = v
		case strings.HasPrefix(k, headerPrefix):
			t.Errorf("%s reached the provider", kv)
		case v == "Bearer client-key" || strings.HasPrefix(k, "x-drop-"+backend):
			t.Errorf("%s reached the provider", kv)
		}
	}
	if cl != strconv.Itoa(len(s.body)) {
		t.Errorf("content-length %q for a %d-byte body", cl, len(s.body))
	}
	if !slices.Contains(s.headers, "x-"+backend+": set by "+backend) {
		t.Errorf("configured header x-%s missing: %v", backend, s.headers)
	}
}
