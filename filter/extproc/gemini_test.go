package extproc

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/identity"
)

// geminiConfig: Gemini CLI's model names reach a Gemini backend (then, on
// failover, an OpenAI one), an OpenAI-only pool, and an embedding model.
const geminiConfig = `
backends:
  - {name: gem, schema: gemini, url: "http://127.0.0.1:1", credential: {env: GEMKEY}}
  - {name: oai, schema: openai, url: "http://127.0.0.1:1", credential: {env: OAIKEY}}
models:
  - {name: gemini-2.5-pro, aliases: ["gemini-2.5-*"], pool: gem, price: {input: 1.25, output: 10}}
  - {name: gpt-for-gemini, pool: oai, price: {input: 0.15, output: 0.60}}
  - {name: gemini-embedding-001, kind: embedding, pool: gemembed}
pools:
  - {name: gem, backends: [{backend: gem, model: gemini-backend}, {backend: oai, model: gpt-4o-mini}]}
  - {name: oai, backends: [{backend: oai, model: gpt-4o-mini}]}
  - {name: gemembed, backends: [{backend: gem}, {backend: oai, model: text-embedding-3-small}]}
`

func geminiHarness(t *testing.T) *harness {
	t.Helper()
	cfg, err := config.Parse([]byte(geminiConfig))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Compile(cfg, func(k string) string { return "sk-" + strings.ToLower(k) })
	if err != nil {
		t.Fatal(err)
	}
	return newHarnessFor(t, rt, nil)
}

func geminiClient(method, path, body string, extra ...string) envoyHeaders {
	h := envoyHeaders{
		{Key: ":method", RawValue: []byte(method)}, {Key: ":path", RawValue: []byte(path)},
		{Key: ":authority", RawValue: []byte("llm.internal")}, {Key: ":scheme", RawValue: []byte("http")},
		{Key: "content-type", RawValue: []byte("application/json")},
		{Key: "content-length", RawValue: []byte(strconv.Itoa(len(body)))},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h = append(h, &corev3.HeaderValue{Key: extra[i], RawValue: []byte(extra[i+1])})
	}
	return h
}

// geminiCLIBody is a request as Gemini CLI 0.61 sends it (issue 13): tools
// with parametersJsonSchema, topK, includeThoughts, a function call
// without an id answered with the CLI's own id.
const geminiCLIBody = `{"contents":[{"role":"user","parts":[{"text":"Create hello.txt"}]},` +
	`{"role":"model","parts":[{"text":"Writing.","thoughtSignature":"c2ln"},{"functionCall":{"name":"write_file","args":{"file_path":"hello.txt","content":"hi"}}}]},` +
	`{"role":"user","parts":[{"functionResponse":{"id":"write_file_1733500000_0","name":"write_file","response":{"output":"ok"}}}]}],` +
	`"systemInstruction":{"role":"user","parts":[{"text":"You are Gemini CLI."}]},` +
	`"tools":[{"functionDeclarations":[{"name":"write_file","description":"Writes a file.","parametersJsonSchema":{"type":"object","properties":{"file_path":{"type":"string"},"content":{"type":"string"}},"required":["file_path","content"]}}]}],` +
	`"generationConfig":{"temperature":0,"topP":1,"topK":64,"thinkingConfig":{"includeThoughts":true}}}`

