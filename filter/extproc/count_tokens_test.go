package extproc

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/tidwall/gjson"
)

func countTokensClient(path, body string) envoyHeaders {
	h := claudeCodeClient(body)
	h[1].RawValue = []byte(path)
	return h
}

// TestCountTokensForwarded: with an Anthropic first backend the request
// goes to Anthropic's count_tokens natively (no reservation, no cache), and
// the answer passes as it is; an attempt that failed over to OpenAI
// answers the estimate itself.
func TestCountTokensForwarded(t *testing.T) {
	h := nativeHarness(t)
	const body = `{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user","content":"Hello, Claude"}],"thinking":{"type":"adaptive"}}`
	routed, dec := h.route(t, countTokensClient("/v1/messages/count_tokens?beta=true", body), body)
	if dec[KeyEndpoint] != endpointCountTokens || dec[KeyPool] != "claude" || dec[KeyReservation] != "" || dec[KeyCacheKey] != "" {
		t.Fatalf("decisions %v", dec)
	}
	m := slices.Clone(routed)
	got := h.attempt(t, &m, body, "claude", "claude-1", dec)
	if p, _ := header1(got, ":path"); p != "/v1/messages/count_tokens" || got.body != body {
		t.Errorf("sent %s %s", p, got.body)
	}
	if v, _ := header1(got, "anthropic-beta"); !strings.HasPrefix(v, "claude-code-") {
		t.Errorf("anthropic-beta %q", v)
	}

	s := h.stream(RoleUpstream)
	attrs := map[string]string{AttrBackend: "claude-1", AttrCluster: PoolClusterPrefix + "claude"}
	roundTrip(t, s, withDecisions(reqHeaders(routed.message(), attrs), dec))
	roundTrip(t, s, withDecisions(reqBody(body), dec))
	roundTrip(t, s, respHeaders(false, ":status", "200", "content-type", "application/json"))
	r := roundTrip(t, s, respBody(`{"input_tokens":14}`, true))
	if bm := r.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
		t.Errorf("answer rewritten: %s", bm.GetBody())
	}
	_ = s.CloseSend()
}

// routeReply runs the router role on a request and returns its last reply
// (an immediate response, or the body reply).
func (h *harness) routeReply(t *testing.T, client envoyHeaders, body string) *extprocv3.ProcessingResponse {
	t.Helper()
	s := h.stream(RoleRouter)
	defer s.CloseSend() //nolint:errcheck
	r := roundTrip(t, s, reqHeaders(client.message(), nil))
	if r.GetImmediateResponse() != nil {
		return r
	}
	return roundTrip(t, s, reqBody(body))
}

// TestCountTokensEstimated: a pool whose first backend is not Anthropic
// gets llmproc's estimate, marked, and so does an Anthropic pool's attempt
// that failed over to OpenAI.
func TestCountTokensEstimated(t *testing.T) {
	h := nativeHarness(t)
	const body = `{"model":"gpt-then-claude","messages":[{"role":"user","content":"Hello, Claude, how are you today?"}]}`
	check := func(name string, r *extprocv3.ProcessingResponse) {
		t.Helper()
		ir := r.GetImmediateResponse()
		if ir == nil || ir.GetStatus().GetCode() != 200 {
			t.Fatalf("%s: %v", name, r)
		}
		hs := map[string]string{}
		for _, o := range ir.GetHeaders().GetSetHeaders() {
			hs[o.GetHeader().GetKey()] = string(o.GetHeader().GetRawValue())
		}
		n := gjson.GetBytes(ir.GetBody(), "input_tokens")
		if hs[HeaderTokenCount] != "estimated" || n.Int() < 5 || n.Int() > 20 || hs["content-length"] != strconv.Itoa(len(ir.GetBody())) {
			t.Errorf("%s: %s %v", name, ir.GetBody(), hs)
		}
	}
	check("openai first", h.routeReply(t, countTokensClient("/v1/messages/count_tokens", body), body))

	claude := strings.Replace(body, "gpt-then-claude", "claude-sonnet-4-5", 1)
	routed, dec := h.route(t, countTokensClient("/v1/messages/count_tokens", claude), claude)
	s := h.stream(RoleUpstream)
	defer s.CloseSend() //nolint:errcheck
	attrs := map[string]string{AttrBackend: "openai-1", AttrCluster: PoolClusterPrefix + "mixed"}
	roundTrip(t, s, withDecisions(reqHeaders(routed.message(), attrs), dec))
	check("failed over to openai", roundTrip(t, s, withDecisions(reqBody(claude), dec)))
}

