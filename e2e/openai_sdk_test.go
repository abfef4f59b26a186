package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// runSDK runs e2e/clients/<script> with args and returns the JSON object it
// printed.
func runSDK(t *testing.T, script string, args ...string) gjson.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := nodeScript(t, ctx, script, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s %v: %v\nstdout: %s\nstderr: %s", script, args, err, stdout.Bytes(), stderr.Bytes())
	}
	out := gjson.Parse(strings.TrimSpace(stdout.String()))
	if !out.IsObject() {
		t.Fatalf("node %s printed %s\nstderr: %s", script, stdout.Bytes(), stderr.Bytes())
	}
	return out
}

const sdkConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 4194304, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
cache: {mode: "off"}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
  - {name: claude, schema: anthropic, url: "%s", credential: {env: ANTHROPIC_KEY}}
models:
  - {name: gpt-sdk, pool: openai-first}
  - {name: claude-sdk, pool: claude}
pools:
  - {name: openai-first, backends: [{backend: openai, model: gpt-backend}, {backend: claude, model: claude-backend}]}
  - {name: claude, backends: [{backend: claude, model: claude-backend}]}
`

// TestOpenAISDKResponses drives the official OpenAI Node SDK's Responses
// API through llmproc, to an OpenAI backend (passed through) and to an
// Anthropic one (translated): JSON, streamed, a function tool round trip,
// previous_response_id across a failover from OpenAI to Anthropic (with
// retrieve and delete), and store: false.
func TestOpenAISDKResponses(t *testing.T) {
	oa, claude := fakeopenai.New(fakeopenai.Options{}), fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant"})
	t.Cleanup(func() { oa.Close(); claude.Close() })
	st, _, _ := startStack(t, fmt.Sprintf(sdkConfig, oa.URL(), claude.URL()), map[string]string{"OPENAI_KEY": "sk-openai", "ANTHROPIC_KEY": "sk-ant"})
	base := st.URL() + "/v1"

	for _, model := range []string{"gpt-sdk", "claude-sdk"} {
		t.Run("json/"+model, func(t *testing.T) {
			if model == "gpt-sdk" {
				oa.Enqueue(fakeopenai.Behaviour{Content: "Hello from OpenAI.", Usage: fakeopenai.Usage{Prompt: 12, Completion: 4}})
			} else {
				claude.Enqueue(fakeanthropic.Behaviour{Content: "Hello from Claude.", Usage: fakeanthropic.Usage{Input: 12, Output: 4}})
			}
			out := runSDK(t, "openai_responses.mjs", "json", base, model)
			want := map[string]string{"gpt-sdk": "Hello from OpenAI.", "claude-sdk": "Hello from Claude."}[model]
			if out.Get("text").Str != want || out.Get("status").Str != "completed" || out.Get("usage.input_tokens").Int() != 12 || out.Get("usage.output_tokens").Int() != 4 {
				t.Errorf("SDK saw %s", out.Raw)
			}
		})
		t.Run("stream/"+model, func(t *testing.T) {
			if model == "gpt-sdk" {
				oa.Enqueue(fakeopenai.Behaviour{Content: "Hello there, streamed.", Usage: fakeopenai.Usage{Prompt: 5, Completion: 3}})
			} else {
				claude.Enqueue(fakeanthropic.Behaviour{Content: "Hello there, streamed.", Usage: fakeanthropic.Usage{Input: 5, Output: 3}})
			}
			out := runSDK(t, "openai_responses.mjs", "stream", base, model)
			types := out.Get("types").Array()
			if out.Get("text").Str != "Hello there, streamed." || len(types) < 4 || types[0].Str != "response.created" || types[len(types)-1].Str != "response.completed" || out.Get("usage.output_tokens").Int() != 3 {
				t.Errorf("SDK saw %s", out.Raw)
			}
		})
	}

	t.Run("tools", func(t *testing.T) {
		claude.Turns(
			func([]fake.ToolResult) fakeanthropic.Behaviour {
				return fakeanthropic.Behaviour{ToolUses: []fakeanthropic.ToolUse{{ID: "toolu_w1", Name: "get_weather", Input: `{"city":"Paris"}`}}}
			},
			func(rs []fake.ToolResult) fakeanthropic.Behaviour {
				return fakeanthropic.Behaviour{Content: "Paris: " + rs[0].Output}
			},
		)
		defer claude.Script(nil)
		n := len(claude.Requests())
		out := runSDK(t, "openai_responses.mjs", "tools", base, "claude-sdk")
		if out.Get("call.name").Str != "get_weather" || out.Get("call.call_id").Str != "toolu_w1" || out.Get("call.arguments").Str != `{"city":"Paris"}` || out.Get("text").Str != "Paris: sunny, 24°C" {
			t.Errorf("SDK saw %s", out.Raw)
		}
		got := claude.Requests()[n:]
		if len(got) != 2 || !gjson.GetBytes(got[0].Body, `tools.#(name=="get_weather")`).Exists() {
			t.Fatalf("Anthropic got %d requests", len(got))
		}
		if rs := fakeanthropic.ToolResults(got[1]); len(rs) != 1 || rs[0].CallID != "toolu_w1" || rs[0].Output != "sunny, 24°C" {
			t.Errorf("Anthropic got the tool results %+v", rs)
		}
	})

	t.Run("previous across a failover", func(t *testing.T) {
		oa.Enqueue(fakeopenai.Behaviour{Content: "Nice to meet you, Ada."}, fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"})
		claude.Enqueue(fakeanthropic.Behaviour{Content: "Your name is Ada."})
		n := len(claude.Requests())
		out := runSDK(t, "openai_responses.mjs", "previous", base, "gpt-sdk")
		if out.Get("text").Str != "Your name is Ada." || out.Get("retrieved").Str != out.Get("second").Str || out.Get("retrievedText").Str != "Your name is Ada." ||
			!strings.HasPrefix(out.Get("first").Str, "resp_fake") || out.Get("afterDelete").Int() != 404 {
			t.Errorf("SDK saw %s", out.Raw)
		}
		got := claude.Requests()[n:]
		if len(got) != 1 {
			t.Fatalf("Anthropic got %d requests", len(got))
		}
		if text := fakeanthropic.Text(got[0].Body); !strings.Contains(text, "My name is Ada.") || !strings.Contains(text, "What is my name?") ||
			!strings.Contains(string(got[0].Body), "Nice to meet you, Ada.") {
			t.Errorf("Anthropic did not get the whole conversation:\n%s", got[0].Body)
		}
	})

	t.Run("store false", func(t *testing.T) {
		oa.Enqueue(fakeopenai.Behaviour{Content: "Forgotten."})
		out := runSDK(t, "openai_responses.mjs", "store", base, "gpt-sdk")
		if out.Get("text").Str != "Forgotten." || out.Get("retrieve").Int() != 404 {
			t.Errorf("SDK saw %s", out.Raw)
		}
		if last := oa.Requests()[len(oa.Requests())-1]; gjson.GetBytes(last.Body, "store").Type != gjson.False {
			t.Errorf("OpenAI did not get store: false:\n%s", last.Body)
		}
	})
}
