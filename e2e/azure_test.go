package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeazure"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

const azureConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
  - {name: azure, schema: azure-openai, url: "%s", credential: {env: AZURE_KEY}}
  - name: azure-entra
    schema: azure-openai
    url: "%s/tenant-a"
    credential: {env: AZURE_TOKEN}
    azure: {auth: bearer, api_version: "2025-04-01-preview"}
  - name: vllm
    schema: openai-compatible
    url: "%s"
    compat: {stream_options: false, max_tokens_field: max_tokens}
    drop_params: [seed]
models:
  - {name: gpt-4o, pool: mixed, price: {input: 2.50, output: 10.00, cached_input: 1.25}}
  - {name: gpt-4o-azure, pool: azure-only, price: {input: 2.50, output: 10.00, cached_input: 1.25}}
  - {name: gpt-4o-entra, pool: entra, price: {input: 2.50, output: 10.00, cached_input: 1.25}}
  - {name: llama, pool: local, price: {input: 0.10, output: 0.20}}
  - {name: text-embedding-3-small, kind: embedding, pool: azure-only, price: {input: 0.02}}
pools:
  - name: mixed
    backends: [{backend: openai}, {backend: azure, model: gpt4o-prod}]
  - name: azure-only
    backends: [{backend: azure, model: gpt4o-prod}]
  - name: entra
    backends: [{backend: azure-entra, model: gpt4o-eu}]
  - name: local
    backends: [{backend: vllm}]
