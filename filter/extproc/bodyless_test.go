package extproc

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"testing"

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
		{"stream without usage: include_usage is added", "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "oai", false},
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
			routed, dec := h.route(t, client, tt.body)
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
				want := h.attemptWithBody(t, &fresh, tt.body, dec[KeyPool], tt.backend, old)
				var hs []string
				for _, hv := range m {
					hs = append(hs, hv.Key+": "+string(hv.RawValue))
				}
				slices.Sort(hs)
				if !slices.Equal(hs, want.headers) || want.body != tt.body {
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

func TestHasThinkingBlocks(t *testing.T) {
	for _, b := range []string{``, `"thinking_blocks"`, `_blocks"`, `x"thinking_blocks"`, `"thinking_block"`, `thinking_blocks"`,
		`"a_blocks" "thinking_blocks":[]`, `"thinking__blocks"`, `"thinking_blocks`, `{"messages":[{"thinking_blocks":[]}]}`} {
		if got, want := hasThinkingBlocks([]byte(b)), bytes.Contains([]byte(b), []byte(`"thinking_blocks"`)); got != want {
			t.Errorf("hasThinkingBlocks(%q) = %v, want %v", b, got, want)
		}
	}
}
