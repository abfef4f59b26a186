package extproc

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/proto"
)

const bodylessConfig = `
backends:
  - {name: oai, schema: openai, url: "http://127.0.0.1:1", credential: {env: OAI}}
  - {name: compat, schema: openai-compatible, url: "http://127.0.0.1:2/api"}
  - {name: dropper, schema: openai-compatible, url: "http://127.0.0.1:3", drop_params: [temperature]}
  - {name: noopts, schema: openai-compatible, url: "http://127.0.0.1:4", compat: {stream_options: false}}
  - {name: az, schema: azure-openai, url: "http://127.0.0.1:5", credential: {env: AZ}}
  - {name: claude, schema: anthropic, url: "http://127.0.0.1:6", credential: {env: ANT}}
models:
  - {name: m, pool: plain}
  - {name: m-compat, pool: compat}
  - {name: m-pinned, pool: pinned}
  - {name: m-drop, pool: drop}
  - {name: m-noopts, pool: noopts}
  - {name: m-az, pool: az}
  - {name: m-cross, pool: cross}
  - {name: claude-x, pool: anth}
pools:
  - {name: plain, backends: [{backend: oai}]}
  - {name: compat, backends: [{backend: compat}]}
  - {name: pinned, backends: [{backend: oai, model: gpt-pinned}]}
  - {name: drop, backends: [{backend: dropper}]}
  - {name: noopts, backends: [{backend: noopts}]}
  - {name: az, backends: [{backend: az, model: deployment}]}
  - {name: cross, backends: [{backend: oai}, {backend: claude, model: claude-haiku}]}
  - {name: anth, backends: [{backend: claude}]}
`

