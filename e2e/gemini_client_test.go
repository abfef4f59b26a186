package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakegemini"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// Gemini's API as a client API (issue 13): a Gemini client's requests pass
// natively to a Gemini backend and are translated for an OpenAI one.

const geminiClientConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 1048576, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
backends:
  - {name: gemini, schema: gemini, url: "%s", credential: {env: GEMINI_KEY}}
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
models:
  - {name: gemini-2.5-flash, aliases: ["gemini-2.5-*", "gemini-3*"], pool: gemini, price: {input: 0.30, output: 2.50}}
  - {name: gpt-4o-mini, aliases: ["gpt-*"], pool: openai, price: {input: 0.15, output: 0.60}}
pools:
  - {name: gemini, backends: [{backend: gemini, model: gemini-backend-model}]}
  - {name: openai, backends: [{backend: openai, model: gpt-4o-mini}]}
`

type geminiClientEnv struct {
	*env
	gemini *fakegemini.Server
	openai *fakeopenai.Server
}

func startGeminiClient(t *testing.T) *geminiClientEnv {
	t.Helper()
	g := &geminiClientEnv{gemini: fakegemini.New(fakegemini.Options{Key: "gemini-secret"}), openai: fakeopenai.New(fakeopenai.Options{})}
	t.Cleanup(func() { g.gemini.Close(); g.openai.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(geminiClientConfig, g.gemini.URL(), g.openai.URL()),
		map[string]string{"GEMINI_KEY": "gemini-secret", "OPENAI_KEY": "sk-openai"})
	g.env = &env{Stack: st, accessLog: accessLog, log: log}
	return g
}

// gpost sends a Gemini API request (path and query) with a client key.
func (g *geminiClientEnv) gpost(t *testing.T, pathQuery, body string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.URL()+pathQuery, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-goog-api-key", "AIza-client-key")
	return do(t, req)
}

const geminiWeather = `{"contents":[{"role":"user","parts":[{"text":"Weather in Paris?"}]}],` +
	`"tools":[{"functionDeclarations":[{"name":"get_weather","description":"Weather for a city","parametersJsonSchema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]}],` +
	`"generationConfig":{"temperature":0.2,"topK":40,"maxOutputTokens":100,"thinkingConfig":{"includeThoughts":true}}}`

// TestGeminiClientNative: generate, stream (SSE and the JSON array) and
// countTokens-free pass-through: the Gemini fake receives the client's
// body byte for byte with the pool's model in the path and the backend's
// key, never the client's; the answer is the fake's own; usage is read
// natively into the access log.
func TestGeminiClientNative(t *testing.T) {
	g := startGeminiClient(t)
	g.gemini.Script(func(fakegemini.Request) fakegemini.Behaviour {
		return fakegemini.Behaviour{Text: "Sunny in Paris.", Usage: fakegemini.Usage{Prompt: 11, Candidates: 4}}
	})
	for _, c := range []struct{ name, path, ctype string }{
		{"generate", "/v1beta/models/gemini-2.5-flash:generateContent?key=AIza-query-key", "application/json"},
		{"sse", "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse", "text/event-stream"},
		{"array", "/v1/models/gemini-2.5-pro:streamGenerateContent", "application/json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(g.gemini.Requests())
			r := g.gpost(t, c.path, geminiWeather)
			if r.status != 200 || !strings.HasPrefix(r.header.Get("content-type"), c.ctype) {
				t.Fatalf("%d %v\n%s", r.status, r.header, r.body)
			}
			got := g.gemini.Requests()[before]
			wantPath := "/v1beta/models/gemini-backend-model:generateContent"
			if c.name != "generate" {
				wantPath = "/v1beta/models/gemini-backend-model:streamGenerateContent?alt=sse"
			}
			if got.Path != wantPath || string(got.Body) != geminiWeather || got.Header.Get("x-goog-api-key") != "gemini-secret" {
				t.Errorf("the fake got %s %v\n%s", got.Path, got.Header, got.Body)
			}
			var text strings.Builder
			switch c.name {
			case "generate":
				text.WriteString(gjson.GetBytes(r.body, "candidates.0.content.parts.0.text").Str)
			case "sse":
				for _, ev := range sseEvents(t, r.body) {
					text.WriteString(gjson.Get(ev, "candidates.0.content.parts.0.text").Str)
				}
			case "array":
				a := gjson.ParseBytes(r.body)
				if !a.IsArray() {
					t.Fatalf("not an array: %s", r.body)
				}
				for _, ev := range a.Array() {
					text.WriteString(ev.Get("candidates.0.content.parts.0.text").Str)
				}
			}
			if text.String() != "Sunny in Paris." {
				t.Errorf("text %q in %s", text.String(), r.body)
			}
			line := gjson.Parse(accessLine(t, g.env, r.header.Get("x-llmproc-request-id")))
			if line.Get("client").Str != "gemini" || line.Get("prompt_tokens").Int() != 11 || line.Get("completion_tokens").Int() != 4 {
				t.Errorf("access log %s", line.Raw)
			}
		})
	}
	for _, req := range g.gemini.Requests() {
		if strings.Contains(req.Path, "key=") || strings.Contains(req.Header.Get("x-goog-api-key"), "AIza") {
			t.Errorf("a client key reached the provider: %s %v", req.Path, req.Header)
		}
	}
}

// TestGeminiClientTranslated: to an OpenAI backend a Gemini client's
// generate and stream are translated both ways, topK dropped, and a
// function call makes a round trip: OpenAI's call id reaches the client in
// functionCall.id, comes back in functionResponse.id, and reaches OpenAI
// as the tool message's tool_call_id.
func TestGeminiClientTranslated(t *testing.T) {
	g := startGeminiClient(t)
	g.openai.Turns(
		func([]fake.ToolResult) fakeopenai.Behaviour {
			return fakeopenai.Behaviour{ToolCalls: []fakeopenai.ToolCall{{ID: "call_w1", Name: "get_weather", Arguments: `{"city":"Paris"}`}},
				Usage: fakeopenai.Usage{Prompt: 30, Completion: 7}}
		},
		func(rs []fake.ToolResult) fakeopenai.Behaviour {
			return fakeopenai.Behaviour{Content: "It is " + gjson.Get(rs[0].Output, "output").Str + ".", Usage: fakeopenai.Usage{Prompt: 40, Completion: 5}}
		},
	)
	for _, stream := range []bool{false, true} {
		path := "/v1beta/models/gpt-4o-mini:generateContent"
		if stream {
			path = "/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse"
		}
		before := len(g.openai.Requests())
		r := g.gpost(t, path, geminiWeather)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		resp := gjson.ParseBytes(r.body)
		if stream {
			evs := sseEvents(t, r.body)
			resp = gjson.Parse(evs[len(evs)-1])
		}
		call := resp.Get("candidates.0.content.parts.#(functionCall).functionCall")
		if call.Get("id").Str != "call_w1" || call.Get("name").Str != "get_weather" || call.Get("args.city").Str != "Paris" ||
			resp.Get("candidates.0.finishReason").Str != "STOP" || resp.Get("usageMetadata.totalTokenCount").Int() != 37 {
			t.Fatalf("stream %v: %s", stream, r.body)
		}
		sent := gjson.ParseBytes(g.openai.Requests()[before].Body)
		if sent.Get("model").Str != "gpt-4o-mini" || sent.Get("top_k").Exists() || sent.Get("tools.0.function.parameters.required.0").Str != "city" ||
			sent.Get("max_tokens").Int() != 100 {
			t.Errorf("OpenAI got %s", sent.Raw)
		}

		// The client runs the tool and answers with the call's id.
		next := `{"contents":[{"role":"user","parts":[{"text":"Weather in Paris?"}]},{"role":"model","parts":[{"functionCall":` + call.Raw + `}]},` +
			`{"role":"user","parts":[{"functionResponse":{"id":"call_w1","name":"get_weather","response":{"output":"sunny"}}}]}],` +
			`"tools":[{"functionDeclarations":[{"name":"get_weather","parametersJsonSchema":{"type":"object","properties":{"city":{"type":"string"}}}}]}]}`
		r = g.gpost(t, path, next)
		text := gjson.GetBytes(r.body, "candidates.0.content.parts.0.text").Str
		if stream {
			text = ""
			for _, ev := range sseEvents(t, r.body) {
				text += gjson.Get(ev, "candidates.0.content.parts.0.text").Str
			}
		}
		if r.status != 200 || text != "It is sunny." {
			t.Fatalf("second turn %d: %s", r.status, r.body)
		}
		reqs := g.openai.Requests()
		tool := gjson.GetBytes(reqs[len(reqs)-1].Body, `messages.#(role=="tool")`)
		if tool.Get("tool_call_id").Str != "call_w1" {
			t.Errorf("OpenAI got %s", reqs[len(reqs)-1].Body)
		}
	}
}

// TestGeminiClientErrors: llmproc's own errors and a backend's are in
// Google's shape.
func TestGeminiClientErrors(t *testing.T) {
	g := startGeminiClient(t)
	r := g.gpost(t, "/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":"hi"}`)
	if r.status != 400 || gjson.GetBytes(r.body, "error.status").Str != "INVALID_ARGUMENT" || gjson.GetBytes(r.body, "error.code").Int() != 400 {
		t.Errorf("%d %s", r.status, r.body)
	}
	r = g.gpost(t, "/v1beta/cachedContents", `{}`)
	if r.status != 404 || gjson.GetBytes(r.body, "error.status").Str != "NOT_FOUND" {
		t.Errorf("%d %s", r.status, r.body)
	}
	// Envoy retries a 429 once (num_retries 1): the last one ends the pool.
	for range 2 {
		g.openai.Enqueue(fakeopenai.Behaviour{Status: 429, ErrorType: "rate_limit_error", ErrorMessage: "slow down", ErrorCode: "rate_limit_exceeded"})
	}
	r = g.gpost(t, "/v1beta/models/gpt-4o-mini:generateContent", geminiWeather)
	if r.status != 429 || gjson.GetBytes(r.body, "error.status").Str != "RESOURCE_EXHAUSTED" || gjson.GetBytes(r.body, "error.code").Int() != 429 {
		t.Errorf("%d %s", r.status, r.body)
	}
	req, _ := http.NewRequest(http.MethodGet, g.URL()+"/v1beta/models", nil)
	req.Header.Set("x-goog-api-key", "k")
	if r := do(t, req); r.status != 200 || gjson.GetBytes(r.body, "models.0.name").Str != "models/gemini-2.5-flash" {
		t.Errorf("models: %d %s", r.status, r.body)
	}
}

// TestGeminiClientCacheAndBudget: the exact cache serves a Gemini client's
// repeated deterministic request (generationConfig.temperature 0) in
// Gemini's shape, JSON and SSE, without reaching the provider; a budget
// spent refuses the next request with Google's 429; the token metrics count
// the Gemini client's usage.
func TestGeminiClientCacheAndBudget(t *testing.T) {
	g := &geminiClientEnv{gemini: fakegemini.New(fakegemini.Options{Key: "gemini-secret"}), openai: fakeopenai.New(fakeopenai.Options{
		Default: fakeopenai.Behaviour{Content: "Cached words.", Usage: fakeopenai.Usage{Prompt: 1000, Completion: 1000}}})}
	t.Cleanup(func() { g.gemini.Close(); g.openai.Close() })
	cfg := fmt.Sprintf(geminiClientConfig, g.gemini.URL(), g.openai.URL()) +
		"cache: {mode: deterministic, ttl: 1m}\nbudgets:\n  - {name: daily, scope: global, window: day, limit_usd: \"0.002\"}\n"
	st, accessLog, log := startStack(t, cfg, map[string]string{"GEMINI_KEY": "gemini-secret", "OPENAI_KEY": "sk-openai"})
	g.env = &env{Stack: st, accessLog: accessLog, log: log}
	const body = `{"contents":[{"role":"user","parts":[{"text":"Say it"}]}],"generationConfig":{"temperature":0,"maxOutputTokens":1000}}`
	for _, path := range []string{"/v1beta/models/gpt-4o-mini:generateContent", "/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse"} {
		first := g.gpost(t, path, body)
		second := g.gpost(t, path, body)
		if first.status != 200 || second.status != 200 || first.header.Get("x-llmproc-cache") != "miss" || second.header.Get("x-llmproc-cache") != "hit" {
			t.Fatalf("%s: %d %v / %d %v\n%s", path, first.status, first.header, second.status, second.header, second.body)
		}
		text := func(b []byte) string {
			if !strings.Contains(path, "alt=sse") {
				return gjson.GetBytes(b, "candidates.0.content.parts.0.text").Str
			}
			var s strings.Builder
			for _, ev := range sseEvents(t, b) {
				s.WriteString(gjson.Get(ev, "candidates.0.content.parts.0.text").Str)
			}
			return s.String()
		}
		if text(first.body) != "Cached words." || text(second.body) != "Cached words." {
			t.Errorf("%s: %s\n%s", path, first.body, second.body)
		}
	}
	if n := len(g.openai.Requests()); n != 2 {
		t.Errorf("OpenAI got %d requests, want 2 (the hits never reach it)", n)
	}
	// 2 × (1000 at 0.15 + 1000 at 0.60 per million) = 0.0015 spent; the
	// next worst case does not fit 0.002.
	r := g.gpost(t, "/v1beta/models/gpt-4o-mini:generateContent", `{"contents":[{"parts":[{"text":"More"}]}],"generationConfig":{"maxOutputTokens":1000}}`)
	if r.status != 429 || gjson.GetBytes(r.body, "error.status").Str != "RESOURCE_EXHAUSTED" || !strings.Contains(gjson.GetBytes(r.body, "error.message").Str, "daily") {
		t.Errorf("over budget: %d %s", r.status, r.body)
	}
	input := map[string]string{"gen_ai_token_type": "input"}
	m := g.metricsWhen(t, func(m map[string][]sample) bool { return sum(m["gen_ai_client_token_usage"], input) == 2000 })
	if got := sum(m["gen_ai_client_token_usage"], input); got != 2000 {
		t.Errorf("input tokens %v", got)
	}
}

// TestGeminiClientEnvoyErrors: Envoy's own answers to a Gemini client are
// in Google's shape too: a pool whose backend refuses connections is
// exhausted, 503 UNAVAILABLE with its code (the rendered local-reply
// mapper for llmproc:client gemini).
func TestGeminiClientEnvoyErrors(t *testing.T) {
	g := startGeminiClient(t)
	g.gemini.Close()
	r := g.gpost(t, "/v1beta/models/gemini-2.5-flash:generateContent", geminiWeather)
	e := gjson.GetBytes(r.body, "error")
	if r.status != 503 || e.Get("code").Int() != 503 || e.Get("status").Str != "UNAVAILABLE" || !strings.Contains(e.Get("message").Str, `Pool "gemini" is exhausted`) {
		t.Errorf("%d %s", r.status, r.body)
	}
}

// TestGeminiClientEmbeddings: batchEmbedContents passes to a Gemini backend
// with each request's model made the pool member's, the answer as Gemini
// sent it, its promptTokenCount billed; to an OpenAI-first pool it is
// translated.
func TestGeminiClientEmbeddings(t *testing.T) {
	g := &geminiClientEnv{gemini: fakegemini.New(fakegemini.Options{Key: "gemini-secret",
		Default: fakegemini.Behaviour{Usage: fakegemini.Usage{Prompt: 9}}}), openai: fakeopenai.New(fakeopenai.Options{})}
	t.Cleanup(func() { g.gemini.Close(); g.openai.Close() })
	cfg := strings.Replace(fmt.Sprintf(geminiClientConfig, g.gemini.URL(), g.openai.URL()), "pools:\n",
		"  - {name: gemini-embedding-001, kind: embedding, pool: embed, price: {input: 0.15}}\n  - {name: text-embedding-3-small, kind: embedding, pool: oai-embed}\n"+
			"pools:\n  - {name: embed, backends: [{backend: gemini, model: embed-backend}]}\n  - {name: oai-embed, backends: [{backend: openai}]}\n", 1)
	st, accessLog, log := startStack(t, cfg, map[string]string{"GEMINI_KEY": "gemini-secret", "OPENAI_KEY": "sk-openai"})
	g.env = &env{Stack: st, accessLog: accessLog, log: log}
	const body = `{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"hello"}]}},{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"world"}]}}]}`
	r := g.gpost(t, "/v1beta/models/gemini-embedding-001:batchEmbedContents", body)
	if r.status != 200 || gjson.GetBytes(r.body, "embeddings.#").Int() != 2 || !gjson.GetBytes(r.body, "embeddings.0.values").IsArray() {
		t.Fatalf("%d %s", r.status, r.body)
	}
	got := g.gemini.Requests()[0]
	if got.Path != "/v1beta/models/embed-backend:batchEmbedContents" || gjson.GetBytes(got.Body, "requests.1.model").Str != "models/embed-backend" ||
		gjson.GetBytes(got.Body, "requests.0.content.parts.0.text").Str != "hello" {
		t.Errorf("the fake got %s\n%s", got.Path, got.Body)
	}
	line := gjson.Parse(accessLine(t, g.env, r.header.Get("x-llmproc-request-id")))
	if line.Get("prompt_tokens").Int() != 9 || line.Get("usage").Str != "known" || line.Get("client").Str != "gemini" {
		t.Errorf("access log %s", line.Raw)
	}
	// To OpenAI it is translated (TestGeminiClientEmbedTranslated).
	r = g.gpost(t, "/v1beta/models/text-embedding-3-small:embedContent", `{"content":{"parts":[{"text":"hi"}]}}`)
	if r.status != 200 || !gjson.GetBytes(r.body, "embedding.values").IsArray() || r.header.Get("x-llmproc-backend") != "openai" {
		t.Errorf("%d %s", r.status, r.body)
	}
}
