package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakebedrock"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

const bedrockConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
  - {name: bedrock, schema: bedrock, url: "%s", credential: {env: BEDROCK_KEYS}, bedrock: {region: eu-central-1}}
models:
  - {name: claude-sonnet, pool: mixed, price: {input: 3.00, output: 15.00, cached_input: 0.30}}
  - {name: claude-bedrock, pool: bedrock-only, price: {input: 3.00, output: 15.00, cached_input: 0.30}}
pools:
  - name: mixed
    backends: [{backend: openai}, {backend: bedrock, model: "anthropic.claude-3-5-sonnet-20240620-v1:0"}]
  - name: bedrock-only
    backends: [{backend: bedrock, model: "anthropic.claude-3-5-sonnet-20240620-v1:0"}]
`

const bedrockModel = "anthropic.claude-3-5-sonnet-20240620-v1:0"

type bedrockEnv struct {
	*env
	openai  *fakeopenai.Server
	bedrock *fakebedrock.Server
}

func startBedrock(t *testing.T) *bedrockEnv {
	t.Helper()
	b := &bedrockEnv{openai: fakeopenai.New(fakeopenai.Options{})}
	// The signature covers the backend's authority (host:port) while
	// Envoy's auto_host_rewrite sends the endpoint hostname without the
	// port, so the fake checks the signature against its own address.
	b.bedrock = fakebedrock.New(fakebedrock.Options{AccessKeyID: "AKIDE2E", Secret: "e2e-secret", Region: "eu-central-1", HostIsAddr: true})
	t.Cleanup(func() { b.openai.Close(); b.bedrock.Close() })
	cfg := fmt.Sprintf(bedrockConfig, b.openai.URL(), b.bedrock.URL())
	st, accessLog, log := startStack(t, cfg, map[string]string{"OPENAI_KEY": "sk-openai", "BEDROCK_KEYS": "AKIDE2E:e2e-secret"})
	b.env = &env{Stack: st, accessLog: accessLog, log: log}
	return b
}

// TestBedrockFailover: OpenAI (priority 0) answers 503, Bedrock (priority
// 1) answers through Converse and ConverseStream; the client gets OpenAI
// answers, and usage (cache reads and writes included) and cost land in
// /metrics exactly.
func TestBedrockFailover(t *testing.T) {
	b := startBedrock(t)
	b.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	u := fakebedrock.Usage{Input: 100, Output: 20, CacheRead: 1000, CacheWrite: 200}
	b.bedrock.Script(func(fakebedrock.Request) fakebedrock.Behaviour {
		return fakebedrock.Behaviour{Content: "Hello from Bedrock", Usage: u}
	})

	for _, stream := range []bool{false, true} {
		r := b.post(t, chat("claude-sonnet", stream, ""), "authorization", "Bearer client-secret")
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: status %d err %v body %s", stream, r.status, r.err, r.body)
		}
		if got := r.header.Get("x-llmproc-backend"); got != "bedrock" {
			t.Errorf("x-llmproc-backend %q", got)
		}
		if got := r.header.Get("x-llmproc-model"); got != bedrockModel {
			t.Errorf("x-llmproc-model %q", got)
		}
		if !stream {
			if ct := r.header.Get("content-type"); ct != "application/json" {
				t.Errorf("content-type %q", ct)
			}
			if got := gjson.GetBytes(r.body, "choices.0.message.content").String(); got != "Hello from Bedrock" {
				t.Errorf("content %q in %s", got, r.body)
			}
			if got := gjson.GetBytes(r.body, "object").String(); got != "chat.completion" {
				t.Errorf("object %q", got)
			}
			if got := gjson.GetBytes(r.body, "usage.prompt_tokens").Int(); got != 1300 {
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
		finish := ""
		for _, ev := range events[:len(events)-1] {
			if !gjson.Valid(ev) {
				t.Fatalf("invalid JSON event %q", ev)
			}
			if gjson.Get(ev, "usage.prompt_tokens").Exists() {
				t.Errorf("usage chunk reached a client that did not ask for it: %s", ev)
			}
			text.WriteString(gjson.Get(ev, "choices.0.delta.content").String())
			if f := gjson.Get(ev, "choices.0.finish_reason"); f.Type == gjson.String {
				finish = f.Str
			}
		}
		if text.String() != "Hello from Bedrock" || finish != "stop" {
			t.Errorf("streamed text %q finish %q", text.String(), finish)
		}
	}

	reqs := b.bedrock.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests reached Bedrock, want 2", len(reqs))
	}
	for i, req := range reqs {
		op := "converse"
		if i == 1 {
			op = "converse-stream"
		}
		if want := "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/" + op; req.Path != want {
			t.Errorf("request %d: path %q, want %q", i, req.Path, want)
		}
		if got := gjson.GetBytes(req.Body, "messages.0.content.0.text").String(); got != "Say hello" {
			t.Errorf("request %d: body %s", i, req.Body)
		}
		if !strings.HasPrefix(req.Header.Get("authorization"), "AWS4-HMAC-SHA256 Credential=AKIDE2E/") {
			t.Errorf("request %d: authorization %q", i, req.Header.Get("authorization"))
		}
	}

	labels := map[string]string{"pool": "mixed", "backend": "bedrock", "model": bedrockModel}
	want := map[string]float64{"input": 2 * 1300, "output": 2 * 20, "cached_input": 2 * 1000, "cache_write": 2 * 200}
	// The Bedrock model id has no price of its own, so claude-sonnet's
	// applies: (300×3.00 + 1000×0.30 + 20×15.00) USD per million =
	// 1,500,000,000 pico-dollars a request.
	b.wantFailoverMetrics(t, labels, want, 2*1_500_000_000)
}

// TestBedrockThrottled: Bedrock's ThrottlingException (429) reaches the
// client, when Bedrock is the only backend, as OpenAI's 429 inside the
// pool_exhausted error.
func TestBedrockThrottled(t *testing.T) {
	b := startBedrock(t)
	b.bedrock.Script(func(fakebedrock.Request) fakebedrock.Behaviour {
		return fakebedrock.Behaviour{Status: 429, ErrorMessage: "Too many requests, please wait before trying again."}
	})
	for _, stream := range []bool{false, true} {
		r := b.post(t, chat("claude-bedrock", stream, ""))
		wantExhausted(t, r, 429, "rate_limit_exceeded", "Too many requests, please wait before trying again.")
		if got := gjson.GetBytes(r.body, "error.type").String(); got != "rate_limit_error" {
			t.Errorf("error.type %q in %s", got, r.body)
		}
	}
}

// TestBedrockStreamException: a throttlingException frame inside a 200
// stream ends the client's stream with an error event and no [DONE]; a tool
// call streamed before it arrives with its id, name and arguments.
func TestBedrockStreamException(t *testing.T) {
	b := startBedrock(t)
	b.bedrock.Enqueue(fakebedrock.Behaviour{Content: "Let me check.", Tool: &fakebedrock.ToolUse{ID: "tooluse_1", Name: "get_weather", Input: `{"city":"Paris"}`},
		Exception: "throttlingException"})
	r := b.post(t, chat("claude-bedrock", true, `"stream_options":{"include_usage":true},`))
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	events := sseEvents(t, r.body)
	if len(events) == 0 {
		t.Fatal("no events")
	}
	last := events[len(events)-1]
	if gjson.Get(last, "error.code").String() != "rate_limit_exceeded" {
		t.Errorf("last event %s, want a rate_limit_exceeded error", last)
	}
	var args strings.Builder
	var id, name string
	for _, ev := range events {
		if ev == "[DONE]" {
			t.Fatalf("[DONE] in a stream that ended with an exception:\n%s", r.body)
		}
		tc := gjson.Get(ev, "choices.0.delta.tool_calls.0")
		if tc.Exists() {
			if v := tc.Get("id").Str; v != "" {
				id, name = v, tc.Get("function.name").Str
			}
			args.WriteString(tc.Get("function.arguments").Str)
		}
	}
	if id != "tooluse_1" || name != "get_weather" || args.String() != `{"city":"Paris"}` {
		t.Errorf("tool call %q %q %q", id, name, args.String())
	}
}
