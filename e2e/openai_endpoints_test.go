package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// postPath posts body to path through the stack.
func (e *env) postPath(t *testing.T, path, body string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

// namedEvents parses a Responses stream: each event an "event:" line, a
// "data:" line and a blank line; it returns the events' data in order and
// fails when a name and its data's type differ.
func namedEvents(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for _, block := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		name, data, ok := strings.Cut(block, "\ndata: ")
		name, named := strings.CutPrefix(name, "event: ")
		if !ok || !named || !gjson.Valid(data) || gjson.Get(data, "type").Str != name {
			t.Fatalf("malformed event %q in\n%s", block, body)
		}
		out = append(out, data)
	}
	return out
}

// TestResponsesFailover: POST /v1/responses, JSON and streamed, reaches
// OpenAI as sent; when OpenAI answers 503 the attempt moves to Azure's v1
// Responses API with the deployment as the model, and the answer's usage
// (response.completed / the JSON usage) is priced and metered exactly.
func TestResponsesFailover(t *testing.T) {
	a := startAzure(t)
	a.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	u := fakeopenai.Usage{Prompt: 1234, Completion: 56, Cached: 1000, Reasoning: 7}
	a.azure.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: "Hello from Azure", Usage: u}
	})
	for _, stream := range []bool{false, true} {
		body := `{"model":"gpt-4o","input":[{"role":"developer","content":"Be brief."},{"role":"user","content":"Say hello"}],"store":false,"tools":[{"type":"function","name":"f","parameters":{}}],"stream":` + map[bool]string{false: "false", true: "true"}[stream] + `}`
		r := a.postPath(t, "/v1/responses", body, "authorization", "Bearer client-secret")
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: status %d err %v body %s", stream, r.status, r.err, r.body)
		}
		if b := r.header.Get("x-llmproc-backend"); b != "azure" {
			t.Errorf("x-llmproc-backend %q", b)
		}
		if !stream {
			if got := gjson.GetBytes(r.body, "output.0.content.0.text").Str; got != "Hello from Azure" || gjson.GetBytes(r.body, "object").Str != "response" {
				t.Errorf("answer %s", r.body)
			}
			continue
		}
		events := namedEvents(t, r.body)
		var text strings.Builder
		for i, ev := range events {
			if gjson.Get(ev, "sequence_number").Int() != int64(i) {
				t.Errorf("event %d: %s", i, ev)
			}
			if gjson.Get(ev, "type").Str == "response.output_text.delta" {
				text.WriteString(gjson.Get(ev, "delta").Str)
			}
		}
		if last := events[len(events)-1]; gjson.Get(last, "type").Str != "response.completed" || text.String() != "Hello from Azure" {
			t.Errorf("text %q, last event %s", text.String(), last)
		}
	}
	reqs := a.azure.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests reached Azure, want 2", len(reqs))
	}
	for i, req := range reqs {
		if req.Path != "/openai/v1/responses" || req.Header.Get("api-key") != "az-secret" || req.Header.Get("authorization") != "" {
			t.Errorf("Azure request %d: %s api-key %q authorization %q", i, req.Path, req.Header.Get("api-key"), req.Header.Get("authorization"))
		}
		if got := gjson.GetBytes(req.Body, "model").Str; got != "gpt4o-prod" {
			t.Errorf("Azure request %d: model %q, want the deployment", i, got)
		}
		if gjson.GetBytes(req.Body, "store").Raw != "false" || gjson.GetBytes(req.Body, "stream_options").Exists() {
			t.Errorf("Azure request %d: body %s", i, req.Body)
		}
	}
	if n := len(a.openai.Requests()); n < 2 || a.openai.Requests()[0].Path != "/v1/responses" {
		t.Errorf("%d OpenAI requests", n)
	}
	labels := map[string]string{"pool": "mixed", "backend": "azure", "model": "gpt4o-prod"}
	want := map[string]float64{"input": 2 * 1234, "output": 2 * 56, "cached_input": 2 * 1000, "reasoning": 2 * 7}
	// (234×2.50 + 1000×1.25 + 56×10.00) USD per million a request.
	a.wantFailoverMetrics(t, labels, want, 2*2_395_000_000)
}

// TestResponsesCutStream: a Responses stream cut before response.completed
// never reaches the client as complete: it ends with an error event in the
// Responses API's shape, or the client sees the transport cut.
func TestResponsesCutStream(t *testing.T) {
	a := startAzure(t)
	a.openai.Enqueue(fakeopenai.Behaviour{Content: "one two three four", CutAfter: 5})
	r := a.postPath(t, "/v1/responses", `{"model":"gpt-4o","input":"count","stream":true}`)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	body := string(r.body)
	if strings.Contains(body, "response.completed") {
		t.Fatalf("a cut stream reached the client as complete:\n%s", body)
	}
	if r.err == nil {
		events := namedEvents(t, r.body)
		if last := events[len(events)-1]; gjson.Get(last, "type").Str != "error" || gjson.Get(last, "code").Str != "stream_incomplete" {
			t.Errorf("last event %s", last)
		}
	}
}