// TestGeminiNativeRequest: a Gemini client's stream reaches a Gemini
// backend as sent, with the pool's model in the path, SSE asked for and
// the backend's key; the client's key (header or ?key=) never goes on, and
// the router takes it out of the path. The failover to OpenAI is
// translated, topK dropped, the CLI's call id carried to both sides.
func TestGeminiNativeRequest(t *testing.T) {
	h := geminiHarness(t)
	client := geminiClient("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIza-client", geminiCLIBody,
		"x-goog-api-key", "AIza-client")
	routed, dec := h.route(t, client, geminiCLIBody)
	if dec[KeyClient] != clientGemini || dec[KeyGeminiMethod] != "streamGenerateContent" || dec[KeyRequestedModel] != "gemini-2.5-flash" || dec[KeyPool] != "gem" {
		t.Fatalf("decisions %v", dec)
	}
	for _, kv := range routed {
		if kv.Key == ":path" && string(kv.RawValue) != "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" {
			t.Errorf("router left :path %s", kv.RawValue)
		}
	}
	m := slices.Clone(routed)
	got := h.attempt(t, &m, geminiCLIBody, "gem", "gem", dec)
	if got.body != geminiCLIBody {
		t.Errorf("the body changed on its way to Gemini:\n%s", got.body)
	}
	for name, want := range map[string]string{":path": "/v1beta/models/gemini-backend:streamGenerateContent?alt=sse", "x-goog-api-key": "sk-gemkey"} {
		if v, _ := header1(got, name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	oa := h.attempt(t, &m, geminiCLIBody, "gem", "oai", dec)
	b := gjson.Parse(oa.body)
	if v, _ := header1(oa, ":path"); v != "/v1/chat/completions" || b.Get("model").Str != "gpt-4o-mini" || b.Get("top_k").Exists() {
		t.Fatalf("OpenAI attempt %v\n%s", oa.headers, oa.body)
	}
	if v, ok := header1(oa, "x-goog-api-key"); ok {
		t.Errorf("x-goog-api-key %q reached OpenAI", v)
	}
	if b.Get("messages.2.tool_calls.0.id").Str != "write_file_1733500000_0" || b.Get("messages.3.tool_call_id").Str != "write_file_1733500000_0" {
		t.Errorf("call ids: %s", oa.body)
	}
}

// TestGeminiErrorsInGoogleShape: llmproc's own refusals on Gemini paths,
// unknown ones too, are Google errors.
func TestGeminiErrorsInGoogleShape(t *testing.T) {
	h := geminiHarness(t)
	for _, c := range []struct {
		name, method, path, body string
		code                     int
		status                   string
	}{
		{"unknown path", "POST", "/v1beta/files:upload", "{}", 404, "NOT_FOUND"},
		{"unknown method", "POST", "/v1beta/models/gemini-2.5-pro:predict", "{}", 404, "NOT_FOUND"},
		{"GET a method", "GET", "/v1beta/models/gemini-2.5-pro:generateContent", "", 405, "UNIMPLEMENTED"},
		{"no contents", "POST", "/v1beta/models/gemini-2.5-pro:generateContent", `{"generationConfig":{}}`, 400, "INVALID_ARGUMENT"},
		{"bad temperature", "POST", "/v1/models/gemini-2.5-pro:generateContent", `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"temperature":"hot"}}`, 400, "INVALID_ARGUMENT"},
		{"unknown model", "POST", "/v1beta/models/nope:generateContent", `{"contents":[{"parts":[{"text":"x"}]}]}`, 404, "NOT_FOUND"},
		{"embedding model for generate", "POST", "/v1beta/models/gemini-embedding-001:generateContent", `{"contents":[{"parts":[{"text":"x"}]}]}`, 400, "INVALID_ARGUMENT"},
		{"embed to OpenAI", "POST", "/v1beta/models/gpt-for-gemini:embedContent", `{"content":{"parts":[{"text":"x"}]}}`, 400, "INVALID_ARGUMENT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.routeReply(t, geminiClient(c.method, c.path, c.body), c.body)
			ir := r.GetImmediateResponse()
			if ir == nil {
				t.Fatalf("no immediate response: %v", r)
			}
			e := gjson.ParseBytes(ir.GetBody())
			if int(ir.GetStatus().GetCode()) != c.code || e.Get("error.code").Int() != int64(c.code) || e.Get("error.status").Str != c.status || e.Get("error.message").Str == "" {
				t.Errorf("%d %s", ir.GetStatus().GetCode(), ir.GetBody())
			}
		})
	}
}

// TestGeminiModels: GET /v1beta/models lists the registry in Gemini's shape.
func TestGeminiModels(t *testing.T) {
	h := geminiHarness(t)
	r := h.routeReply(t, geminiClient("GET", "/v1beta/models?key=k", ""), "")
	body := gjson.ParseBytes(r.GetImmediateResponse().GetBody())
	if body.Get("models.#").Int() != 3 || body.Get("models.0.name").Str != "models/gemini-2.5-pro" ||
		body.Get(`models.#(name=="models/gemini-embedding-001").supportedGenerationMethods.0`).Str != "embedContent" {
		t.Errorf("%s", r.GetImmediateResponse().GetBody())
	}
	one := h.routeReply(t, geminiClient("GET", "/v1beta/models/gemini-2.5-pro", ""), "")
	if gjson.GetBytes(one.GetImmediateResponse().GetBody(), "displayName").Str != "gemini-2.5-pro" {
		t.Errorf("%s", one.GetImmediateResponse().GetBody())
	}
	oai := h.routeReply(t, geminiClient("GET", "/v1/models", ""), "")
	if gjson.GetBytes(oai.GetImmediateResponse().GetBody(), "object").Str != "list" {
		t.Errorf("GET /v1/models without a Google key is OpenAI's: %s", oai.GetImmediateResponse().GetBody())
	}
}

// TestGeminiCountTokens: a Gemini pool forwards countTokens; an OpenAI one
// gets llmproc's estimate in Gemini's shape, marked.
func TestGeminiCountTokens(t *testing.T) {
	h := geminiHarness(t)
	const body = `{"contents":[{"role":"user","parts":[{"text":"Hello, Gemini, how are you today?"}]}]}`
	r := h.routeReply(t, geminiClient("POST", "/v1beta/models/gpt-for-gemini:countTokens", body), body)
	ir := r.GetImmediateResponse()
	hs := map[string]string{}
	for _, o := range ir.GetHeaders().GetSetHeaders() {
		hs[o.GetHeader().GetKey()] = string(o.GetHeader().GetRawValue())
	}
	if n := gjson.GetBytes(ir.GetBody(), "totalTokens").Int(); n < 5 || hs[HeaderTokenCount] != "estimated" {
		t.Errorf("%v %s", hs, ir.GetBody())
	}
	routed, dec := h.route(t, geminiClient("POST", "/v1beta/models/gemini-2.5-pro:countTokens", body), body)
	m := slices.Clone(routed)
	got := h.attempt(t, &m, body, "gem", "gem", dec)
	if v, _ := header1(got, ":path"); v != "/v1beta/models/gemini-backend:countTokens" || got.body != body {
		t.Errorf("%v %s", got.headers, got.body)
	}
}

// geminiExchange plays one attempt of a Gemini client's request on backend
// with the given answer.
func geminiExchange(t *testing.T, path, body, backend, status, ctype string, chunks ...string) nativeAnswer {
	t.Helper()
	h := geminiHarness(t)
	routed, dec := h.route(t, geminiClient("POST", path, body), body)
	s := h.stream(RoleUpstream)
	defer s.CloseSend() //nolint:errcheck
	attrs := map[string]string{AttrBackend: backend, AttrCluster: PoolClusterPrefix + dec[KeyPool]}
	roundTrip(t, s, withDecisions(reqHeaders(routed.message(), attrs), dec))
	roundTrip(t, s, withDecisions(reqBody(body), dec))
	resp := roundTrip(t, s, respHeaders(false, ":status", status, "content-type", ctype))
	a := nativeAnswer{status: status, set: setHeaders(resp.GetResponseHeaders().GetResponse()), md: map[string]string{}}
	var out strings.Builder
	for i, c := range chunks {
		r := roundTrip(t, s, respBody(c, i == len(chunks)-1))
		if bm := r.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
			out.Write(bm.GetBody())
		} else {
			out.WriteString(c)
		}
		for k, v := range r.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields() {
			a.md[k] = v.GetStringValue()
			if a.md[k] == "" {
				a.md[k] = strconv.FormatFloat(v.GetNumberValue(), 'f', -1, 64)
			}
		}
	}
	a.body = out.String()
	return a
}

