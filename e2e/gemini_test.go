package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakegemini"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

const geminiConfig = `
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
    credential: {env: VERTEX_KEY}
    vertex: {project: my-proj, region: europe-west4}
models:
  - {name: gpt-4o-mini, pool: mixed, price: {input: 0.15, output: 0.60, cached_input: 0.075}}
  - {name: gemini-2.5-flash, pool: gemini-only, price: {input: 0.30, output: 2.50, cached_input: 0.075}}
  - {name: gemini-2.5-pro, pool: vertex-only, price: {input: 1.25, output: 10.00}}
pools:
  - name: mixed
    backends: [{backend: openai}, {backend: gemini, model: gemini-2.5-flash}]
  - name: gemini-only
    backends: [{backend: gemini}]
  - name: vertex-only
    backends: [{backend: vertex}]
`

// geminiEnv is a stack whose pools mix OpenAI with Gemini on AI Studio, and
// serve Gemini on Vertex AI with a service-account key.
type geminiEnv struct {
	*env
	openai       *fakeopenai.Server
	gemini       *fakegemini.Server // API key gemini-secret
	vertex       *fakegemini.Server // bearer token from the fake token endpoint
	tokenFetches *atomic.Int32
}

func startGemini(t *testing.T) *geminiEnv {
	t.Helper()
	key, fetches := vertexKey(t, "ya29.e2e-token")
	g := &geminiEnv{
		openai:       fakeopenai.New(fakeopenai.Options{}),
		gemini:       fakegemini.New(fakegemini.Options{Key: "gemini-secret"}),
		vertex:       fakegemini.New(fakegemini.Options{Bearer: "ya29.e2e-token"}),
		tokenFetches: fetches,
	}
	t.Cleanup(func() { g.openai.Close(); g.gemini.Close(); g.vertex.Close() })
	cfg := fmt.Sprintf(geminiConfig, g.openai.URL(), g.gemini.URL(), g.vertex.URL())
	st, accessLog, log := startStack(t, cfg, map[string]string{"OPENAI_KEY": "sk-openai", "GEMINI_KEY": "gemini-secret", "VERTEX_KEY": key})
	g.env = &env{Stack: st, accessLog: accessLog, log: log}
	return g
}

// vertexKey makes a service-account key whose token_uri is a fake token
// endpoint handing out token; it returns the key and the fetch counter.
func vertexKey(t *testing.T, token string) (string, *atomic.Int32) {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.FormValue("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.FormValue("assertion") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("content-type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, token)
	}))
	t.Cleanup(srv.Close)
	js, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "my-proj", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "llmproc@my-proj.iam.gserviceaccount.com", "token_uri": srv.URL + "/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(js), &fetches
}