// TestEmbeddingsAndCompletions: /v1/embeddings (a kind: embedding model)
// through Azure's deployment path (the second identical request a cache
// hit), /v1/completions (JSON and streamed)
// through OpenAI, each priced from its usage; the stream's usage chunk,
// which llmproc asked for, does not reach the client that did not. A chat
// model is refused on /v1/embeddings and the embedding model elsewhere.
func TestEmbeddingsAndCompletions(t *testing.T) {
	a := startAzure(t)
	a.azure.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 4000}}
	})
	a.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: "once upon a time", Usage: fakeopenai.Usage{Prompt: 10, Completion: 4}}
	})
	r := a.postPath(t, "/v1/embeddings", `{"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"float"}`)
	if r.status != 200 || len(gjson.GetBytes(r.body, "data").Array()) != 2 || gjson.GetBytes(r.body, "usage.prompt_tokens").Int() != 4000 {
		t.Fatalf("embeddings: %d %s", r.status, r.body)
	}
	if p := a.azure.Requests()[0].Path; p != "/openai/deployments/gpt4o-prod/embeddings?api-version=2024-10-21" {
		t.Errorf("Azure path %q", p)
	}
	// Embeddings are deterministic: the same request is answered from the
	// cache, byte for byte, without reaching Azure.
	again := a.postPath(t, "/v1/embeddings", `{"input":["a","b"],"model":"text-embedding-3-small","encoding_format":"float"}`)
	if again.status != 200 || again.header.Get("x-llmproc-cache") != "hit" || string(again.body) != string(r.body) {
		t.Errorf("second embeddings request: %d cache %q\n%s\nfirst\n%s", again.status, again.header.Get("x-llmproc-cache"), again.body, r.body)
	}
	if n := len(a.azure.Requests()); n != 1 {
		t.Errorf("%d requests reached Azure, want 1", n)
	}
	if r := a.postPath(t, "/v1/embeddings", `{"model":"gpt-4o","input":"a"}`); r.status != 400 || gjson.GetBytes(r.body, "error.code").Str != "model_kind_mismatch" {
		t.Errorf("chat model on /v1/embeddings: %d %s", r.status, r.body)
	}
	if r := a.postPath(t, "/v1/responses", `{"model":"text-embedding-3-small","input":"a"}`); r.status != 400 || gjson.GetBytes(r.body, "error.code").Str != "model_kind_mismatch" {
		t.Errorf("embedding model on /v1/responses: %d %s", r.status, r.body)
	}
	r = a.postPath(t, "/v1/completions", `{"model":"gpt-4o","prompt":"Once","max_tokens":8}`)
	if r.status != 200 || gjson.GetBytes(r.body, "choices.0.text").Str != "once upon a time" {
		t.Fatalf("completions: %d %s", r.status, r.body)
	}
	r = a.postPath(t, "/v1/completions", `{"model":"gpt-4o","prompt":"Once","stream":true}`)
	events := sseEvents(t, r.body)
	var text strings.Builder
	for _, ev := range events[:len(events)-1] {
		if gjson.Get(ev, "usage").Exists() {
			t.Errorf("usage chunk the client did not ask for: %s", ev)
		}
		text.WriteString(gjson.Get(ev, "choices.0.text").Str)
	}
	if events[len(events)-1] != "[DONE]" || text.String() != "once upon a time" {
		t.Errorf("stream %v", events)
	}
	if !gjson.GetBytes(a.openai.Requests()[1].Body, "stream_options.include_usage").Bool() {
		t.Errorf("llmproc did not ask for the stream's usage: %s", a.openai.Requests()[1].Body)
	}
	// Embeddings: 4000 input tokens at 0.02 USD per million; completions:
	// twice 10×2.50 + 4×10.00 USD per million.
	m := a.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_tokens_total"], map[string]string{"backend": "openai", "type": "output"}) == 8
	})
	if got := sum(m["gen_ai_client_token_usage"], map[string]string{"gen_ai_operation_name": "embeddings", "gen_ai_token_type": "input"}); got != 4000 {
		t.Errorf("gen_ai_client_token_usage{embeddings, input} sum = %v", got)
	}
	if got := sum(m["gen_ai_client_token_usage"], map[string]string{"gen_ai_operation_name": "text_completion", "gen_ai_token_type": "output"}); got != 8 {
		t.Errorf("gen_ai_client_token_usage{text_completion, output} sum = %v", got)
	}
	if got := sum(m["llmproc_cost_usd_total"], map[string]string{"backend": "azure"}); got != 4000*0.02/1e6 {
		t.Errorf("embeddings cost %v", got)
	}
	if got := sum(m["llmproc_cost_usd_total"], map[string]string{"backend": "openai"}); got != 2*(10*2.50+4*10.00)/1e6 {
		t.Errorf("completions cost %v", got)
	}
}

// TestResponsesBudgetSettles: Responses and embeddings answers settle the
// tenant's budget at their real cost: with 210 µ$ a request against a
// 500 µ$ budget, the fourth request is refused (estimates alone, about
// 65 µ$ each, would let it through).
func TestResponsesBudgetSettles(t *testing.T) {
	provider := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}})
	t.Cleanup(func() { provider.Close() })
	e := startBudget(t, provider, `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
budgets:
  - {name: daily, scope: tenant, window: day, limit_usd: "0.0005"}
budget_store: {tenant_header: x-tenant}
`)
	var codes []int
	for i := range 4 {
		body := `{"model":"gpt-4o-mini","input":"Count to three.","max_output_tokens":100,"stream":` + map[bool]string{false: "false", true: "true"}[i%2 == 1] + `}`
		r := e.postPath(t, "/v1/responses", body, "x-tenant", "team-a")
		codes = append(codes, r.status)
		if r.status == 429 {
			wantOpenAIError(t, r, 429, "budget_exceeded")
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 200 || codes[3] != 429 {
		t.Fatalf("statuses %v, want three 200 then a 429", codes)
	}
}