`

// azureEnv is a stack whose pools mix OpenAI, Azure OpenAI and an
// OpenAI-compatible server with quirks.
type azureEnv struct {
	*env
	openai *fakeopenai.Server
	azure  *fakeazure.Server // api-key auth
	entra  *fakeazure.Server // bearer auth, under a base path
	vllm   *fakeopenai.Server
}

func startAzure(t *testing.T) *azureEnv {
	t.Helper()
	a := &azureEnv{
		openai: fakeopenai.New(fakeopenai.Options{}),
		azure:  fakeazure.New(fakeazure.Options{Key: "az-secret"}),
		entra:  fakeazure.New(fakeazure.Options{Key: "entra-token", BasePath: "/tenant-a"}),
		vllm:   fakeopenai.New(fakeopenai.Options{}),
	}
	t.Cleanup(func() { a.openai.Close(); a.azure.Close(); a.entra.Close(); a.vllm.Close() })
	cfg := fmt.Sprintf(azureConfig, a.openai.URL(), a.azure.URL(), a.entra.URL(), a.vllm.URL())
	st, accessLog, log := startStack(t, cfg, map[string]string{"OPENAI_KEY": "sk-openai", "AZURE_KEY": "az-secret", "AZURE_TOKEN": "entra-token"})
	a.env = &env{Stack: st, accessLog: accessLog, log: log}
	return a
}

// TestAzureFailover: OpenAI (priority 0) answers 503, Azure (priority 1)
// answers; the client gets an OpenAI answer, streamed and not, and usage and
// cost land in /metrics exactly.
func TestAzureFailover(t *testing.T) {
	a := startAzure(t)
	a.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	u := fakeopenai.Usage{Prompt: 1234, Completion: 56, Cached: 1000, Reasoning: 7}
	a.azure.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: "Hello from Azure", Usage: u}
	})

	for _, stream := range []bool{false, true} {
		r := a.post(t, chat("gpt-4o", stream, ""), "authorization", "Bearer client-secret", "api-key", "client-secret")
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: status %d err %v body %s", stream, r.status, r.err, r.body)
		}
		if b := r.header.Get("x-llmproc-backend"); b != "azure" {
			t.Errorf("x-llmproc-backend %q", b)
		}
		if m := r.header.Get("x-llmproc-model"); m != "gpt4o-prod" {
			t.Errorf("x-llmproc-model %q", m)
		}
		if !stream {
			if got := gjson.GetBytes(r.body, "choices.0.message.content").String(); got != "Hello from Azure" {
				t.Errorf("content %q in %s", got, r.body)
			}
			if got := gjson.GetBytes(r.body, "object").String(); got != "chat.completion" {
				t.Errorf("object %q", got)
			}
			if got := gjson.GetBytes(r.body, "usage.prompt_tokens").Int(); got != 1234 {
				t.Errorf("usage %s", gjson.GetBytes(r.body, "usage").Raw)
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
		for _, ev := range events[:len(events)-1] {
			if !gjson.Valid(ev) {
				t.Fatalf("invalid JSON event %q", ev)
			}
			if gjson.Get(ev, "usage.prompt_tokens").Exists() {
				t.Errorf("usage chunk reached a client that did not ask for it: %s", ev)
			}
			text.WriteString(gjson.Get(ev, "choices.0.delta.content").String())
		}
		if text.String() != "Hello from Azure" {
			t.Errorf("streamed text %q", text.String())
		}
	}

	reqs := a.azure.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests reached Azure, want 2", len(reqs))
	}
	for i, req := range reqs {
		if want := "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"; req.Path != want {
			t.Errorf("Azure request %d: path %q, want %q", i, req.Path, want)
		}
		if got := req.Header.Get("api-key"); got != "az-secret" {
			t.Errorf("Azure request %d: api-key %q", i, got)
		}
		if got := req.Header.Get("authorization"); got != "" {
			t.Errorf("Azure request %d: authorization %q reached Azure", i, got)
		}
		if got := gjson.GetBytes(req.Body, "model").String(); got != "gpt-4o" {
			t.Errorf("Azure request %d: model %q, want the client's", i, got)
		}
		stream := gjson.GetBytes(req.Body, "stream").Bool()
		if got := gjson.GetBytes(req.Body, "stream_options.include_usage").Bool(); got != stream {
			t.Errorf("Azure request %d (stream=%v): include_usage %v", i, stream, got)
		}
	}

	labels := map[string]string{"pool": "mixed", "backend": "azure", "model": "gpt4o-prod"}
	want := map[string]float64{"input": 2 * 1234, "output": 2 * 56, "cached_input": 2 * 1000, "reasoning": 2 * 7}
	// gpt4o-prod has no price of its own, so the requested gpt-4o's applies:
	// (234×2.50 + 1000×1.25 + 56×10.00) USD per million = 2,395,000,000
	// pico-dollars a request.
	a.wantFailoverMetrics(t, labels, want, 2*2_395_000_000)
}

// TestAzureThrottled: Azure's 429 (its own error shape, retry-after and
// retry-after-ms) reaches the client, when Azure is the only backend, as
// OpenAI's 429 rate_limit_exceeded inside the pool_exhausted error.
func TestAzureThrottled(t *testing.T) {
	a := startAzure(t)
	const body = `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second."}}`
	a.azure.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 429, Body: []byte(body),
			Header: http.Header{"Retry-After": {"1"}, "Retry-After-Ms": {"800"}}}
	})
	r := a.post(t, chat("gpt-4o-azure", false, ""))
	wantExhausted(t, r, 429, "rate_limit_exceeded", "Please retry after 1 second.")
	if got := gjson.GetBytes(r.body, "error.type").String(); got != "rate_limit_error" {
		t.Errorf("error.type %q in %s", got, r.body)
	}
	if r.header.Get("retry-after") != "1" || r.header.Get("retry-after-ms") != "800" {
		t.Errorf("retry-after %q, retry-after-ms %q", r.header.Get("retry-after"), r.header.Get("retry-after-ms"))
	}
	if n := len(a.azure.Requests()); n < 1 {
		t.Errorf("%d requests reached Azure", n)
	}
}