const geminiSSE = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":12},\"modelVersion\":\"gemini-backend\",\"responseId\":\"r1\"}\r\n\r\n" +
	"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":12,\"candidatesTokenCount\":3,\"thoughtsTokenCount\":5,\"totalTokenCount\":20},\"modelVersion\":\"gemini-backend\",\"responseId\":\"r1\"}\r\n\r\n"

// TestGeminiNativeAnswer: Gemini's stream reaches the client as sent,
// split anywhere, usage read natively; without alt=sse the client gets the
// same responses as a JSON array.
func TestGeminiNativeAnswer(t *testing.T) {
	const path = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
	for _, size := range []int{0, 1, 7, len(geminiSSE)} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			got := geminiExchange(t, path, geminiCLIBody, "gem", "200", "text/event-stream", splitEvery(geminiSSE, size)...)
			if got.body != geminiSSE {
				t.Errorf("the stream changed:\n%q", got.body)
			}
			for k, v := range map[string]string{"prompt_tokens": "12", "completion_tokens": "8", "usage": "known", "outcome": "ok"} {
				if got.md[k] != v {
					t.Errorf("metadata %s = %q, want %q (%v)", k, got.md[k], v, got.md)
				}
			}
			arr := geminiExchange(t, strings.TrimSuffix(path, "?alt=sse"), geminiCLIBody, "gem", "200", "text/event-stream", splitEvery(geminiSSE, size)...)
			a := gjson.Parse(arr.body)
			if !a.IsArray() || a.Get("#").Int() != 2 || a.Get("1.candidates.0.finishReason").Str != "STOP" || arr.set["content-type"] != "application/json" {
				t.Errorf("array stream %v:\n%s", arr.set, arr.body)
			}
		})
	}
}

