package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

const anthropicConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
  - name: claude
    schema: anthropic
    url: "%s"
    credential: {env: ANTHROPIC_KEY}
    anthropic: {max_tokens: 1024}
models:
  - {name: gpt-4o-mini, pool: mixed, price: {input: 0.15, output: 0.60, cached_input: 0.075}}
  - {name: claude-haiku-4-5, pool: claude-only, price: {input: 1.00, output: 5.00, cached_input: 0.10}}
pools:
  - name: mixed
    backends: [{backend: openai}, {backend: claude, model: claude-haiku-4-5}]
  - name: claude-only
    backends: [{backend: claude}]
`

// anthropicEnv is a stack with a pool of OpenAI (priority 0) and Anthropic
// (priority 1), and a pool of Anthropic alone.
type anthropicEnv struct {
	*env
	openai *fakeopenai.Server
	claude *fakeanthropic.Server
}

func startAnthropic(t *testing.T) *anthropicEnv {
	t.Helper()
	a := &anthropicEnv{
		openai: fakeopenai.New(fakeopenai.Options{}),
		claude: fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant-secret"}),
	}
	t.Cleanup(func() { a.openai.Close(); a.claude.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(anthropicConfig, a.openai.URL(), a.claude.URL()),
		map[string]string{"OPENAI_KEY": "sk-openai", "ANTHROPIC_KEY": "sk-ant-secret"})
	a.env = &env{Stack: st, accessLog: accessLog, log: log}
	return a
}

// anthropicLabels returns labels with k=v added.

// TestAnthropicFailover: OpenAI (priority 0) answers 503, Anthropic
// (priority 1) answers; the client gets an OpenAI answer, streamed and not,
// and usage and cost land in /metrics exactly.
func TestAnthropicFailover(t *testing.T) {
	a := startAnthropic(t)
	a.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	a.claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Content: "Hello from Claude",
			Usage: fakeanthropic.Usage{Input: 100, Output: 50, CacheRead: 1000, CacheWrite: 200}}
	})

	for _, stream := range []bool{false, true} {
		r := a.post(t, chat("gpt-4o-mini", stream, ""), "authorization", "Bearer client-secret", "x-api-key", "client-secret")
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: status %d err %v body %s", stream, r.status, r.err, r.body)
		}
		if b := r.header.Get("x-llmproc-backend"); b != "claude" {
			t.Errorf("x-llmproc-backend %q", b)
		}
		if m := r.header.Get("x-llmproc-model"); m != "claude-haiku-4-5" {
			t.Errorf("x-llmproc-model %q", m)
		}
		if !stream {
			if ct := r.header.Get("content-type"); ct != "application/json" {
				t.Errorf("content-type %q", ct)
			}
			if got := gjson.GetBytes(r.body, "object").String(); got != "chat.completion" {
				t.Errorf("object %q in %s", got, r.body)
			}
			if got := gjson.GetBytes(r.body, "choices.0.message.content").String(); got != "Hello from Claude" {
				t.Errorf("content %q in %s", got, r.body)
			}
			if got := gjson.GetBytes(r.body, "choices.0.finish_reason").String(); got != "stop" {
				t.Errorf("finish_reason %q", got)
			}
			u := gjson.GetBytes(r.body, "usage")
			if u.Get("prompt_tokens").Int() != 1300 || u.Get("completion_tokens").Int() != 50 || u.Get("prompt_tokens_details.cached_tokens").Int() != 1000 {
				t.Errorf("usage %s", u.Raw)
			}
			continue
		}
		if ct := r.header.Get("content-type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("content-type %q", ct)
		}
		events := sseEvents(t, r.body)
		if len(events) < 2 || events[len(events)-1] != "[DONE]" {
			t.Fatalf("stream does not end with [DONE]: %v", events)
		}
		if gjson.Get(events[0], "choices.0.delta.role").String() != "assistant" {
			t.Errorf("first chunk is not the role chunk: %s", events[0])
		}
		var text strings.Builder
		finish := ""
		for _, ev := range events[:len(events)-1] {
			if !gjson.Valid(ev) || gjson.Get(ev, "object").String() != "chat.completion.chunk" {
				t.Fatalf("not an OpenAI chunk: %q", ev)
			}
			if gjson.Get(ev, "usage.prompt_tokens").Exists() {
				t.Errorf("usage chunk reached a client that did not ask for it: %s", ev)
			}
			text.WriteString(gjson.Get(ev, "choices.0.delta.content").String())
			if f := gjson.Get(ev, "choices.0.finish_reason").String(); f != "" {
				finish = f
			}
		}
		if text.String() != "Hello from Claude" || finish != "stop" {
			t.Errorf("streamed text %q, finish_reason %q", text.String(), finish)
		}
	}

	reqs := a.claude.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests reached Anthropic, want 2", len(reqs))
	}
	for i, req := range reqs {
		if req.Path != "/v1/messages" {
			t.Errorf("request %d: path %q", i, req.Path)
		}
		if got := req.Header.Get("x-api-key"); got != "sk-ant-secret" {
			t.Errorf("request %d: x-api-key %q", i, got)
		}
		if got := req.Header.Get("anthropic-version"); got != "2023-06-01" {
			t.Errorf("request %d: anthropic-version %q", i, got)
		}
		if got := req.Header.Get("authorization"); got != "" {
			t.Errorf("request %d: authorization %q reached Anthropic", i, got)
		}
		body := req.Body
		if got := gjson.GetBytes(body, "model").String(); got != "claude-haiku-4-5" {
			t.Errorf("request %d: model %q", i, got)
		}
		if got := gjson.GetBytes(body, "max_tokens").Int(); got != 1024 {
			t.Errorf("request %d: max_tokens %d, want the backend's 1024", i, got)
		}
		if got, want := gjson.GetBytes(body, "stream").Bool(), i == 1; got != want {
			t.Errorf("request %d: stream %v", i, got)
		}
		if got := fakeanthropic.Text(body); got != "Say hello" {
			t.Errorf("request %d: text %q in %s", i, got, body)
		}
	}

	labels := map[string]string{"pool": "mixed", "backend": "claude", "model": "claude-haiku-4-5"}
	want := map[string]float64{"input": 2 * 1300, "output": 2 * 50, "cached_input": 2 * 1000, "cache_write": 2 * 200}
	// claude-haiku-4-5's own price applies: (300×1.00 + 1000×0.10 + 50×5.00)
	// USD per million (cache writes billed as input) = 650,000,000
	// pico-dollars a request.
	a.wantFailoverMetrics(t, labels, want, 2*650_000_000)
}

// TestAnthropicToolCalls: tools go to Anthropic as tools with input_schema,
// and its tool_use blocks come back as OpenAI tool_calls, streamed and not.
func TestAnthropicToolCalls(t *testing.T) {
	a := startAnthropic(t)
	a.claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Content: "Checking.", ToolUses: []fakeanthropic.ToolUse{
			{ID: "toolu_1", Name: "get_weather", Input: `{"city":"Paris"}`},
			{ID: "toolu_2", Name: "get_weather", Input: `{"city":"Oslo"}`},
		}, Usage: fakeanthropic.Usage{Input: 40, Output: 30}}
	})
	const tools = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"required",`
	for _, stream := range []bool{false, true} {
		r := a.post(t, chat("claude-haiku-4-5", stream, tools))
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: status %d err %v body %s", stream, r.status, r.err, r.body)
		}
		type call struct{ id, name, args string }
		var calls []call
		finish := ""
		if !stream {
			gjson.GetBytes(r.body, "choices.0.message.tool_calls").ForEach(func(_, c gjson.Result) bool {
				calls = append(calls, call{c.Get("id").String(), c.Get("function.name").String(), c.Get("function.arguments").String()})
				return true
			})
			finish = gjson.GetBytes(r.body, "choices.0.finish_reason").String()
		} else {
			events := sseEvents(t, r.body)
			if events[len(events)-1] != "[DONE]" {
				t.Fatalf("no [DONE]: %v", events)
			}
			for _, ev := range events[:len(events)-1] {
				gjson.Get(ev, "choices.0.delta.tool_calls").ForEach(func(_, c gjson.Result) bool {
					i := int(c.Get("index").Int())
					for len(calls) <= i {
						calls = append(calls, call{})
					}
					if id := c.Get("id").String(); id != "" {
						calls[i].id, calls[i].name = id, c.Get("function.name").String()
					}
					calls[i].args += c.Get("function.arguments").String()
					return true
				})
				if f := gjson.Get(ev, "choices.0.finish_reason").String(); f != "" {
					finish = f
				}
			}
		}
		want := []call{{"toolu_1", "get_weather", `{"city":"Paris"}`}, {"toolu_2", "get_weather", `{"city":"Oslo"}`}}
		if fmt.Sprint(calls) != fmt.Sprint(want) || finish != "tool_calls" {
			t.Errorf("stream=%v: tool calls %v finish %q, want %v tool_calls", stream, calls, finish, want)
		}
	}
	for i, req := range a.claude.Requests() {
		if got := gjson.GetBytes(req.Body, "tools.0.input_schema.properties.city.type").String(); got != "string" {
			t.Errorf("request %d: tools %s", i, gjson.GetBytes(req.Body, "tools").Raw)
		}
		if got := gjson.GetBytes(req.Body, "tool_choice.type").String(); got != "any" {
			t.Errorf("request %d: tool_choice %s", i, gjson.GetBytes(req.Body, "tool_choice").Raw)
		}
	}
}

