package e2e

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
)

// claudeCodeRequest is a request as Claude Code sends it (issue 13: thinking,
// cache_control, context_management, output_config, a system turn, a
// deferred tool and a server tool), for the claude-only pool's model.
func claudeCodeRequest(t *testing.T, stream bool) string {
	t.Helper()
	b, err := os.ReadFile("../filter/translate/testdata/client_anthropic/req_claude_code.in.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = sjson.SetBytes(b, "model", "claude-haiku-4-5")
	b, _ = sjson.SetBytes(b, "stream", stream)
	return string(b)
}

// TestAnthropicNativePassThrough: Claude Code's request reaches the
// Anthropic backend byte for byte as sent, with its anthropic-version and
// anthropic-beta and the backend's own key; the answer, thinking block
// (signed) and tool use included, reaches the client as the backend sent it,
// JSON and streamed; usage is read natively (cache reads, one-hour writes,
// web searches) into the metrics.
func TestAnthropicNativePassThrough(t *testing.T) {
	a := startAnthropic(t)
	a.claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Thinking: "The user wants a file.", Content: "Writing it.",
			ToolUses: []fakeanthropic.ToolUse{{ID: "toolu_9", Name: "Write", Input: `{"file_path":"/tmp/x","content":"hi"}`}},
			Usage:    fakeanthropic.Usage{Input: 10, Output: 20, CacheRead: 1000, CacheWrite: 300, CacheWrite1h: 200, WebSearches: 1}}
	})
	const beta = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,effort-2025-11-24"
	for i, stream := range []bool{false, true} {
		body := claudeCodeRequest(t, stream)
		req, _ := http.NewRequest(http.MethodPost, a.URL()+"/v1/messages?beta=true", strings.NewReader(body))
		req.Header.Set("content-type", "application/json")
		req.Header.Set("x-api-key", "client-secret")
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("anthropic-beta", beta)
		r := do(t, req)
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: %d %v %s", stream, r.status, r.err, r.body)
		}
		got := a.claude.Requests()[i]
		if string(got.Body) != body {
			t.Errorf("stream=%v: the backend got\n%s\nthe client sent\n%s", stream, got.Body, body)
		}
		if got.Header.Get("anthropic-beta") != beta || got.Header.Get("anthropic-version") != "2023-06-01" || got.Header.Get("x-api-key") != "sk-ant-secret" {
			t.Errorf("stream=%v: backend headers %v", stream, got.Header)
		}
		if !stream {
			if gjson.GetBytes(r.body, "content.0.type").Str != "thinking" || gjson.GetBytes(r.body, "content.0.signature").Str != "sig-fake" ||
				gjson.GetBytes(r.body, "content.2.type").Str != "tool_use" || gjson.GetBytes(r.body, "usage.cache_creation.ephemeral_1h_input_tokens").Int() != 200 ||
				gjson.GetBytes(r.body, "usage.server_tool_use.web_search_requests").Int() != 1 {
				t.Errorf("JSON answer: %s", r.body)
			}
			continue
		}
		if ct := r.header.Get("content-type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("content-type %q", ct)
		}
		var thinking, signature, tool, oneHour string
		for _, line := range strings.Split(string(r.body), "\n") {
			d, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			ev := gjson.Parse(d)
			switch ev.Get("delta.type").Str {
			case "thinking_delta":
				thinking += ev.Get("delta.thinking").Str
			case "signature_delta":
				signature += ev.Get("delta.signature").Str
			}
			if ev.Get("content_block.type").Str == "tool_use" {
				tool = ev.Get("content_block.name").Str
			}
			if ev.Get("type").Str == "message_start" {
				oneHour = ev.Get("message.usage.cache_creation.ephemeral_1h_input_tokens").Raw
			}
		}
		if thinking != "The user wants a file." || signature != "sig-fake" || tool != "Write" || oneHour != "200" ||
			!strings.Contains(string(r.body), "event: ping\n") || !strings.HasSuffix(string(r.body), "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") {
			t.Errorf("stream: thinking %q signature %q tool %q 1h writes %s:\n%s", thinking, signature, tool, oneHour, r.body)
		}
	}
	m := a.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_tokens_total"], map[string]string{"type": "cache_write", "backend": "claude"}) == 600
	})
	for typ, want := range map[string]float64{"input": 2 * 1310, "output": 40, "cached_input": 2000} {
		if got := sum(m["llmproc_tokens_total"], map[string]string{"type": typ, "backend": "claude"}); got != want {
			t.Errorf("%s tokens %v, want %v", typ, got, want)
		}
	}
}