// TestGeminiTranslatedAnswer: an OpenAI backend's stream, split anywhere,
// reaches a Gemini client as Gemini's: text chunk by chunk, the tool call
// whole with its id, the finish and usageMetadata last.
func TestGeminiTranslatedAnswer(t *testing.T) {
	stream := "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n" +
		"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"write_file\",\"arguments\":\"{\\\"file_path\\\":\"}}]}}]}\n\n" +
		"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"a.txt\\\"}\"}}]}}]}\n\n" +
		"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n" +
		"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":9,\"total_tokens\":39}}\n\n" +
		"data: [DONE]\n\n"
	const path = "/v1beta/models/gpt-for-gemini:streamGenerateContent?alt=sse"
	var whole string
	for _, size := range []int{0, 1, 5, len(stream)} {
		got := geminiExchange(t, path, geminiCLIBody, "oai", "200", "text/event-stream", splitEvery(stream, size)...)
		if whole == "" {
			whole = got.body
		} else if got.body != whole {
			t.Errorf("split every %d bytes:\n%s\nwhole:\n%s", size, got.body, whole)
		}
		if got.md["prompt_tokens"] != "30" || got.md["outcome"] != "ok" {
			t.Errorf("metadata %v", got.md)
		}
	}
	events := strings.Split(strings.TrimSuffix(whole, "\r\n\r\n"), "\r\n\r\n")
	if len(events) != 2 {
		t.Fatalf("%d events:\n%s", len(events), whole)
	}
	last := gjson.Parse(strings.TrimPrefix(events[1], "data: "))
	if gjson.Parse(strings.TrimPrefix(events[0], "data: ")).Get("candidates.0.content.parts.0.text").Str != "Hi" ||
		last.Get("candidates.0.content.parts.0.functionCall.id").Str != "call_9" ||
		last.Get("candidates.0.content.parts.0.functionCall.args.file_path").Str != "a.txt" ||
		last.Get("candidates.0.finishReason").Str != "STOP" || last.Get("usageMetadata.totalTokenCount").Int() != 39 {
		t.Errorf("%s", whole)
	}
	e := geminiExchange(t, path, geminiCLIBody, "oai", "429", "application/json", `{"error":{"message":"Slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}`)
	if gjson.Get(e.body, "error.status").Str != "RESOURCE_EXHAUSTED" || gjson.Get(e.body, "error.code").Int() != 429 || e.set["content-type"] != "" && e.set["content-type"] != "application/json" {
		t.Errorf("error answer: %v %s", e.set, e.body)
	}
}

