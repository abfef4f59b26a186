package extproc

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// endpointsConfig: an OpenAI-then-Azure pool, an OpenAI-then-Anthropic
// pool, an Anthropic pool and an OpenAI-compatible pool.
const endpointsConfig = `
backends:
  - {name: oai, schema: openai, url: "http://127.0.0.1:1", credential: {env: OAI}}
  - {name: az, schema: azure-openai, url: "http://127.0.0.1:1", credential: {env: AZ}}
  - {name: claude, schema: anthropic, url: "http://127.0.0.1:1", credential: {env: ANT}}
  - {name: local, schema: openai-compatible, url: "http://127.0.0.1:1/gw"}
models:
  - {name: gpt-5, pool: oa}
  - {name: gpt-mixed, pool: mixed}
  - {name: claude-x, pool: ant}
  - {name: local-x, pool: local}
  - {name: embed-oa, kind: embedding, pool: oa}
  - {name: embed-local, kind: embedding, pool: local}
  - {name: embed-claude, kind: embedding, pool: ant}
pools:
  - {name: oa, backends: [{backend: oai}, {backend: az, model: prod-gpt5}]}
  - {name: mixed, backends: [{backend: oai}, {backend: claude, model: claude-sonnet-4-5}]}
  - {name: ant, backends: [{backend: claude}]}
  - {name: local, backends: [{backend: local, model: qwen}]}
`

func endpointsHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessFor(t, compileTest(t, endpointsConfig), nil)
}

func openAIClient(path, body string) envoyHeaders {
	return envoyHeaders{
		{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte(path)},
		{Key: ":authority", RawValue: []byte("llm.internal")},
		{Key: "content-type", RawValue: []byte("application/json")},
		{Key: "content-length", RawValue: []byte(strconv.Itoa(len(body)))},
		{Key: "authorization", RawValue: []byte("Bearer client-key")},
	}
}

// TestEndpointsNative: each of OpenAI's other APIs reaches the backends
// that serve it with only the path, the model and the credential changed,
// on a first attempt and after a failover.
func TestEndpointsNative(t *testing.T) {
	h := endpointsHarness(t)
	const responses = `{"model":"gpt-5","input":[{"role":"user","content":"hi"}],"stream":true,"store":false,"include":["reasoning.encrypted_content"],"tools":[{"type":"web_search"}]}`
	for _, c := range []struct {
		name, path, body, pool, backend string
		wantPath, wantBody, wantKey     string
	}{
		{"responses openai", "/v1/responses", responses, "oa", "oai", "/v1/responses", responses, "authorization: Bearer sk-oai"},
		{"responses azure", "/v1/responses", responses, "oa", "az", "/openai/v1/responses",
			strings.Replace(responses, `"gpt-5"`, `"prod-gpt5"`, 1), "api-key: sk-az"},
		{"embeddings azure", "/v1/embeddings", `{"model":"embed-oa","input":["a","b"]}`, "oa", "az",
			"/openai/deployments/prod-gpt5/embeddings?api-version=2024-10-21", `{"model":"embed-oa","input":["a","b"]}`, "api-key: sk-az"},
		{"embeddings compatible", "/v1/embeddings", `{"model":"embed-local","input":"a"}`, "local", "local",
			"/gw/v1/embeddings", `{"model":"qwen","input":"a"}`, ""},
		{"completions stream", "/v1/completions", `{"model":"gpt-5","prompt":"say","stream":true}`, "oa", "oai",
			"/v1/completions", `{"model":"gpt-5","prompt":"say","stream":true,"stream_options":{"include_usage":true}}`, "authorization: Bearer sk-oai"},
	} {
		t.Run(c.name, func(t *testing.T) {
			routed, dec := h.route(t, openAIClient(c.path, c.body), c.body)
			if dec[KeyEndpoint] != strings.TrimPrefix(c.path, "/v1/") || dec[KeyPool] != c.pool {
				t.Fatalf("decisions %v", dec)
			}
			m := slices.Clone(routed)
			if c.backend == "az" { // after a failed OpenAI attempt
				h.attempt(t, &m, c.body, c.pool, "oai", dec)
			}
			got := h.attempt(t, &m, c.body, c.pool, c.backend, dec)
			if p, _ := header1(got, ":path"); p != c.wantPath {
				t.Errorf(":path %q, want %q", p, c.wantPath)
			}
			if got.body != c.wantBody {
				t.Errorf("body\n%s\nwant\n%s", got.body, c.wantBody)
			}
			if c.wantKey != "" && !slices.Contains(got.headers, c.wantKey) {
				t.Errorf("no %q in %v", c.wantKey, got.headers)
			}
			for _, kv := range got.headers {
				if strings.Contains(kv, "client-key") || (c.backend == "az" && strings.HasPrefix(kv, "authorization:")) {
					t.Errorf("sent %q", kv)
				}
			}
		})
	}
}