// TestAnthropicCountTokens: count_tokens goes to Anthropic when the pool's
// first backend is Anthropic, with the client's beta header; an OpenAI-first
// pool gets llmproc's estimate, marked; unknown /v1/messages paths answer in
// Anthropic's error shape.
func TestAnthropicCountTokens(t *testing.T) {
	a := startAnthropic(t)
	post := func(path, body string) result {
		req, _ := http.NewRequest(http.MethodPost, a.URL()+path, strings.NewReader(body))
		req.Header.Set("content-type", "application/json")
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("anthropic-beta", "token-counting-2024-11-01")
		return do(t, req)
	}
	const msgs = `"messages":[{"role":"user","content":"Hello, Claude, count these tokens please."}],"thinking":{"type":"enabled","budget_tokens":2048}`
	body := `{"model":"claude-haiku-4-5",` + msgs + `}`
	r := post("/v1/messages/count_tokens?beta=true", body)
	if r.status != 200 || gjson.GetBytes(r.body, "input_tokens").Int() != int64(fakeanthropic.CountTokens([]byte(body))) || r.header.Get("x-llmproc-token-count") != "" {
		t.Errorf("forwarded: %d %s %v", r.status, r.body, r.header)
	}
	reqs := a.claude.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/messages/count_tokens" || string(reqs[0].Body) != body || reqs[0].Header.Get("anthropic-beta") != "token-counting-2024-11-01" {
		t.Errorf("Anthropic got %+v", reqs)
	}

	r = post("/v1/messages/count_tokens", `{"model":"gpt-4o-mini",`+msgs+`}`)
	if n := gjson.GetBytes(r.body, "input_tokens").Int(); r.status != 200 || n < 5 || n > 20 || r.header.Get("x-llmproc-token-count") != "estimated" {
		t.Errorf("estimated: %d %s %v", r.status, r.body, r.header)
	}
	if n := len(a.openai.Requests()); n != 0 {
		t.Errorf("OpenAI got %d requests", n)
	}

	for _, path := range []string{"/v1/messages/batches", "/v1/messages/count_tokens/x"} {
		r = post(path, body)
		if r.status != 404 || gjson.GetBytes(r.body, "type").Str != "error" || gjson.GetBytes(r.body, "error.type").Str != "not_found_error" {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
}

// TestAnthropicClaudeCodeTranslated: Claude Code's request to an OpenAI
// backend is served, not refused: what only tunes a Claude model (thinking,
// effort, context_management, top_k, server tools) is dropped on the way.
func TestAnthropicClaudeCodeTranslated(t *testing.T) {
	a := startAnthropic(t)
	body, _ := sjson.Set(claudeCodeRequest(t, true), "model", "gpt-4o-mini")
	req, _ := http.NewRequest(http.MethodPost, a.URL()+"/v1/messages?beta=true", strings.NewReader(body))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-beta", "claude-code-20250219")
	r := do(t, req)
	if r.status != 200 || r.err != nil || !strings.Contains(string(r.body), "event: message_stop") {
		t.Fatalf("%d %v %s", r.status, r.err, r.body)
	}
	got := a.openai.Requests()
	if len(got) != 1 {
		t.Fatalf("OpenAI got %d requests", len(got))
	}
	sent := gjson.ParseBytes(got[0].Body)
	for _, f := range []string{"thinking", "context_management", "output_config", "top_k"} {
		if sent.Get(f).Exists() {
			t.Errorf("%s reached OpenAI: %s", f, got[0].Body)
		}
	}
	if sent.Get("tools.#").Int() != 2 || sent.Get("messages.1.role").Str != "system" || got[0].Header.Get("anthropic-beta") != "" {
		t.Errorf("OpenAI got %s (anthropic-beta %q)", got[0].Body, got[0].Header.Get("anthropic-beta"))
	}
}