// TestGeminiClientKeys: under client_keys a Gemini client's key, in
// x-goog-api-key or ?key=, is its llmproc key; without one it gets Google's
// 401, and the key is taken out of the path it goes on with.
func TestGeminiClientKeys(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "keys.json")
	key, _, err := identity.Create(path, identity.Key{Tenant: "b", Models: []string{"claude-*"}}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessOpts(t, Options{Config: fixedRuntime{compileTest(t, fmt.Sprintf(keysConfig, path))}, Now: func() time.Time { return now }})
	const body = `{"contents":[{"parts":[{"text":"hi"}]}]}`
	for _, c := range []struct {
		name, path string
		headers    []string
		status     int
	}{
		{"query key", "/v1beta/models/claude-sonnet-4-5:generateContent?key=" + key, nil, 0},
		{"header key", "/v1beta/models/claude-sonnet-4-5:streamGenerateContent?alt=sse", []string{"x-goog-api-key", key}, 0},
		{"no key", "/v1beta/models/claude-sonnet-4-5:generateContent", nil, 401},
		{"model not allowed", "/v1beta/models/gpt-4o-mini:generateContent?key=" + key, nil, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := h.stream(RoleRouter)
			resp := roundTrip(t, s, reqHeaders(hdrs(false, append([]string{":method", "POST", ":path", c.path}, c.headers...)...), nil))
			if ir := resp.GetImmediateResponse(); ir != nil {
				if int(ir.Status.Code) != c.status || gjson.GetBytes(ir.Body, "error.code").Int() != int64(c.status) {
					t.Fatalf("%d %s", ir.Status.Code, ir.Body)
				}
				return
			}
			if p, ok := setHeaders(resp.GetRequestHeaders().GetResponse())[":path"]; strings.Contains(c.path, "key=") && (!ok || strings.Contains(p, "key=")) {
				t.Errorf(":path left as %q", p)
			}
			resp = roundTrip(t, s, reqBody(body))
			if ir := resp.GetImmediateResponse(); ir != nil {
				if int(ir.Status.Code) != c.status || gjson.GetBytes(ir.Body, "error.status").Str != "PERMISSION_DENIED" {
					t.Fatalf("%d %s", ir.Status.Code, ir.Body)
				}
				return
			}
			if d := decided(resp); c.status != 0 || d[KeyCallerTenant] != "b" || d[KeyKeyID] == "" {
				t.Errorf("decisions %v", d)
			}
		})
	}
}