// TestAnthropicThrottled: Anthropic's 429 reaches the client, when Anthropic
// is the only backend, as OpenAI's 429 rate_limit_exceeded inside the
// pool_exhausted error; its 529 overloaded becomes 503, which Envoy retries.
func TestAnthropicThrottled(t *testing.T) {
	a := startAnthropic(t)
	a.claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Status: 429, ErrorMessage: "Number of request tokens has exceeded your per-minute rate limit"}
	})
	r := a.post(t, chat("claude-haiku-4-5", false, ""))
	wantExhausted(t, r, 429, "rate_limit_exceeded", "per-minute rate limit")
	if got := gjson.GetBytes(r.body, "error.type").String(); got != "rate_limit_error" {
		t.Errorf("error.type %q in %s", got, r.body)
	}

	a.claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Status: 529}
	})
	before := len(a.claude.Requests())
	r = a.post(t, chat("claude-haiku-4-5", false, ""))
	wantExhausted(t, r, 503, "overloaded_error", "Overloaded")
	if n := len(a.claude.Requests()) - before; n != 3 {
		t.Errorf("%d attempts on 529, want 3 (503 is retried twice)", n)
	}
}

// TestAnthropicStreamError: an error event inside a 200 stream ends the
// client's stream with an OpenAI error event and no [DONE].
func TestAnthropicStreamError(t *testing.T) {
	a := startAnthropic(t)
	a.claude.Enqueue(fakeanthropic.Behaviour{Content: "partial answer", StreamError: "overloaded_error"})
	r := a.post(t, chat("claude-haiku-4-5", true, ""))
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	events := sseEvents(t, r.body)
	last := events[len(events)-1]
	if strings.Contains(string(r.body), "[DONE]") {
		t.Errorf("[DONE] after an error:\n%s", r.body)
	}
	if got := gjson.Get(last, "error.code").String(); got != "overloaded_error" {
		t.Errorf("last event %s, want an overloaded_error error event", last)
	}
}
