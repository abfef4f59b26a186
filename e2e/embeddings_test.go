package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakebedrock"
	"github.com/llmproc/llmproc/e2e/fakegemini"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

const embeddingsConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
  - {name: gemini, schema: gemini, url: "%s", credential: {env: GEMINI_KEY}}
  - name: vertex
    schema: vertex
    url: "%s"
    credential: {env: VERTEX_TOKEN}
    vertex: {project: my-proj, region: europe-west4}
  - {name: bedrock, schema: bedrock, url: "%s", credential: {env: BEDROCK_KEYS}, bedrock: {region: eu-central-1}}
models:
  - {name: text-embedding-3-small, kind: embedding, pool: openai-gemini, price: {input: 0.02}}
  - {name: gemini-embed, kind: embedding, pool: gemini, price: {input: 0.15}}
  - {name: vertex-embed, kind: embedding, pool: vertex, price: {input: 0.025}}
  - {name: titan-embed, kind: embedding, pool: titan, price: {input: 0.20}}
  - {name: cohere-embed, kind: embedding, pool: cohere, price: {input: 0.10}}
  - {name: gemini-flash, pool: gemini-chat, price: {input: 0.30, output: 2.50}}
  - {name: claude-bedrock, pool: bedrock-chat, price: {input: 3.00, output: 15.00}}
pools:
  - name: openai-gemini
    backends: [{backend: openai}, {backend: gemini, model: gemini-embedding-001}]
  - {name: gemini, backends: [{backend: gemini, model: gemini-embedding-001}]}
  - {name: vertex, backends: [{backend: vertex, model: text-embedding-005}]}
  - {name: titan, backends: [{backend: bedrock, model: "amazon.titan-embed-text-v2:0"}]}
  - {name: cohere, backends: [{backend: bedrock, model: cohere.embed-english-v3}]}
  - {name: gemini-chat, backends: [{backend: gemini, model: gemini-2.5-flash}]}
  - {name: bedrock-chat, backends: [{backend: bedrock, model: "anthropic.claude-3-5-sonnet-20240620-v1:0"}]}