// TestEndpointsUnserved: a pool whose first backend cannot take the API is
// a 400 in OpenAI's shape naming the backend; a failover attempt to such a
// backend answers the same 400 itself, so the body never reaches it. A
// Responses attempt to Anthropic is translated instead: the Messages API
// body goes to /v1/messages.
func TestEndpointsUnserved(t *testing.T) {
	h := endpointsHarness(t)
	for _, c := range []struct{ path, body, backend string }{
		{"/v1/embeddings", `{"model":"embed-claude","input":"hi"}`, "claude"},
		{"/v1/completions", `{"model":"claude-x","prompt":"hi"}`, "claude"},
	} {
		r := h.routeReply(t, openAIClient(c.path, c.body), c.body)
		ir := r.GetImmediateResponse()
		if ir == nil || ir.GetStatus().GetCode() != 400 {
			t.Fatalf("%s: %v", c.path, r)
		}
		if gjson.GetBytes(ir.Body, "error.code").Str != "unsupported_endpoint" || !strings.Contains(gjson.GetBytes(ir.Body, "error.message").Str, `backend "claude"`) {
			t.Errorf("%s: %s", c.path, ir.Body)
		}
	}

	const body = `{"model":"gpt-mixed","input":"hi","stream":true}`
	routed, dec := h.route(t, openAIClient("/v1/responses", body), body)
	s := h.stream(RoleUpstream)
	defer s.CloseSend() //nolint:errcheck
	attrs := map[string]string{AttrBackend: "claude", AttrCluster: PoolClusterPrefix + "mixed"}
	roundTrip(t, s, withDecisions(reqHeaders(routed.message(), attrs), dec))
	r := roundTrip(t, s, withDecisions(reqBody(body), dec))
	br := r.GetRequestBody().GetResponse()
	sent := br.GetBodyMutation().GetBody()
	if r.GetImmediateResponse() != nil || gjson.GetBytes(sent, "messages.0.content.0.text").Str != "hi" || !gjson.GetBytes(sent, "max_tokens").Exists() {
		t.Fatalf("Responses attempt to Anthropic not translated: %v", r)
	}
	if p := mutationHeader(br.GetHeaderMutation(), ":path"); p != "/v1/messages" {
		t.Errorf("path %q", p)
	}
}

// TestEndpointsRouterChecks: the Responses, embeddings and completions
// validators refuse wrong types of the fields llmproc reads, in OpenAI's
// shape, and let unknown fields pass; other methods are 405.
func TestEndpointsRouterChecks(t *testing.T) {
	h := endpointsHarness(t)
	for _, c := range []struct{ path, body, code string }{
		{"/v1/responses", `{"model":"gpt-5","input":42}`, "invalid_type"},
		{"/v1/responses", `{"model":"gpt-5","input":"hi","stream":"yes"}`, "invalid_type"},
		{"/v1/responses", `{"model":"gpt-5","input":"hi","max_output_tokens":"9"}`, "invalid_type"},
		{"/v1/responses", `{"model":"gpt-5","input":"hi","tools":{}}`, "invalid_type"},
		{"/v1/responses", `{"input":"hi"}`, "missing_required_parameter"},
		{"/v1/responses", `{"model":"gpt-5","input":"hi","some_new_field":{"x":1}}`, ""},
		{"/v1/embeddings", `{"model":"embed-oa"}`, "missing_required_parameter"},
		{"/v1/embeddings", `{"model":"embed-oa","input":[[1,2],[3]],"encoding_format":"base64"}`, ""},
		{"/v1/embeddings", `{"model":"embed-oa","input":"x","encoding_format":"hex"}`, "invalid_value"},
		{"/v1/embeddings", `{"model":"gpt-5","input":"x"}`, "model_kind_mismatch"},
		{"/v1/chat/completions", `{"model":"embed-oa","messages":[{"role":"user","content":"x"}]}`, "model_kind_mismatch"},
		{"/v1/completions", `{"model":"gpt-5","prompt":{"a":1}}`, "invalid_type"},
		{"/v1/completions", `{"model":"gpt-5","prompt":"x","max_tokens":16}`, ""},
	} {
		r := h.routeReply(t, openAIClient(c.path, c.body), c.body)
		ir := r.GetImmediateResponse()
		switch {
		case c.code == "" && ir != nil:
			t.Errorf("%s %s: refused %s", c.path, c.body, ir.Body)
		case c.code != "" && (ir == nil || gjson.GetBytes(ir.Body, "error.code").Str != c.code):
			t.Errorf("%s %s: %v, want %s", c.path, c.body, r, c.code)
		}
	}
	get := openAIClient("/v1/responses", "")
	get[0].RawValue = []byte("GET")
	if ir := h.routeReply(t, get, "").GetImmediateResponse(); ir.GetStatus().GetCode() != 405 {
		t.Errorf("GET /v1/responses: %v", ir)
	}
}

// TestModelsListKind: GET /v1/models marks the embedding models.
func TestModelsListKind(t *testing.T) {
	h := endpointsHarness(t)
	c := openAIClient("/v1/models", "")
	c[0].RawValue = []byte("GET")
	b := h.routeReply(t, c, "").GetImmediateResponse().GetBody()
	kinds := map[string]string{}
	gjson.GetBytes(b, "data").ForEach(func(_, m gjson.Result) bool {
		kinds[m.Get("id").Str] = m.Get("kind").Str
		return true
	})
	if kinds["embed-oa"] != "embedding" || kinds["gpt-5"] != "" || len(kinds) != 7 {
		t.Errorf("models %s", b)
	}
}