// TestBodylessAttempts: which attempts the upstream role prepares at the
// request headers, asking Envoy (mode_override, request body NONE) not to
// send the body, and why the others need it. Either way the provider gets
// the same request: the bodyless reply's headers are those the body reply
// would have set, content-length that of the body Envoy forwards.
func TestBodylessAttempts(t *testing.T) {
	h := newHarnessFor(t, compileTest(t, bodylessConfig), nil)
	tests := []struct {
		name, path, body, backend string
		bodyless                  bool
	}{
		{"JSON to openai", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "oai", true},
		{"JSON to an openai-compatible base path", "/v1/chat/completions", `{"model":"m-compat","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`, "compat", true},
		{"stream asking for usage", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, "oai", true},
		{"azure: the deployment is in the path", "/v1/chat/completions", `{"model":"m-az","messages":[{"role":"user","content":"hi"}]}`, "az", true},
		{"cross-schema pool, same-API member", "/v1/chat/completions", `{"model":"m-cross","messages":[{"role":"user","content":"hi"}]}`, "oai", true},
		{"stream without usage: the router added include_usage", "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "oai", true},
		{"likewise in a cross-schema pool", "/v1/chat/completions", `{"model":"m-cross","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "oai", true},
		{"the translated member of that pool", "/v1/chat/completions", `{"model":"m-cross","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "claude", false},
		{"a model pin is written into the body", "/v1/chat/completions", `{"model":"m-pinned","messages":[{"role":"user","content":"hi"}]}`, "oai", false},
		{"drop_params may match", "/v1/chat/completions", `{"model":"m-drop","messages":[{"role":"user","content":"hi"}]}`, "dropper", false},
		{"stream_options to remove", "/v1/chat/completions", `{"model":"m-noopts","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, "noopts", false},
		{"no stream_options to remove", "/v1/chat/completions", `{"model":"m-noopts","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "noopts", true},
		{"thinking_blocks to remove", "/v1/chat/completions", `{"model":"m","messages":[{"role":"assistant","content":"x","thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"}]},{"role":"user","content":"hi"}]}`, "oai", false},
		{"another schema translates", "/v1/chat/completions", `{"model":"m-cross","messages":[{"role":"user","content":"hi"}]}`, "claude", false},
		{"an Anthropic client's model decides native", "/v1/messages", `{"model":"claude-x","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`, "claude", false},
		{"Responses is converted or kept", "/v1/responses", `{"model":"m","input":"hi"}`, "oai", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := envoyHeaders{
				{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte(tt.path)},
				{Key: "content-type", RawValue: []byte("application/json")},
				{Key: "content-length", RawValue: []byte(strconv.Itoa(len(tt.body)))},
				{Key: "authorization", RawValue: []byte("Bearer client")},
			}
			routed, dec, forwarded := h.routeBody(t, client, tt.body)
			m := slices.Clone(routed)
			s := h.stream(RoleUpstream)
			defer s.CloseSend() //nolint:errcheck
			attrs := map[string]string{AttrBackend: tt.backend, AttrCluster: PoolClusterPrefix + dec[KeyPool]}
			r := roundTrip(t, s, withDecisions(reqHeaders(m.message(), attrs), dec))
			if r.GetRequestHeaders() == nil {
				t.Fatalf("headers reply %v", r)
			}
			got := r.GetModeOverride() != nil
			if got != tt.bodyless {
				t.Fatalf("mode_override %v, want bodyless=%v", r.GetModeOverride(), tt.bodyless)
			}
			if got && !proto.Equal(r.GetModeOverride(), SkipRequestBodyMode()) {
				t.Errorf("mode_override %v", r.GetModeOverride())
			}
			m.apply(r.GetRequestHeaders().GetResponse().GetHeaderMutation())
			if got {
				// What the body phase sends, on a fresh map: decisions
				// without KeyBody (an older router) make the attempt
				// read the body.
				fresh := slices.Clone(routed)
				old := maps.Clone(dec)
				delete(old, KeyBody)
				want := h.attemptWithBody(t, &fresh, forwarded, dec[KeyPool], tt.backend, old)
				var hs []string
				for _, hv := range m {
					hs = append(hs, hv.Key+": "+string(hv.RawValue))
				}
				slices.Sort(hs)
				if !slices.Equal(hs, want.headers) || want.body != forwarded {
					t.Errorf("bodyless attempt sends\n%v\nthe body phase\n%v\n(body %s)", hs, want.headers, want.body)
				}
			}
		})
	}
}

// attemptWithBody plays an attempt with a body message whatever the
// headers reply asks (as an Envoy that ignores mode_override would).
func (h *harness) attemptWithBody(t *testing.T, m *envoyHeaders, body, pool, backend string, dec map[string]string) sent {
	t.Helper()
	s := h.stream(RoleUpstream)
	defer s.CloseSend() //nolint:errcheck
	attrs := map[string]string{AttrBackend: backend, AttrCluster: PoolClusterPrefix + pool}
	r := roundTrip(t, s, withDecisions(reqHeaders(m.message(), attrs), dec))
	m.apply(r.GetRequestHeaders().GetResponse().GetHeaderMutation())
	r = roundTrip(t, s, withDecisions(reqBody(body), dec))
	c := r.GetRequestBody().GetResponse()
	m.apply(c.GetHeaderMutation())
	out := body
	if bm := c.GetBodyMutation(); bm != nil {
		out = string(bm.GetBody())
	}
	var hs []string
	for _, hv := range *m {
		hs = append(hs, hv.Key+": "+string(hv.RawValue))
	}
	slices.Sort(hs)
	return sent{headers: hs, body: out}
}

// TestRouterAddsStreamUsage: the router role adds
// stream_options.include_usage to an OpenAI chat stream without it, once
// for every attempt, when its pool's OpenAI-shaped backends all take the
// field, and records in KeyBody both lengths and that it did.
func TestRouterAddsStreamUsage(t *testing.T) {
	h := newHarnessFor(t, compileTest(t, bodylessConfig), nil)
	tests := []struct {
		name, path, body string
		added            bool
	}{
		{"openai stream", "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`, true},
		{"empty stream_options", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{},"messages":[{"role":"user","content":"hi"}]}`, true},
		{"include_usage false", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"hi"}]}`, true},
		{"cross-schema pool", "/v1/chat/completions", `{"model":"m-cross","stream":true,"messages":[{"role":"user","content":"hi"}]}`, true},
		{"azure", "/v1/chat/completions", `{"model":"m-az","stream":true,"messages":[{"role":"user","content":"hi"}]}`, true},
		{"asked already", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, false},
		{"no stream", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, false},
		{"a backend refuses stream_options", "/v1/chat/completions", `{"model":"m-noopts","stream":true,"messages":[{"role":"user","content":"hi"}]}`, false},
		{"no OpenAI-shaped backend", "/v1/chat/completions", `{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"hi"}]}`, false},
		{"an Anthropic client", "/v1/messages", `{"model":"m","stream":true,"max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := envoyHeaders{
				{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte(tt.path)},
				{Key: "content-type", RawValue: []byte("application/json")},
				{Key: "content-length", RawValue: []byte(strconv.Itoa(len(tt.body)))},
			}
			routed, dec, forwarded := h.routeBody(t, client, tt.body)
			f, ok := parseBodyFacts(dec[KeyBody])
			if !ok {
				t.Fatalf("%s = %q", KeyBody, dec[KeyBody])
			}
			var cl string
			for _, hv := range routed {
				if hv.Key == "content-length" {
					cl = string(hv.RawValue)
				}
			}
			if f.added != tt.added || (forwarded != tt.body) != tt.added {
				t.Fatalf("added %v, forwarded %s", f.added, forwarded)
			}
			if cl != strconv.Itoa(len(forwarded)) || f.length != len(forwarded) || f.estimate != len(tt.body) {
				t.Errorf("content-length %s, %s %q for %d forwarded / %d client bytes", cl, KeyBody, dec[KeyBody], len(forwarded), len(tt.body))
			}
			if tt.added && !gjson.Get(forwarded, "stream_options.include_usage").Bool() {
				t.Errorf("forwarded %s", forwarded)
			}
			if f.usage != gjson.Get(tt.body, "stream_options.include_usage").Bool() {
				t.Errorf("%s says the client asked for usage: %v", KeyBody, f.usage)
			}
		})
	}
}

// TestBodylessStreamStripsUsage: a bodyless streamed attempt whose usage
// the router asked for strips the usage chunk from the client's stream and
// counts the usage exactly; one the client asked for passes the stream.
func TestBodylessStreamStripsUsage(t *testing.T) {
	stream := readTestdata(t, "stream.sse")
	for _, asked := range []bool{false, true} {
		t.Run("asked="+strconv.FormatBool(asked), func(t *testing.T) {
			h := newHarnessFor(t, compileTest(t, bodylessConfig), nil)
			body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			if asked {
				body = `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
			}
			routed, dec, _ := h.routeBody(t, envoyHeaders{
				{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/chat/completions")},
				{Key: "content-length", RawValue: []byte(strconv.Itoa(len(body)))},
			}, body)
			s := h.stream(RoleUpstream)
			defer s.CloseSend() //nolint:errcheck
			attrs := map[string]string{AttrBackend: "oai", AttrCluster: PoolClusterPrefix + "plain"}
			if r := roundTrip(t, s, withDecisions(reqHeaders(routed.message(), attrs), dec)); r.GetModeOverride() == nil {
				t.Fatalf("attempt not bodyless: %v", r)
			}
			roundTrip(t, s, withDecisions(respHeaders(false, ":status", "200", "content-type", "text/event-stream"), dec))
			var out strings.Builder
			var last *extprocv3.ProcessingResponse
			chunks := strings.SplitAfter(stream, "\n\n")
			for i, c := range chunks {
				last = roundTrip(t, s, withDecisions(respBody(c, i == len(chunks)-1), dec))
				if bm := last.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
					out.Write(bm.GetBody())
				} else {
					out.WriteString(c)
				}
			}
			if got := strings.Contains(out.String(), `"usage":{`); got != asked {
				t.Errorf("usage chunk in the client's stream: %v, asked %v:\n%s", got, asked, out.String())
			}
			md := last.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
			if md["prompt_tokens"].GetNumberValue() != 1200 || md["completion_tokens"].GetNumberValue() != 34 || md[KeyUsage].GetStringValue() != "known" {
				t.Errorf("usage metadata %v", md)
			}
		})
	}
}

// TestEstimateCountsClientBody: an answer without usage is estimated from
// the client's body, not the router's longer one (include_usage added),
// whether the attempt read the body (drop_params) or not.
func TestEstimateCountsClientBody(t *testing.T) {
	stream := readTestdata(t, "stream.sse")
	i := strings.Index(stream, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage"`)
	j := strings.Index(stream, "data: [DONE]")
	noUsage := stream[:i] + stream[j:]
	const body = `{"model":"M","stream":true,"messages":[{"role":"user","content":"how long is a piece of string?"}]}`
	for _, tc := range []struct{ model, pool, backend string }{{"m", "plain", "oai"}, {"m-drop", "drop", "dropper"}} {
		t.Run(tc.backend, func(t *testing.T) {
			h := newHarnessFor(t, compileTest(t, bodylessConfig), nil)
			b := strings.Replace(body, `"M"`, strconv.Quote(tc.model), 1)
			routed, dec, forwarded := h.routeBody(t, envoyHeaders{
				{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/chat/completions")},
			}, b)
			if len(forwarded) == len(b) {
				t.Fatal("the router added nothing")
			}
			s := h.stream(RoleUpstream)
			defer s.CloseSend() //nolint:errcheck
			attrs := map[string]string{AttrBackend: tc.backend, AttrCluster: PoolClusterPrefix + tc.pool}
			if r := roundTrip(t, s, withDecisions(reqHeaders(routed.message(), attrs), dec)); r.GetModeOverride() == nil {
				roundTrip(t, s, withDecisions(reqBody(forwarded), dec))
			}
			roundTrip(t, s, withDecisions(respHeaders(false, ":status", "200", "content-type", "text/event-stream"), dec))
			last := roundTrip(t, s, withDecisions(respBody(noUsage, true), dec))
			md := last.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
			if got, want := md[KeyEstimatedPromptTokens].GetNumberValue(), float64(estimateTokens(len(b))); got != want {
				t.Errorf("estimated prompt tokens %v, want %v (client body %d bytes, forwarded %d)", got, want, len(b), len(forwarded))
			}
		})
	}
}

// TestAttemptHeadersLeaveOutEchoes: an attempt's header mutation repeats
// nothing the map already holds. A retry to the same backend, on the map
// the first attempt left, finds every header right: its reply removes and
// sets nothing, and the provider gets the same request. A header with two
// values is still set (a set replaces both).
func TestAttemptHeadersLeaveOutEchoes(t *testing.T) {
	h := newHarnessFor(t, compileTest(t, bodylessConfig), nil)
	for _, tc := range []struct{ name, model, backend string }{
		{"bodyless", "m", "oai"}, {"with body", "m-drop", "dropper"}, {"azure", "m-az", "az"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"model":"` + tc.model + `","messages":[{"role":"user","content":"hi"}]}`
			client := envoyHeaders{
				{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/chat/completions")},
				{Key: "content-type", RawValue: []byte("application/json")},
				{Key: "content-length", RawValue: []byte(strconv.Itoa(len(body)))},
				{Key: "accept-encoding", RawValue: []byte("gzip")}, {Key: "accept-encoding", RawValue: []byte("br")},
				{Key: "authorization", RawValue: []byte("Bearer client")},
			}
			routed, dec, forwarded := h.routeBody(t, client, body)
			m := slices.Clone(routed)
			first := h.attempt(t, &m, forwarded, dec[KeyPool], tc.backend, dec)
			if !slices.Contains(first.headers, "accept-encoding: identity") || slices.Contains(first.headers, "accept-encoding: gzip") {
				t.Errorf("a two-valued header was not replaced: %v", first.headers)
			}
			s := h.stream(RoleUpstream)
			defer s.CloseSend() //nolint:errcheck
			attrs := map[string]string{AttrBackend: tc.backend, AttrCluster: PoolClusterPrefix + dec[KeyPool]}
			r := roundTrip(t, s, withDecisions(reqHeaders(m.message(), attrs), dec))
			mut := r.GetRequestHeaders().GetResponse().GetHeaderMutation()
			if r.GetModeOverride() == nil {
				r = roundTrip(t, s, withDecisions(reqBody(forwarded), dec))
				mut = r.GetRequestBody().GetResponse().GetHeaderMutation()
			}
			if len(mut.GetRemoveHeaders()) != 0 || len(mut.GetSetHeaders()) != 0 {
				t.Errorf("the retry's mutation repeats the map: remove %v set %v", mut.GetRemoveHeaders(), mut.GetSetHeaders())
			}
		})
	}
}

func TestHasThinkingBlocks(t *testing.T) {
	for _, b := range []string{``, `"thinking_blocks"`, `_blocks"`, `x"thinking_blocks"`, `"thinking_block"`, `thinking_blocks"`,
		`"a_blocks" "thinking_blocks":[]`, `"thinking__blocks"`, `"thinking_blocks`, `{"messages":[{"thinking_blocks":[]}]}`} {
		if got, want := hasThinkingBlocks([]byte(b)), bytes.Contains([]byte(b), []byte(`"thinking_blocks"`)); got != want {
			t.Errorf("hasThinkingBlocks(%q) = %v, want %v", b, got, want)
		}
	}
}