// TestGeminiVertexNative: a Gemini client's request reaches Vertex as
// sent, on Vertex's path with the bearer token; countTokens' request moves
// to the top level, as Vertex takes it; embeddings are refused (Vertex
// embeds with :predict).
func TestGeminiVertexNative(t *testing.T) {
	cfg, err := config.Parse([]byte(`
backends:
  - {name: vx, schema: vertex, url: "http://127.0.0.1:1", credential: {env: VXTOKEN}, vertex: {project: proj, region: europe-west4}}
models:
  - {name: gemini-2.5-pro, pool: vx}
  - {name: gemini-embedding-001, kind: embedding, pool: vx}
pools:
  - {name: vx, backends: [{backend: vx}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Compile(cfg, func(string) string { return "ya29.token" })
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessFor(t, rt, nil)
	routed, dec := h.route(t, geminiClient("POST", "/v1beta/models/gemini-2.5-pro:streamGenerateContent", geminiCLIBody), geminiCLIBody)
	m := slices.Clone(routed)
	got := h.attempt(t, &m, geminiCLIBody, "vx", "vx", dec)
	if v, _ := header1(got, ":path"); v != "/v1/projects/proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse" || got.body != geminiCLIBody {
		t.Errorf("%s\n%s", v, got.body)
	}
	if v, _ := header1(got, "authorization"); v != "Bearer ya29.token" {
		t.Errorf("authorization %q", v)
	}
	const count = `{"generateContentRequest":{"model":"models/gemini-2.5-pro","contents":[{"role":"user","parts":[{"text":"hi"}]}]}}`
	routed, dec = h.route(t, geminiClient("POST", "/v1beta/models/gemini-2.5-pro:countTokens", count), count)
	m = slices.Clone(routed)
	got = h.attempt(t, &m, count, "vx", "vx", dec)
	if v, _ := header1(got, ":path"); !strings.HasSuffix(v, "/models/gemini-2.5-pro:countTokens") || got.body != `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}` {
		t.Errorf("%s\n%s", v, got.body)
	}
	// Vertex's Gemini API has no embedContent: translated to :predict.
	const embed = `{"content":{"parts":[{"text":"hi"}]},"outputDimensionality":64}`
	routed, dec = h.route(t, geminiClient("POST", "/v1beta/models/gemini-embedding-001:embedContent", embed), embed)
	m = slices.Clone(routed)
	got = h.attempt(t, &m, embed, "vx", "vx", dec)
	if v, _ := header1(got, ":path"); !strings.HasSuffix(v, "/publishers/google/models/gemini-embedding-001:predict") ||
		gjson.Get(got.body, "instances.0.content").Str != "hi" || gjson.Get(got.body, "parameters.outputDimensionality").Int() != 64 {
		t.Errorf("%s\n%s", v, got.body)
	}
}

// TestGeminiEmbedTranslated: a Gemini client's batchEmbedContents passes
// to a Gemini backend as sent; on failover to OpenAI it goes as POST
// /v1/embeddings, and OpenAI's answer comes back as Gemini's, with
// usageMetadata; an OpenAI error as Google's.
func TestGeminiEmbedTranslated(t *testing.T) {
	h := geminiHarness(t)
	const batch = `{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"outputDimensionality":2},` +
		`{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]},"outputDimensionality":2}]}`
	routed, dec := h.route(t, geminiClient("POST", "/v1beta/models/gemini-embedding-001:batchEmbedContents", batch), batch)
	m := slices.Clone(routed)
	if got := h.attempt(t, &m, batch, "gemembed", "gem", dec); got.body != batch {
		t.Errorf("Gemini got %s", got.body)
	}
	got := h.attempt(t, &m, batch, "gemembed", "oai", dec)
	if v, _ := header1(got, ":path"); v != "/v1/embeddings" || got.body != `{"model":"text-embedding-3-small","input":["a","b"],"dimensions":2}` {
		t.Errorf("OpenAI got %s %s", v, got.body)
	}
	for _, c := range []struct {
		status, answer, want string
	}{
		{"200", `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1, 0.2]},{"object":"embedding","index":1,"embedding":[0.3,0.4]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2}}`,
			`{"embeddings":[{"values":[0.1,0.2]},{"values":[0.3,0.4]}],"usageMetadata":{"promptTokenCount":2,"totalTokenCount":2}}`},
		{"429", `{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`,
			`{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}`},
	} {
		s := h.stream(RoleUpstream)
		m := slices.Clone(routed)
		attrs := map[string]string{AttrBackend: "oai", AttrCluster: PoolClusterPrefix + "gemembed"}
		roundTrip(t, s, withDecisions(reqHeaders(m.message(), attrs), dec))
		roundTrip(t, s, withDecisions(reqBody(batch), dec))
		r := roundTrip(t, s, respHeaders(false, ":status", c.status, "content-type", "application/json"))
		if r.GetResponseHeaders() == nil {
			t.Fatalf("headers reply %v", r)
		}
		r = roundTrip(t, s, respBody(c.answer, true))
		if out := string(r.GetResponseBody().GetResponse().GetBodyMutation().GetBody()); out != c.want {
			t.Errorf("%s: client gets %s\nwant %s", c.status, out, c.want)
		}
		s.CloseSend() //nolint:errcheck
	}
}