// TestGeminiFailover: OpenAI (priority 0) answers 503, Gemini (priority 1)
// answers; the client gets an OpenAI answer, streamed and not, and usage and
// cost land in /metrics exactly.
func TestGeminiFailover(t *testing.T) {
	g := startGemini(t)
	g.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	u := fakegemini.Usage{Prompt: 1234, Candidates: 50, Cached: 1000, Thoughts: 6}
	g.gemini.Script(func(fakegemini.Request) fakegemini.Behaviour {
		return fakegemini.Behaviour{Text: "Hello from Gemini", Usage: u}
	})

	for _, stream := range []bool{false, true} {
		r := g.post(t, chat("gpt-4o-mini", stream, `"temperature":0.5,`), "authorization", "Bearer client-secret")
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: status %d err %v body %s", stream, r.status, r.err, r.body)
		}
		if b := r.header.Get("x-llmproc-backend"); b != "gemini" {
			t.Errorf("x-llmproc-backend %q", b)
		}
		if m := r.header.Get("x-llmproc-model"); m != "gemini-2.5-flash" {
			t.Errorf("x-llmproc-model %q", m)
		}
		if !stream {
			if ct := r.header.Get("content-type"); ct != "application/json" {
				t.Errorf("content-type %q", ct)
			}
			if got := gjson.GetBytes(r.body, "choices.0.message.content").String(); got != "Hello from Gemini" {
				t.Errorf("content %q in %s", got, r.body)
			}
			if got := gjson.GetBytes(r.body, "object").String(); got != "chat.completion" {
				t.Errorf("object %q", got)
			}
			if got := gjson.GetBytes(r.body, "choices.0.finish_reason").String(); got != "stop" {
				t.Errorf("finish_reason %q", got)
			}
			want := `{"prompt_tokens":1234,"completion_tokens":56,"total_tokens":1290,"prompt_tokens_details":{"cached_tokens":1000,"cache_write_tokens":0},"completion_tokens_details":{"reasoning_tokens":6}}`
			if got := gjson.GetBytes(r.body, "usage").Raw; got != want {
				t.Errorf("usage %s, want %s", got, want)
			}
			continue
		}
		if ct := r.header.Get("content-type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("content-type %q", ct)
		}
		events := sseEvents(t, r.body)
		if len(events) == 0 || events[len(events)-1] != "[DONE]" {
			t.Fatalf("stream does not end with [DONE]: %v", events)
		}
		var text strings.Builder
		finish := ""
		for _, ev := range events[:len(events)-1] {
			if !gjson.Valid(ev) {
				t.Fatalf("invalid JSON event %q", ev)
			}
			if gjson.Get(ev, "usage.prompt_tokens").Exists() {
				t.Errorf("usage chunk reached a client that did not ask for it: %s", ev)
			}
			text.WriteString(gjson.Get(ev, "choices.0.delta.content").String())
			if f := gjson.Get(ev, "choices.0.finish_reason").Str; f != "" {
				finish = f
			}
		}
		if text.String() != "Hello from Gemini" || finish != "stop" {
			t.Errorf("streamed text %q, finish %q", text.String(), finish)
		}
	}

	reqs := g.gemini.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests reached Gemini, want 2", len(reqs))
	}
	for i, req := range reqs {
		want := "/v1beta/models/gemini-2.5-flash:generateContent"
		if i == 1 {
			want = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
		}
		if req.Path != want {
			t.Errorf("Gemini request %d: path %q, want %q", i, req.Path, want)
		}
		if got := req.Header.Get("x-goog-api-key"); got != "gemini-secret" {
			t.Errorf("Gemini request %d: x-goog-api-key %q", i, got)
		}
		if got := req.Header.Get("authorization"); got != "" {
			t.Errorf("Gemini request %d: authorization %q reached Gemini", i, got)
		}
		if got := gjson.GetBytes(req.Body, "contents.0.parts.0.text").String(); got != "Say hello" {
			t.Errorf("Gemini request %d: body %s", i, req.Body)
		}
		if got := gjson.GetBytes(req.Body, "generationConfig.temperature").Float(); got != 0.5 {
			t.Errorf("Gemini request %d: temperature %v", i, got)
		}
	}

	labels := map[string]string{"pool": "mixed", "backend": "gemini", "model": "gemini-2.5-flash"}
	want := map[string]float64{"input": 2 * 1234, "output": 2 * 56, "cached_input": 2 * 1000, "reasoning": 2 * 6}
	// gemini-2.5-flash's own price: (234×0.30 + 1000×0.075 + 56×2.50) USD
	// per million = 285,200,000 pico-dollars a request.
	g.wantFailoverMetrics(t, labels, want, 2*285_200_000)
}

// TestGeminiThrottled: Gemini alone in its pool answers RESOURCE_EXHAUSTED;
// the client gets OpenAI's 429 inside the pool_exhausted error, streamed
// request or not.
func TestGeminiThrottled(t *testing.T) {
	g := startGemini(t)
	g.gemini.Script(func(fakegemini.Request) fakegemini.Behaviour {
		return fakegemini.Behaviour{Status: 429, ErrorStatus: "RESOURCE_EXHAUSTED", ErrorMessage: "Resource has been exhausted (e.g. check quota)."}
	})
	for _, stream := range []bool{false, true} {
		r := g.post(t, chat("gemini-2.5-flash", stream, ""))
		wantExhausted(t, r, 429, "rate_limit_exceeded", "Resource has been exhausted (e.g. check quota).")
		if got := gjson.GetBytes(r.body, "error.type").String(); got != "rate_limit_error" {
			t.Errorf("error.type %q", got)
		}
	}
}

