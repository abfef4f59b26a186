package translate

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

func TestReasoningBudgetTable(t *testing.T) {
	for _, tt := range []struct {
		effort string
		budget int64
	}{
		{"none", 0}, {"minimal", 512}, {"low", 1024}, {"medium", 8192}, {"high", 24576}, {"xhigh", 32768},
	} {
		if got, ok := ReasoningBudget(tt.effort); !ok || got != tt.budget {
			t.Errorf("ReasoningBudget(%q) = %d, %v; want %d", tt.effort, got, ok, tt.budget)
		}
	}
	for _, bad := range []string{"", "max", "HIGH", "extreme"} {
		if _, ok := ReasoningBudget(bad); ok {
			t.Errorf("ReasoningBudget(%q) known", bad)
		}
	}
}

func TestReasoningEffortFromBudget(t *testing.T) {
	for _, tt := range []struct {
		budget int64
		effort string
	}{
		{-5, "none"}, {0, "none"}, {1, "minimal"}, {512, "minimal"}, {1023, "minimal"},
		{1024, "low"}, {5000, "low"}, {8191, "low"}, {8192, "medium"}, {16000, "medium"},
		{24575, "medium"}, {24576, "high"}, {31999, "high"}, {32768, "high"}, {1 << 40, "high"},
	} {
		if got := ReasoningEffort(tt.budget); got != tt.effort {
			t.Errorf("ReasoningEffort(%d) = %q, want %q", tt.budget, got, tt.effort)
		}
	}
	// Round trip: every effort but xhigh (never chosen) comes back as itself.
	for _, l := range reasoningLevels {
		if l.effort == "xhigh" {
			continue
		}
		if got := ReasoningEffort(l.budget); got != l.effort {
			t.Errorf("round trip of %q: %q", l.effort, got)
		}
	}
}

func TestClaudeThinkingConstraints(t *testing.T) {
	for _, tt := range []struct {
		name                 string
		budget, maxTokens    int64
		wantBudget, wantMaxT int64
	}{
		{"off", 0, 4096, 0, 4096},
		{"below Anthropic's minimum is raised", 512, 20000, 1024, 20000},
		{"max_tokens above the budget is kept", 8192, 16000, 8192, 16000},
		{"max_tokens equal to the budget grows by it", 8192, 8192, 8192, 16384},
		{"max_tokens below the budget grows by it", 24576, 4096, 24576, 28672},
		{"raised minimum then max_tokens", 512, 1000, 1024, 2024},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := claudeThinkingFor(tt.budget, tt.maxTokens)
			if got.budget != tt.wantBudget || got.maxTokens != tt.wantMaxT {
				t.Errorf("got budget %d max_tokens %d, want %d %d", got.budget, got.maxTokens, tt.wantBudget, tt.wantMaxT)
			}
			if got.budget > 0 && (got.budget < anthropicMinBudget || got.budget >= got.maxTokens) {
				t.Errorf("budget %d breaks Anthropic's rule (≥ 1024, < max_tokens %d)", got.budget, got.maxTokens)
			}
		})
	}
}

func TestClaudeSampling(t *testing.T) {
	for _, tt := range []struct {
		param, raw string
		want       string
		keep       bool
	}{
		{"temperature", "0.2", "0.2", false},
		{"temperature", "1", "1", true},
		{"temperature", "1.0", "1.0", true},
		{"top_p", "0.5", "0.95", true},
		{"top_p", "0.97", "0.97", true},
		{"top_p", "1", "1", true},
	} {
		raw, keep := claudeSampling(tt.param, gjson.Parse(tt.raw))
		if raw != tt.want || keep != tt.keep {
			t.Errorf("%s %s: got %s %v, want %s %v", tt.param, tt.raw, raw, keep, tt.want, tt.keep)
		}
	}
}