// TestAzureContentFilter: a prompt Azure's content filter refuses is a 400
// with code content_filter, Azure's verdicts kept, and is not retried.
func TestAzureContentFilter(t *testing.T) {
	a := startAzure(t)
	const body = `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"violence":{"filtered":true,"severity":"medium"}}}}}`
	a.azure.Enqueue(fakeopenai.Behaviour{Status: 400, Body: []byte(body)})
	r := a.post(t, chat("gpt-4o-azure", true, ""))
	wantOpenAIError(t, r, 400, "content_filter")
	if got := gjson.GetBytes(r.body, "error.type").String(); got != "invalid_request_error" {
		t.Errorf("error.type %q", got)
	}
	if !gjson.GetBytes(r.body, "error.innererror.content_filter_result.violence.filtered").Bool() {
		t.Errorf("Azure's verdicts lost: %s", r.body)
	}
	if n := len(a.azure.Requests()); n != 1 {
		t.Errorf("%d requests reached Azure, want 1 (a 400 is not retried)", n)
	}
}

// TestAzureBearer: an Entra ID token goes in Authorization, the base path
// and api-version come from the backend, and a preview api-version still
// gets include_usage.
func TestAzureBearer(t *testing.T) {
	a := startAzure(t)
	a.entra.Enqueue(fakeopenai.Behaviour{Content: "hi", Usage: fakeopenai.Usage{Prompt: 5, Completion: 1}})
	r := a.post(t, chat("gpt-4o-entra", true, ""), "api-key", "client-secret")
	if r.status != 200 || r.err != nil {
		t.Fatalf("status %d err %v body %s", r.status, r.err, r.body)
	}
	reqs := a.entra.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests reached Azure", len(reqs))
	}
	req := reqs[0]
	if want := "/tenant-a/openai/deployments/gpt4o-eu/chat/completions?api-version=2025-04-01-preview"; req.Path != want {
		t.Errorf("path %q, want %q", req.Path, want)
	}
	if got := req.Header.Get("authorization"); got != "Bearer entra-token" {
		t.Errorf("authorization %q", got)
	}
	if got := req.Header.Get("api-key"); got != "" {
		t.Errorf("client's api-key %q reached Azure", got)
	}
	if !gjson.GetBytes(req.Body, "stream_options.include_usage").Bool() {
		t.Errorf("no include_usage: %s", req.Body)
	}
}

// TestCompatQuirks: a server that rejects stream_options gets none, its
// max_tokens field and without the dropped seed; its stream then carries no
// usage, which llmproc records as unknown rather than as zero tokens.
func TestCompatQuirks(t *testing.T) {
	a := startAzure(t)
	a.vllm.Enqueue(fakeopenai.Behaviour{Content: "one two", Usage: fakeopenai.Usage{Prompt: 9, Completion: 2}})
	r := a.post(t, chat("llama", true, `"stream_options":{"include_usage":true},"seed":3,"max_completion_tokens":64,`))
	if r.status != 200 || r.err != nil {
		t.Fatalf("status %d err %v body %s", r.status, r.err, r.body)
	}
	events := sseEvents(t, r.body)
	if len(events) == 0 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %v", events)
	}
	reqs := a.vllm.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests reached the server", len(reqs))
	}
	body := reqs[0].Body
	for _, absent := range []string{"stream_options", "seed", "max_completion_tokens"} {
		if gjson.GetBytes(body, absent).Exists() {
			t.Errorf("%s sent: %s", absent, body)
		}
	}
	if got := gjson.GetBytes(body, "max_tokens").Int(); got != 64 {
		t.Errorf("max_tokens %d: %s", got, body)
	}
	backend := map[string]string{"pool": "local", "backend": "vllm"}
	m := a.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_requests_total"], withLabel(backend, "status_class", "2xx")) == 1
	})
	if got := sum(m["llmproc_usage_unknown_total"], backend); got != 1 {
		t.Errorf("llmproc_usage_unknown_total = %v, want 1", got)
	}
	if got := sum(m["llmproc_tokens_total"], backend); got != 0 {
		t.Errorf("llmproc_tokens_total = %v for an answer without usage", got)
	}
}