// TestGeminiStreamError: an error event inside Gemini's 200 stream ends the
// client's stream with an OpenAI error event and no [DONE].
func TestGeminiStreamError(t *testing.T) {
	g := startGemini(t)
	g.gemini.Enqueue(fakegemini.Behaviour{Text: "one two three", StreamError: "UNAVAILABLE"})
	r := g.post(t, chat("gemini-2.5-flash", true, ""))
	if r.status != 200 {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	events := sseEvents(t, r.body)
	last := events[len(events)-1]
	if last == "[DONE]" || !gjson.Get(last, "error.message").Exists() {
		t.Fatalf("stream does not end with an error event: %v", events)
	}
	for _, ev := range events {
		if ev == "[DONE]" {
			t.Errorf("[DONE] in a failed stream: %v", events)
		}
	}
}

// TestVertexServiceAccount: a Vertex backend whose credential is a
// service-account key gets one token from the key's token endpoint and
// sends it as a bearer token on every request; a tool call comes back as
// an OpenAI tool call.
func TestVertexServiceAccount(t *testing.T) {
	g := startGemini(t)
	g.vertex.Script(func(fakegemini.Request) fakegemini.Behaviour {
		return fakegemini.Behaviour{Calls: []fakegemini.FunctionCall{{Name: "lookup", Args: map[string]any{"id": 7}}}, Usage: fakegemini.Usage{Prompt: 40, Candidates: 9}}
	})
	tools := `"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"id":{"type":"integer"}},"additionalProperties":false}}}],`
	for _, stream := range []bool{false, true} {
		r := g.post(t, chat("gemini-2.5-pro", stream, tools), "authorization", "Bearer client-secret")
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: status %d err %v body %s", stream, r.status, r.err, r.body)
		}
		if b := r.header.Get("x-llmproc-backend"); b != "vertex" {
			t.Errorf("x-llmproc-backend %q", b)
		}
		var name, args, finish string
		if !stream {
			name = gjson.GetBytes(r.body, "choices.0.message.tool_calls.0.function.name").Str
			args = gjson.GetBytes(r.body, "choices.0.message.tool_calls.0.function.arguments").Str
			finish = gjson.GetBytes(r.body, "choices.0.finish_reason").Str
		} else {
			events := sseEvents(t, r.body)
			if events[len(events)-1] != "[DONE]" {
				t.Fatalf("stream does not end with [DONE]: %v", events)
			}
			for _, ev := range events[:len(events)-1] {
				name += gjson.Get(ev, "choices.0.delta.tool_calls.0.function.name").Str
				args += gjson.Get(ev, "choices.0.delta.tool_calls.0.function.arguments").Str
				if f := gjson.Get(ev, "choices.0.finish_reason").Str; f != "" {
					finish = f
				}
			}
		}
		if name != "lookup" || args != `{"id":7}` || finish != "tool_calls" {
			t.Errorf("stream=%v: tool call %q(%s), finish %q in %s", stream, name, args, finish, r.body)
		}
	}
	reqs := g.vertex.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests reached Vertex, want 2", len(reqs))
	}
	for i, req := range reqs {
		if req.Project != "my-proj" || req.Location != "europe-west4" || req.Model != "gemini-2.5-pro" {
			t.Errorf("Vertex request %d: path %q", i, req.Path)
		}
		if got := req.Header.Get("authorization"); got != "Bearer ya29.e2e-token" {
			t.Errorf("Vertex request %d: authorization %q", i, got)
		}
		if strings.Contains(string(req.Body), "additionalProperties") {
			t.Errorf("Vertex request %d: unsupported schema keys sent: %s", i, req.Body)
		}
	}
	if n := g.tokenFetches.Load(); n != 1 {
		t.Errorf("%d token fetches, want 1", n)
	}
}