// Thinking reaches OpenAI clients only when Response.Reasoning asks for it:
// by default an answer carries no reasoning_content and no thinking_blocks.
func TestReasoningHiddenByDefault(t *testing.T) {
	stream := readFile(t, "testdata/anthropic/stream_thinking_redacted.in.sse")
	msg := readFile(t, "testdata/anthropic/resp_thinking_signed.in.json")
	for _, tt := range []struct {
		name  string
		body  func(reasoning bool) Body
		input []byte
	}{
		{"anthropic stream", func(r bool) Body {
			return anthropicTest.Response(&Response{Status: 200, ContentType: "text/event-stream", Stream: true, Reasoning: r}).Body
		}, stream},
		{"anthropic json", func(r bool) Body {
			return anthropicTest.Response(&Response{Status: 200, ContentType: "application/json", Reasoning: r}).Body
		}, msg},
		{"bedrock json", func(r bool) Body {
			return testBedrock().Response(&Response{Status: 200, ContentType: "application/json", Reasoning: r}).Body
		}, readFile(t, "testdata/bedrock/resp_cache_reasoning.in.json")},
		{"gemini json", func(r bool) Body {
			return gemini{now: geminiClock}.Response(&Response{Status: 200, ContentType: "application/json", Reasoning: r}).Body
		}, readFile(t, "testdata/gemini/grounding.response.json")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hidden := feedBody(tt.body(false), tt.input)
			shown := feedBody(tt.body(true), tt.input)
			for _, field := range []string{`"reasoning_content"`, `"thinking_blocks"`} {
				if bytes.Contains(hidden, []byte(field)) {
					t.Errorf("hidden answer has %s:\n%s", field, hidden)
				}
				if field == `"thinking_blocks"` && strings.HasPrefix(tt.name, "gemini") {
					continue // Gemini signs no thinking
				}
				if !bytes.Contains(shown, []byte(field)) {
					t.Errorf("shown answer lacks %s:\n%s", field, shown)
				}
			}
			if !strings.Contains(string(hidden), "[DONE]") && tt.name == "anthropic stream" {
				t.Errorf("hidden stream did not end cleanly:\n%s", hidden)
			}
		})
	}
}

// A backend that cannot reason or search: a 400 naming the parameter and
// the backend, unless its drop_params lists the parameter.
func TestReasoningAndSearchWithoutEquivalent(t *testing.T) {
	const think = `{"model":"m","messages":[{"role":"user","content":"Hi"}],"reasoning_effort":"high"}`
	const search = `{"model":"m","messages":[{"role":"user","content":"Hi"}],"web_search_options":{}}`
	for _, tt := range []struct {
		name, body, model, param string
		drop                     bool
	}{
		{"bedrock llama reasons", think, "meta.llama3-70b-instruct-v1:0", "reasoning_effort", false},
		{"bedrock llama, dropped", think, "meta.llama3-70b-instruct-v1:0", "reasoning_effort", true},
		{"bedrock claude searches", search, "anthropic.claude-sonnet-4-5-20250929-v1:0", "web_search_options", false},
		{"bedrock claude search dropped", search, "anthropic.claude-sonnet-4-5-20250929-v1:0", "web_search_options", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := testBedrockBackend()
			if tt.drop {
				be.DropParams = []string{tt.param}
			}
			up, err := testBedrock().Request(&Request{Body: []byte(tt.body), Backend: be, ClientModel: "m", Model: tt.model})
			if tt.drop {
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(up.Body, []byte("thinking")) || bytes.Contains(up.Body, []byte("search")) {
					t.Errorf("dropped parameter sent: %s", up.Body)
				}
				return
			}
			var e *apierr.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Param != tt.param || !strings.Contains(e.Message, `"bedrock-east"`) {
				t.Fatalf("want a 400 naming %s and the backend, got %v", tt.param, err)
			}
		})
	}
}

// OpenAI-shaped backends never get the hub's thinking_blocks.
func TestOpenAIStripsThinkingBlocks(t *testing.T) {
	body := []byte(`{"model":"gpt-5","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"4","thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"}]},{"role":"user","content":"Again"}]}`)
	for _, schema := range []string{"openai", "openai-compatible", "azure-openai"} {
		tr, _ := For(schema)
		up, err := tr.Request(&Request{Body: body, Backend: &config.RBackend{Name: "o", Schema: schema}, ClientModel: "gpt-5", Model: "gpt-5"})
		if err != nil {
			t.Fatal(err)
		}
		if up.Body == nil || bytes.Contains(up.Body, []byte("thinking_blocks")) || gjson.GetBytes(up.Body, "messages.1.content").Str != "4" {
			t.Errorf("%s: body %s", schema, up.Body)
		}
	}
}
