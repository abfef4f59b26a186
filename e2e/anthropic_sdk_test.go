package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakeanthropic"
)

// TestAnthropicSDK drives the official TypeScript SDK (@anthropic-ai/sdk,
// e2e/clients/anthropic_sdk.mjs) through llmproc to an Anthropic backend: a
// streamed turn with thinking and a tool, whose thinking block (with its
// signature) and tool_use the SDK assembles from llmproc's stream; the
// second turn sends them back, and Anthropic gets the signed thinking block
// unchanged with the tool result; countTokens is Anthropic's count.
func TestAnthropicSDK(t *testing.T) {
	clientsPrefix(t)
	claude := fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant-backend"})
	t.Cleanup(func() { claude.Close() })
	claude.Turns(
		func([]fake.ToolResult) fakeanthropic.Behaviour {
			return fakeanthropic.Behaviour{Thinking: "Paris: ask the weather tool.",
				ToolUses: []fakeanthropic.ToolUse{{ID: "toolu_sdk1", Name: "get_weather", Input: `{"city":"Paris"}`}},
				Usage:    fakeanthropic.Usage{Input: 30, Output: 12}}
		},
		func(rs []fake.ToolResult) fakeanthropic.Behaviour {
			return fakeanthropic.Behaviour{Content: "It is " + rs[0].Output + " in Paris.", Usage: fakeanthropic.Usage{Input: 50, Output: 8}}
		})
	st, accessLog, log := startStack(t, fmt.Sprintf(claudeCodeConfig, claude.URL()), map[string]string{"ANTHROPIC_KEY": "sk-ant-backend"})
	e := &env{Stack: st, accessLog: accessLog, log: log}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := nodeScript(t, ctx, "anthropic_sdk.mjs", e.URL(), "claude-sonnet-4-5", "sk-llmproc-client")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("anthropic_sdk.mjs: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	r := gjson.ParseBytes(out)
	first, second := r.Get("first"), r.Get("second")
	if first.Get("content.0.type").Str != "thinking" || first.Get("content.0.thinking").Str != "Paris: ask the weather tool." ||
		first.Get("content.0.signature").Str != "sig-fake" || first.Get("content.1.type").Str != "tool_use" ||
		first.Get("content.1.input.city").Str != "Paris" || first.Get("stop_reason").Str != "tool_use" || first.Get("usage.output_tokens").Int() != 12 {
		t.Errorf("the streamed first turn as the SDK assembled it: %s", first.Raw)
	}
	if r.Get(`events.#(=="content_block_delta")`).Str == "" || r.Get("events.0").Str != "message_start" {
		t.Errorf("stream events %s", r.Get("events").Raw)
	}
	if second.Get("content.0.text").Str != "It is sunny in Paris." {
		t.Errorf("second turn: %s", second.Raw)
	}

	reqs := claude.Requests()
	if len(reqs) != 3 {
		t.Fatalf("Anthropic got %d requests", len(reqs))
	}
	turn2 := gjson.ParseBytes(reqs[1].Body)
	echoed := turn2.Get("messages.1.content.0")
	if echoed.Get("type").Str != "thinking" || echoed.Get("signature").Str != "sig-fake" || echoed.Get("thinking").Str != "Paris: ask the weather tool." ||
		turn2.Get("messages.2.content.0.tool_use_id").Str != "toolu_sdk1" || turn2.Get("thinking.budget_tokens").Int() != 1024 {
		t.Errorf("the second turn Anthropic got: %s", reqs[1].Body)
	}
	if reqs[2].Path != "/v1/messages/count_tokens" || r.Get("inputTokens").Int() != int64(fakeanthropic.CountTokens(reqs[2].Body)) {
		t.Errorf("countTokens: %s %s → %s", reqs[2].Path, reqs[2].Body, r.Get("inputTokens").Raw)
	}
}