`

// embeddingsEnv is a stack with an embedding model on each backend that
// llmproc translates embeddings for, and one pool failing over from OpenAI
// to Gemini.
type embeddingsEnv struct {
	*env
	openai  *fakeopenai.Server
	gemini  *fakegemini.Server
	vertex  *fakegemini.Server
	bedrock *fakebedrock.Server
}

func startEmbeddings(t *testing.T, extra ...string) *embeddingsEnv {
	t.Helper()
	e := &embeddingsEnv{
		openai: fakeopenai.New(fakeopenai.Options{}),
		gemini: fakegemini.New(fakegemini.Options{Key: "gemini-secret"}),
		vertex: fakegemini.New(fakegemini.Options{Bearer: "ya29.vertex"}),
		bedrock: fakebedrock.New(fakebedrock.Options{AccessKeyID: "AKIDE2E", Secret: "e2e-secret", Region: "eu-central-1",
			HostIsAddr: true}),
	}
	t.Cleanup(func() { e.openai.Close(); e.gemini.Close(); e.vertex.Close(); e.bedrock.Close() })
	cfg := fmt.Sprintf(embeddingsConfig, e.openai.URL(), e.gemini.URL(), e.vertex.URL(), e.bedrock.URL()) + strings.Join(extra, "")
	st, accessLog, log := startStack(t, cfg, map[string]string{"OPENAI_KEY": "sk-openai", "GEMINI_KEY": "gemini-secret",
		"VERTEX_TOKEN": "ya29.vertex", "BEDROCK_KEYS": "AKIDE2E:e2e-secret"})
	e.env = &env{Stack: st, accessLog: accessLog, log: log}
	return e
}

// wantVectors checks an OpenAI embeddings answer holds fake.Vector of each
// text (dims numbers), as floats or, with b64, as base64 float32s.
func wantVectors(t *testing.T, body []byte, texts []string, dims int, b64 bool) {
	t.Helper()
	data := gjson.GetBytes(body, "data").Array()
	if gjson.GetBytes(body, "object").Str != "list" || len(data) != len(texts) {
		t.Fatalf("answer %s", body)
	}
	for i, text := range texts {
		want := fake.Vector(text, dims)
		e := data[i].Get("embedding")
		if data[i].Get("index").Int() != int64(i) || data[i].Get("object").Str != "embedding" {
			t.Errorf("data[%d] %s", i, data[i].Raw)
		}
		if b64 {
			if e.Str != fake.Base64Vector(want) {
				t.Errorf("data[%d].embedding %s, want %q", i, e.Raw, fake.Base64Vector(want))
			}
			continue
		}
		got := e.Array()
		if len(got) != len(want) {
			t.Fatalf("data[%d].embedding %s, want %v", i, e.Raw, want)
		}
		for j := range want {
			if got[j].Float() != want[j] {
				t.Errorf("data[%d].embedding[%d] = %v, want %v", i, j, got[j].Float(), want[j])
			}
		}
	}
}

// TestEmbeddingsTranslated: POST /v1/embeddings reaches Gemini
// (batchEmbedContents), Vertex AI (predict), Bedrock Titan and Cohere
// (InvokeModel) in each one's shape, and the answers come back in OpenAI's,
// as floats and as base64, with the provider's token count priced into
// /metrics and the access log; the same request again is a cache hit that
// never reaches the provider.
func TestEmbeddingsTranslated(t *testing.T) {
	e := startEmbeddings(t)
	e.gemini.Script(func(fakegemini.Request) fakegemini.Behaviour {
		return fakegemini.Behaviour{Usage: fakegemini.Usage{Prompt: 11}}
	})
	for _, c := range []struct {
		model, backend, servedModel string
		texts                       []string
		dims                        int
		tokens                      int64 // the provider's count
		pathSuffix                  string
		requests                    func() int
	}{
		{"gemini-embed", "gemini", "gemini-embedding-001", []string{"hello world", "second text"}, 8, 11,
			"/v1beta/models/gemini-embedding-001:batchEmbedContents", func() int { return len(e.gemini.Requests()) }},
		{"vertex-embed", "vertex", "text-embedding-005", []string{"one two three", "four"}, 0, 4,
			"/v1/projects/my-proj/locations/europe-west4/publishers/google/models/text-embedding-005:predict", func() int { return len(e.vertex.Requests()) }},
		{"titan-embed", "bedrock", "amazon.titan-embed-text-v2:0", []string{"titan embeds one text"}, 256, 4,
			"/model/amazon.titan-embed-text-v2%3A0/invoke", func() int { return len(e.bedrock.Requests()) }},
		{"cohere-embed", "bedrock", "cohere.embed-english-v3", []string{"doc a", "doc b c"}, 0, 5,
			"/model/cohere.embed-english-v3/invoke", func() int { return len(e.bedrock.Requests()) }},
	} {
		for _, b64 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/base64=%v", c.model, b64), func(t *testing.T) {
				input, _ := json.Marshal(c.texts)
				if len(c.texts) == 1 {
					input, _ = json.Marshal(c.texts[0])
				}
				body := fmt.Sprintf(`{"model":%q,"input":%s`, c.model, input)
				if c.dims > 0 {
					body += fmt.Sprintf(`,"dimensions":%d`, c.dims)
				}
				if b64 {
					body += `,"encoding_format":"base64"`
				}
				body += "}"
				before := c.requests()
				r := e.postPath(t, "/v1/embeddings", body)
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				if got := r.header.Get("x-llmproc-backend"); got != c.backend {
					t.Errorf("x-llmproc-backend %q", got)
				}
				wantVectors(t, r.body, c.texts, c.dims, b64)
				if gjson.GetBytes(r.body, "model").Str != c.servedModel ||
					gjson.GetBytes(r.body, "usage.prompt_tokens").Int() != c.tokens || gjson.GetBytes(r.body, "usage.total_tokens").Int() != c.tokens {
					t.Errorf("model and usage: %s", r.body)
				}
				if n := c.requests(); n != before+1 {
					t.Fatalf("%d provider requests, want %d", n, before+1)
				}
				if id := r.header.Get("x-llmproc-request-id"); id != "" {
					line := accessLine(t, e.env, id)
					if gjson.Get(line, "prompt_tokens").Int() != c.tokens || gjson.Get(line, "usage").Str != "known" || gjson.Get(line, "cost_usd").Float() <= 0 {
						t.Errorf("access log: %s", line)
					}
				}
				again := e.postPath(t, "/v1/embeddings", body)
				if again.status != 200 || again.header.Get("x-llmproc-cache") != "hit" || string(again.body) != string(r.body) {
					t.Errorf("repeat: %d cache %q\n%s", again.status, again.header.Get("x-llmproc-cache"), again.body)
				}
				if n := c.requests(); n != before+1 {
					t.Errorf("the cached request reached the provider (%d requests)", n)
				}
			})
		}
	}
	var paths []string
	for _, reqs := range [][]fakegemini.Request{e.gemini.Requests(), e.vertex.Requests()} {
		for _, r := range reqs {
			paths = append(paths, r.Path)
		}
	}
	for _, r := range e.bedrock.Requests() {
		paths = append(paths, r.Path)
	}
	if len(paths) != 8 || !strings.HasSuffix(paths[0], ":batchEmbedContents") || !strings.HasSuffix(paths[2], ":predict") ||
		!strings.HasSuffix(paths[4], "/invoke") {
		t.Errorf("provider paths %v", paths)
	}
	if r := e.gemini.Requests()[0]; r.Header.Get("x-goog-api-key") != "gemini-secret" ||
		gjson.GetBytes(r.Body, "requests.1.outputDimensionality").Int() != 8 || gjson.GetBytes(r.Body, "requests.1.content.parts.0.text").Str != "second text" {
		t.Errorf("Gemini request %s %v", r.Body, r.Header)
	}
	if r := e.vertex.Requests()[0]; r.Header.Get("authorization") != "Bearer ya29.vertex" || gjson.GetBytes(r.Body, "instances.#").Int() != 2 {
		t.Errorf("Vertex request %s", r.Body)
	}
	if r := e.bedrock.Requests()[0]; gjson.GetBytes(r.Body, "dimensions").Int() != 256 || gjson.GetBytes(r.Body, "inputText").Str != "titan embeds one text" {
		t.Errorf("Titan request %s", r.Body)
	}
	if r := e.bedrock.Requests()[2]; gjson.GetBytes(r.Body, "input_type").Str != "search_document" || gjson.GetBytes(r.Body, "texts.#").Int() != 2 {
		t.Errorf("Cohere request %s", r.Body)
	}
	// Twice each (float and base64): 11 tokens at 0.15, 4 at 0.025, 4 at
	// 0.20 and 5 at 0.10 USD per million.
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_tokens_total"], map[string]string{"type": "input"}) == 2*(11+4+4+5)
	})
	for backend, want := range map[string]float64{"gemini": 2 * 11 * 0.15 / 1e6, "vertex": 2 * 4 * 0.025 / 1e6, "bedrock": 2 * (4*0.20 + 5*0.10) / 1e6} {
		if got := sum(m["llmproc_cost_usd_total"], map[string]string{"backend": backend}); fmt.Sprintf("%.15f", got) != fmt.Sprintf("%.15f", want) {
			t.Errorf("cost on %s: %v, want %v", backend, got, want)
		}
	}
	if got := sum(m["gen_ai_client_token_usage"], map[string]string{"gen_ai_operation_name": "embeddings", "gen_ai_token_type": "input"}); got != 2*(11+4+4+5) {
		t.Errorf("gen_ai_client_token_usage{embeddings} sum %v", got)
	}
}

// TestEmbeddingsFailoverToGemini: in a pool [openai, gemini], OpenAI's 503
// moves the attempt to Gemini, which answers in its own shape; the client
// gets OpenAI's. Gemini reports no token count here, so the usage is
// llmproc's estimate from the input text: counted as estimated, never as
// provider-reported tokens.
func TestEmbeddingsFailoverToGemini(t *testing.T) {
	e := startEmbeddings(t)
	e.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	texts := []string{"sixteen bytes...", "and twelve.."}
	r := e.postPath(t, "/v1/embeddings", `{"model":"text-embedding-3-small","input":["sixteen bytes...","and twelve.."],"encoding_format":"base64"}`)
	if r.status != 200 || r.header.Get("x-llmproc-backend") != "gemini" {
		t.Fatalf("status %d backend %q: %s", r.status, r.header.Get("x-llmproc-backend"), r.body)
	}
	wantVectors(t, r.body, texts, 0, true)
	if got := gjson.GetBytes(r.body, "usage.prompt_tokens").Int(); got != 7 { // 28 bytes, 4 a token
		t.Errorf("usage %s", gjson.GetBytes(r.body, "usage").Raw)
	}
	if n := len(e.openai.Requests()); n < 1 || e.openai.Requests()[0].Path != "/v1/embeddings" {
		t.Errorf("%d OpenAI requests", n)
	}
	if line := accessLine(t, e.env, r.header.Get("x-llmproc-request-id")); gjson.Get(line, "estimated_cost_usd").Float() != 7*0.02/1e6 {
		t.Errorf("access log: %s", line)
	}
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_tokens_estimated_total"], map[string]string{"backend": "gemini", "type": "input"}) == 7
	})
	if got := sum(m["llmproc_tokens_total"], map[string]string{"backend": "gemini"}); got != 0 {
		t.Errorf("estimated tokens counted as reported: %v", got)
	}
}

// TestEmbeddingsRefused: what a backend cannot take is a 400 in OpenAI's
// shape naming the backend, before any provider sees it: token arrays for
// Gemini, two inputs for Titan; and POST /v1/completions on Gemini and
// Bedrock pools, which cannot serve the legacy API.
func TestEmbeddingsRefused(t *testing.T) {
	e := startEmbeddings(t)
	for _, c := range []struct{ path, body, code, backend string }{
		{"/v1/embeddings", `{"model":"gemini-embed","input":[[1,2,3]]}`, "unsupported_input", "gemini"},
		{"/v1/embeddings", `{"model":"titan-embed","input":["a","b"]}`, "too_many_inputs", "bedrock"},
		{"/v1/completions", `{"model":"gemini-flash","prompt":"Once"}`, "unsupported_endpoint", "gemini"},
		{"/v1/completions", `{"model":"claude-bedrock","prompt":"Once","stream":true}`, "unsupported_endpoint", "bedrock"},
	} {
		r := e.postPath(t, c.path, c.body)
		wantOpenAIError(t, r, 400, c.code)
		if msg := gjson.GetBytes(r.body, "error.message").Str; !strings.Contains(strings.ToLower(msg), `backend "`+c.backend+`"`) {
			t.Errorf("%s: message %q", c.body, msg)
		}
	}
	if n := len(e.gemini.Requests()) + len(e.bedrock.Requests()); n != 0 {
		t.Errorf("%d requests reached a provider", n)
	}
}

// TestOpenAISDKEmbeddings: the OpenAI Node SDK's embeddings.create through
// llmproc to OpenAI (passed through), Gemini, Bedrock Titan and Cohere
// (translated). Its default call asks for base64 and decodes the float32s
// itself; both it and an encoding_format "float" call get exactly the
// vectors the fakes made (fake.Vector), with the providers' token counts.
func TestOpenAISDKEmbeddings(t *testing.T) {
	e := startEmbeddings(t)
	e.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 5}}
	})
	e.gemini.Script(func(fakegemini.Request) fakegemini.Behaviour {
		return fakegemini.Behaviour{Usage: fakegemini.Usage{Prompt: 6}}
	})
	cases := []struct {
		model  string
		texts  []string
		tokens int64
	}{
		{"text-embedding-3-small", []string{"from the node sdk", "two"}, 5},
		{"gemini-embed", []string{"gemini via node"}, 6},
		{"titan-embed", []string{"titan via node sdk"}, 4},
		{"cohere-embed", []string{"cohere one", "cohere two three"}, 5},
	}
	args := []string{e.URL()}
	for _, c := range cases {
		in, _ := json.Marshal(c.texts)
		args = append(args, c.model+"="+string(in))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := nodeScript(t, ctx, "embeddings.mjs", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("embeddings.mjs: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	r := gjson.ParseBytes(out)
	for _, c := range cases {
		m := r.Get(strings.ReplaceAll(c.model, ".", `\.`))
		for _, form := range []string{"default", "float"} {
			vecs := m.Get(form).Array()
			if len(vecs) != len(c.texts) {
				t.Fatalf("%s %s: %s", c.model, form, m.Raw)
			}
			for i, text := range c.texts {
				want, got := fake.Vector(text, 0), vecs[i].Array()
				if len(got) != len(want) {
					t.Fatalf("%s %s[%d]: %s, want %v", c.model, form, i, vecs[i].Raw, want)
				}
				for j := range want {
					if got[j].Float() != want[j] {
						t.Errorf("%s %s[%d][%d] = %v, want %v", c.model, form, i, j, got[j].Float(), want[j])
					}
				}
			}
		}
		if m.Get("usage.prompt_tokens").Int() != c.tokens || m.Get("usage.total_tokens").Int() != c.tokens || m.Get("index.1").Exists() != (len(c.texts) > 1) {
			t.Errorf("%s: %s", c.model, m.Raw)
		}
	}
	reqs := e.openai.Requests()
	if len(reqs) != 2 || gjson.GetBytes(reqs[0].Body, "encoding_format").Str != "base64" || gjson.GetBytes(reqs[1].Body, "encoding_format").Str != "float" {
		t.Errorf("the SDK's wire encodings at OpenAI: %d requests, first %s", len(reqs), reqs[0].Body)
	}
}

// TestEmbeddingsBudgetSettles: translated embeddings settle the tenant's
// budget at the provider's count: Titan reports 10,000 tokens a request
// (2,000 µ$ at 0.20 USD per million) while each reservation's worst case is
// a few µ$, so against a 5,000 µ$ budget the fourth request is refused; the
// reservations alone would let it through.
func TestEmbeddingsBudgetSettles(t *testing.T) {
	e := startEmbeddings(t, `
budgets:
  - {name: daily, scope: tenant, window: day, limit_usd: "0.005"}
budget_store: {tenant_header: x-tenant}
identity: {allow_client_tenant: true} # the tenant header as sent: a test
`)
	e.bedrock.Script(func(fakebedrock.Request) fakebedrock.Behaviour {
		return fakebedrock.Behaviour{Usage: fakebedrock.Usage{Input: 10000}}
	})
	var codes []int
	for i := range 4 {
		r := e.postPath(t, "/v1/embeddings", fmt.Sprintf(`{"model":"titan-embed","input":"text number %d"}`, i), "x-tenant", "team-a")
		codes = append(codes, r.status)
		if r.status == 429 {
			wantOpenAIError(t, r, 429, "budget_exceeded")
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 200 || codes[3] != 429 {
		t.Fatalf("statuses %v, want three 200 then a 429", codes)
	}
	if n := len(e.bedrock.Requests()); n != 3 {
		t.Errorf("%d requests reached Bedrock, want 3", n)
	}
}