// TestMessagesPathsAnswerAnthropicErrors: every /v1/messages* path answers
// llmproc's errors in Anthropic's shape, an unknown one and a wrong method
// too; other unknown paths keep OpenAI's.
func TestMessagesPathsAnswerAnthropicErrors(t *testing.T) {
	h := nativeHarness(t)
	for _, tt := range []struct {
		method, path string
		status       uint32
		anthropic    bool
	}{
		{"POST", "/v1/messages/batches", 404, true},
		{"GET", "/v1/messages", 405, true},
		{"GET", "/v1/messages/count_tokens", 405, true},
		{"POST", "/v1/messages/count_tokens/x", 404, true},
		{"POST", "/v1/audio/speech", 404, false},
	} {
		c := countTokensClient(tt.path, "{}")
		c[0].RawValue = []byte(tt.method)
		ir := h.routeReply(t, c, "{}").GetImmediateResponse()
		b := ir.GetBody()
		if ir.GetStatus().GetCode() != typev3.StatusCode(tt.status) || (gjson.GetBytes(b, "type").Str == "error") != tt.anthropic {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, ir.GetStatus().GetCode(), b)
		}
	}
	// A count_tokens body is validated without max_tokens, with Anthropic's errors.
	const bad = `{"model":"claude-sonnet-4-5","messages":[]}`
	ir := h.routeReply(t, countTokensClient("/v1/messages/count_tokens", bad), bad).GetImmediateResponse()
	if ir.GetStatus().GetCode() != 400 || gjson.GetBytes(ir.GetBody(), "error.type").Str != "invalid_request_error" {
		t.Errorf("invalid count_tokens body: %v", ir)
	}
}

// TestCountTokensCloud: count_tokens for Claude on Bedrock (CountTokens)
// and on Vertex (count-tokens:rawPredict) and for Gemini models on Vertex
// and Gemini (countTokens) is forwarded, and every answer reaches the client
// as Anthropic's {"input_tokens": N}, errors in Anthropic's shape.
func TestCountTokensCloud(t *testing.T) {
	h := nativeHarness(t)
	for _, tt := range []struct {
		model, pool, backend, path, answer, want string
	}{
		{"claude-bedrock", "bedrock", "bedrock-1", "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens", `{"inputTokens":21}`, `{"input_tokens":21}`},
		{"claude-vertex", "vertex", "vertex-1", "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict", `{"input_tokens":22}`, ""},
		{"gemini-vertex", "vertex-gemini", "vertex-1", "/v1/projects/proj-1/locations/us-east5/publishers/google/models/gemini-2.5-flash:countTokens", `{"totalTokens":23}`, `{"input_tokens":23}`},
		{"gemini-flash", "gemini", "gemini-1", "/v1beta/models/gemini-2.5-flash:countTokens", `{"totalTokens":24,"promptTokensDetails":[]}`, `{"input_tokens":24}`},
	} {
		t.Run(tt.pool, func(t *testing.T) {
			body := `{"model":"` + tt.model + `","system":"Be brief.","messages":[{"role":"user","content":"Hello, Claude"}]}`
			routed, dec := h.route(t, countTokensClient("/v1/messages/count_tokens?beta=true", body), body)
			if dec[KeyEndpoint] != endpointCountTokens || dec[KeyPool] != tt.pool {
				t.Fatalf("decisions %v", dec)
			}
			m := slices.Clone(routed)
			got := h.attempt(t, &m, body, tt.pool, tt.backend, dec)
			if p, _ := header1(got, ":path"); p != tt.path {
				t.Errorf(":path %s", p)
			}
			if tt.backend == "vertex-1" && tt.pool == "vertex" && gjson.Get(got.body, "model").Str != "claude-sonnet-4-5@20250929" {
				t.Errorf("vertex count body %s", got.body)
			}
			answer := func(status, body string) (string, *extprocv3.ProcessingResponse) {
				s := h.stream(RoleUpstream)
				defer s.CloseSend() //nolint:errcheck
				attrs := map[string]string{AttrBackend: tt.backend, AttrCluster: PoolClusterPrefix + tt.pool}
				roundTrip(t, s, withDecisions(reqHeaders(routed.message(), attrs), dec))
				roundTrip(t, s, withDecisions(reqBody(`{"model":"`+tt.model+`","messages":[{"role":"user","content":"Hello, Claude"}]}`), dec))
				hr := roundTrip(t, s, respHeaders(false, ":status", status, "content-type", "application/json"))
				r := roundTrip(t, s, respBody(body, true))
				if bm := r.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
					return string(bm.GetBody()), hr
				}
				return body, hr
			}
			out, _ := answer("200", tt.answer)
			if want := cmp.Or(tt.want, tt.answer); out != want {
				t.Errorf("the client got %s, want %s", out, want)
			}
			errBody := `{"message":"Rate exceeded"}`
			if tt.backend != "bedrock-1" {
				errBody = `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}`
			}
			out, _ = answer("429", errBody)
			if gjson.Get(out, "type").Str != "error" || gjson.Get(out, "error.type").Str != "rate_limit_error" {
				t.Errorf("error answer: %s", out)
			}
		})
	}
}
