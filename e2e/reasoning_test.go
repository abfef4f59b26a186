package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// reasoningConfig: gpt-5 on OpenAI, Claude on Anthropic with its thinking
// offered to OpenAI clients (reasoning_content: true), and the same Claude
// backend without the option.
const reasoningConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
  - {name: claude, schema: anthropic, url: "%s", credential: {env: ANTHROPIC_KEY}, reasoning_content: true}
  - {name: claude-quiet, schema: anthropic, url: "%s", credential: {env: ANTHROPIC_KEY}}
models:
  - {name: gpt-5, pool: openai, price: {input: 1.25, output: 10}}
  - {name: claude-sonnet-4-5, pool: claude, price: {input: 3, output: 15}}
  - {name: claude-quiet, pool: quiet, price: {input: 3, output: 15}}
pools:
  - {name: openai, backends: [{backend: openai}]}
  - {name: claude, backends: [{backend: claude}]}
  - {name: quiet, backends: [{backend: claude-quiet, model: claude-sonnet-4-5}]}
`

// TestReasoningAcrossSchemas: an Anthropic client's thinking reaches an
// OpenAI backend as reasoning_effort; an OpenAI client's reasoning_effort
// reaches Anthropic as thinking with a valid budget, and Claude's thinking
// comes back as reasoning_content only where the backend offers it, with
// its signature, which the next turn sends back to Anthropic.
func TestReasoningAcrossSchemas(t *testing.T) {
	oai := fakeopenai.New(fakeopenai.Options{})
	claude := fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant-secret"})
	t.Cleanup(func() { oai.Close(); claude.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(reasoningConfig, oai.URL(), claude.URL(), claude.URL()),
		map[string]string{"OPENAI_KEY": "sk-openai", "ANTHROPIC_KEY": "sk-ant-secret"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	oai.Script(func(fakeopenai.Request) fakeopenai.Behaviour { return fakeopenai.Behaviour{Content: "Done."} })
	claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Thinking: "Two and two.", Content: "4"}
	})

	t.Run("anthropic client thinking to openai", func(t *testing.T) {
		for _, tt := range []struct{ thinking, want string }{
			{`"thinking":{"type":"adaptive","display":"omitted"},"output_config":{"effort":"high"}`, "high"}, // Claude Code's
			{`"thinking":{"type":"enabled","budget_tokens":2048}`, "low"},
			{`"thinking":{"type":"enabled","budget_tokens":10000}`, "medium"},
			{`"thinking":{"type":"disabled"}`, ""},
		} {
			n := len(oai.Requests())
			r := e.postPath(t, "/v1/messages", `{"model":"gpt-5","max_tokens":16000,`+tt.thinking+
				`,"messages":[{"role":"user","content":"2+2?"}]}`, "x-api-key", "client-secret")
			if r.status != 200 {
				t.Fatalf("%s: status %d %s", tt.thinking, r.status, r.body)
			}
			got := oai.Requests()[n]
			if effort := gjson.GetBytes(got.Body, "reasoning_effort"); effort.Str != tt.want || (tt.want == "") != !effort.Exists() {
				t.Errorf("%s: OpenAI got reasoning_effort %s, want %q\n%s", tt.thinking, effort.Raw, tt.want, got.Body)
			}
			if gjson.GetBytes(got.Body, "thinking").Exists() {
				t.Errorf("Anthropic's thinking reached OpenAI: %s", got.Body)
			}
		}
	})

	t.Run("openai client reasoning_effort to anthropic", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			n := len(claude.Requests())
			r := e.post(t, fmt.Sprintf(`{"model":"claude-sonnet-4-5","stream":%v,"reasoning_effort":"medium","temperature":0.2,"max_tokens":1000,"messages":[{"role":"user","content":"2+2?"}]}`, stream))
			if r.status != 200 {
				t.Fatalf("stream=%v: status %d %s", stream, r.status, r.body)
			}
			got := gjson.ParseBytes(claude.Requests()[n].Body)
			budget, maxTokens := got.Get("thinking.budget_tokens").Int(), got.Get("max_tokens").Int()
			if got.Get("thinking.type").Str != "enabled" || budget != 8192 || budget < 1024 || budget >= maxTokens {
				t.Errorf("Anthropic got thinking %s max_tokens %d", got.Get("thinking").Raw, maxTokens)
			}
			if got.Get("temperature").Exists() {
				t.Errorf("temperature sent with thinking: %s", got.Raw)
			}
			reasoning, sig := reasoningOf(t, r.body, stream)
			if reasoning != "Two and two." || sig == "" {
				t.Errorf("stream=%v: reasoning_content %q signature %q\n%s", stream, reasoning, sig, r.body)
			}
			if content := contentOf(t, r.body, stream); content != "4" {
				t.Errorf("stream=%v: content %q (thinking must not be mixed in)", stream, content)
			}
		}
	})

	t.Run("thinking hidden without the backend option", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			r := e.post(t, fmt.Sprintf(`{"model":"claude-quiet","stream":%v,"reasoning_effort":"low","messages":[{"role":"user","content":"2+2?"}]}`, stream))
			if r.status != 200 {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			if strings.Contains(string(r.body), "reasoning_content") || strings.Contains(string(r.body), "thinking_blocks") {
				t.Errorf("stream=%v: thinking reached the client: %s", stream, r.body)
			}
			if content := contentOf(t, r.body, stream); content != "4" {
				t.Errorf("stream=%v: content %q", stream, content)
			}
		}
	})

	t.Run("signed thinking round-trips to anthropic", func(t *testing.T) {
		r := e.post(t, `{"model":"claude-sonnet-4-5","reasoning_effort":"low","messages":[{"role":"user","content":"2+2?"}]}`)
		msg := gjson.GetBytes(r.body, "choices.0.message")
		n := len(claude.Requests())
		next := `{"model":"claude-sonnet-4-5","reasoning_effort":"low","messages":[{"role":"user","content":"2+2?"},` + msg.Raw +
			`,{"role":"user","content":"And 3+3?"}]}`
		if r = e.post(t, next); r.status != 200 {
			t.Fatalf("status %d %s", r.status, r.body)
		}
		block := gjson.GetBytes(claude.Requests()[n].Body, "messages.1.content.0")
		if block.Get("type").Str != "thinking" || block.Get("thinking").Str != "Two and two." || block.Get("signature").Str == "" {
			t.Errorf("Anthropic got history %s", gjson.GetBytes(claude.Requests()[n].Body, "messages.1").Raw)
		}
		// The same history to OpenAI carries no thinking_blocks.
		m := len(oai.Requests())
		if r = e.post(t, strings.Replace(next, "claude-sonnet-4-5", "gpt-5", 1)); r.status != 200 {
			t.Fatalf("status %d %s", r.status, r.body)
		}
		if body := oai.Requests()[m].Body; strings.Contains(string(body), "thinking_blocks") {
			t.Errorf("OpenAI got thinking_blocks: %s", body)
		}
	})
}

// reasoningOf returns an OpenAI answer's reasoning_content and the
// signature of its thinking_blocks.
func reasoningOf(t *testing.T, body []byte, stream bool) (text, sig string) {
	t.Helper()
	if !stream {
		m := gjson.GetBytes(body, "choices.0.message")
		return m.Get("reasoning_content").Str, m.Get("thinking_blocks.0.signature").Str
	}
	for _, ev := range sseEvents(t, body) {
		d := gjson.Get(ev, "choices.0.delta")
		text += d.Get("reasoning_content").Str
		if s := d.Get("thinking_blocks.0.signature").Str; s != "" {
			sig = s
		}
	}
	return text, sig
}

func contentOf(t *testing.T, body []byte, stream bool) string {
	t.Helper()
	if !stream {
		return gjson.GetBytes(body, "choices.0.message.content").Str
	}
	var sb strings.Builder
	for _, ev := range sseEvents(t, body) {
		sb.WriteString(gjson.Get(ev, "choices.0.delta.content").Str)
	}
	return sb.String()
}

// TestWebSearchAcrossSchemas: an OpenAI client's web_search_options reach
// Anthropic as the web_search server tool, and the answer's citations come
// back as url_citation annotations, with the search counted in usage.
func TestWebSearchAcrossSchemas(t *testing.T) {
	oai := fakeopenai.New(fakeopenai.Options{})
	claude := fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant-secret"})
	t.Cleanup(func() { oai.Close(); claude.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(reasoningConfig, oai.URL(), claude.URL(), claude.URL()),
		map[string]string{"OPENAI_KEY": "sk-openai", "ANTHROPIC_KEY": "sk-ant-secret"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Body: []byte(`{"id":"msg_ws","type":"message","role":"assistant","model":"claude-sonnet-4-5",` +
			`"content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"envoy"}},` +
			`{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[{"type":"web_search_result","url":"https://envoyproxy.io/r","title":"Envoy","encrypted_content":"E"}]},` +
			`{"type":"text","text":"Envoy 1.36 is out.","citations":[{"type":"web_search_result_location","url":"https://envoyproxy.io/r","title":"Envoy","encrypted_index":"I","cited_text":"1.36"}]}],` +
			`"stop_reason":"end_turn","usage":{"input_tokens":900,"output_tokens":20,"server_tool_use":{"web_search_requests":1}}}`)}
	})
	r := e.post(t, `{"model":"claude-sonnet-4-5","web_search_options":{"user_location":{"type":"approximate","approximate":{"country":"FR"}}},"messages":[{"role":"user","content":"News about Envoy?"}]}`)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	tool := gjson.GetBytes(claude.Requests()[0].Body, "tools.0")
	if tool.Get("type").Str != "web_search_20250305" || tool.Get("name").Str != "web_search" || tool.Get("user_location.country").Str != "FR" {
		t.Errorf("Anthropic got tools %s", gjson.GetBytes(claude.Requests()[0].Body, "tools").Raw)
	}
	msg := gjson.GetBytes(r.body, "choices.0.message")
	a := msg.Get("annotations.0")
	if msg.Get("content").Str != "Envoy 1.36 is out." || a.Get("type").Str != "url_citation" ||
		a.Get("url_citation.url").Str != "https://envoyproxy.io/r" || a.Get("url_citation.end_index").Int() != 18 {
		t.Errorf("answer %s", msg.Raw)
	}
	if n := gjson.GetBytes(r.body, "usage.server_tool_use.web_search_requests").Int(); n != 1 {
		t.Errorf("usage %s", gjson.GetBytes(r.body, "usage").Raw)
	}
}
