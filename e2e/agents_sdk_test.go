package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// TestAgentsSDKAnthropic runs an OpenAI Agents SDK agent with one function
// tool to completion through llmproc against an Anthropic backend: the
// SDK's Responses requests (stream: false, the full history each turn) are
// translated, Claude's tool use reaches the SDK as a function_call, the SDK
// runs the tool, and Claude gets its output as the tool_result of its own
// tool use before it answers.
func TestAgentsSDKAnthropic(t *testing.T) {
	oa, claude := fakeopenai.New(fakeopenai.Options{}), fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant"})
	t.Cleanup(func() { oa.Close(); claude.Close() })
	claude.Turns(
		func([]fake.ToolResult) fakeanthropic.Behaviour {
			return fakeanthropic.Behaviour{Content: "Let me check.", ToolUses: []fakeanthropic.ToolUse{{ID: "toolu_ag1", Name: "get_weather", Input: `{"city":"Paris"}`}}}
		},
		func(rs []fake.ToolResult) fakeanthropic.Behaviour {
			return fakeanthropic.Behaviour{Content: "In Paris it is " + rs[0].Output + "."}
		},
	)
	st, _, _ := startStack(t, fmt.Sprintf(sdkConfig, oa.URL(), claude.URL()), map[string]string{"OPENAI_KEY": "sk-openai", "ANTHROPIC_KEY": "sk-ant"})
	out := runSDK(t, "agents.mjs", st.URL()+"/v1", "claude-sdk")
	if out.Get("finalOutput").Str != "In Paris it is sunny in Paris, 24°C." || out.Get("calls").Raw != `["Paris"]` {
		t.Errorf("the agent ended with %s", out.Raw)
	}
	got := claude.Requests()
	if len(got) != 2 {
		t.Fatalf("Anthropic got %d requests, want 2", len(got))
	}
	for i, r := range got {
		b := gjson.ParseBytes(r.Body)
		if b.Get("model").Str != "claude-backend" || b.Get("tools.0.name").Str != "get_weather" || !strings.Contains(b.Get("system").Raw, "Answer with the weather tool.") {
			t.Errorf("request %d: %s", i, r.Body)
		}
	}
	if rs := fakeanthropic.ToolResults(got[1]); len(rs) != 1 || rs[0].CallID != "toolu_ag1" || rs[0].Output != "sunny in Paris, 24°C" {
		t.Errorf("Anthropic got the tool results %+v", rs)
	}
	if len(oa.Requests()) != 0 {
		t.Errorf("OpenAI got %d requests", len(oa.Requests()))
	}
}
