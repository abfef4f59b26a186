package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakebedrock"
)

// Claude on Bedrock (InvokeModel) and on Vertex (rawPredict), for
// Anthropic clients, through the harness.
const anthropicCloudConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 1048576, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
backends:
  - {name: bedrock, schema: bedrock, url: "%s", credential: {env: BEDROCK_KEYS}, bedrock: {region: eu-central-1}}
  - {name: vertex, schema: vertex, url: "%s", credential: {env: VERTEX_TOKEN}, vertex: {project: proj-e2e, region: us-east5}}
models:
  - {name: claude-bedrock, pool: bedrock, price: {input: 3, output: 15, cached_input: 0.30, cache_write: 3.75}}
  - {name: claude-vertex, pool: vertex, price: {input: 3, output: 15, cached_input: 0.30, cache_write: 3.75}}
pools:
  - {name: bedrock, backends: [{backend: bedrock, model: "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"}]}
  - {name: vertex, backends: [{backend: vertex, model: "claude-sonnet-4-5@20250929"}]}
`

type anthropicCloudEnv struct {
	*env
	bedrock *fakebedrock.Server
	vertex  *fakeanthropic.Server
}

func startAnthropicCloud(t *testing.T) *anthropicCloudEnv {
	t.Helper()
	c := &anthropicCloudEnv{
		bedrock: fakebedrock.New(fakebedrock.Options{AccessKeyID: "AKIDE2E", Secret: "e2e-secret", Region: "eu-central-1", HostIsAddr: true}),
		vertex:  fakeanthropic.New(fakeanthropic.Options{VertexToken: "ya29.e2e"}),
	}
	t.Cleanup(func() { c.bedrock.Close(); c.vertex.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(anthropicCloudConfig, c.bedrock.URL(), c.vertex.URL()),
		map[string]string{"BEDROCK_KEYS": "AKIDE2E:e2e-secret", "VERTEX_TOKEN": "ya29.e2e"})
	c.env = &env{Stack: st, accessLog: accessLog, log: log}
	return c
}

func (c *anthropicCloudEnv) messages(t *testing.T, path, body, beta string) result {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.URL()+path, strings.NewReader(body))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-api-key", "client-secret")
	req.Header.Set("anthropic-version", "2023-06-01")
	if beta != "" {
		req.Header.Set("anthropic-beta", beta)
	}
	return do(t, req)
}

// streamSummary reads an Anthropic SSE answer: its event names, the
// thinking and its signature, the tool used and the text.
type streamSummary struct {
	names                         []string
	thinking, signature, tool, tx string
}

func readAnthropicStream(body []byte) streamSummary {
	var s streamSummary
	for _, line := range strings.Split(string(body), "\n") {
		if n, ok := strings.CutPrefix(line, "event: "); ok {
			s.names = append(s.names, n)
		}
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		ev := gjson.Parse(d)
		switch ev.Get("delta.type").Str {
		case "thinking_delta":
			s.thinking += ev.Get("delta.thinking").Str
		case "signature_delta":
			s.signature += ev.Get("delta.signature").Str
		case "text_delta":
			s.tx += ev.Get("delta.text").Str
		}
		if ev.Get("content_block.type").Str == "tool_use" {
			s.tool = ev.Get("content_block.name").Str
		}
	}
	return s
}

// TestAnthropicOnBedrock: Claude Code's request reaches Claude on Bedrock
// through InvokeModel and InvokeModelWithResponseStream, SigV4-signed, the
// body as the client sent it but model and stream, with anthropic_version
// and the client's betas as anthropic_beta; the JSON answer reaches the
// client as Bedrock sent it, the event stream as Anthropic SSE (thinking
// signed, tool use); usage lands in the metrics; count_tokens is Bedrock's
// CountTokens.
func TestAnthropicOnBedrock(t *testing.T) {
	c := startAnthropicCloud(t)
	c.bedrock.Script(func(fakebedrock.Request) fakebedrock.Behaviour {
		return fakebedrock.Behaviour{Reasoning: "The user wants a file.", Content: "Writing it.",
			Tool:  &fakebedrock.ToolUse{ID: "toolu_b1", Name: "Write", Input: `{"file_path":"/tmp/x","content":"hi"}`},
			Usage: fakebedrock.Usage{Input: 10, Output: 20, CacheRead: 1000, CacheWrite: 300}}
	})
	const beta = "claude-code-20250219,interleaved-thinking-2025-05-14"
	for i, stream := range []bool{false, true} {
		body, _ := sjson.Set(claudeCodeRequest(t, stream), "model", "claude-bedrock")
		r := c.messages(t, "/v1/messages?beta=true", body, beta)
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: %d %v %s", stream, r.status, r.err, r.body)
		}
		got := c.bedrock.Requests()[i]
		wantOp := map[bool]string{false: "invoke", true: "invoke-with-response-stream"}[stream]
		if got.ModelID != "eu.anthropic.claude-sonnet-4-5-20250929-v1:0" || got.Op != wantOp {
			t.Errorf("stream=%v: Bedrock got %s %s", stream, got.Op, got.ModelID)
		}
		sent, req := gjson.ParseBytes(got.Body), gjson.Parse(body)
		req.ForEach(func(k, v gjson.Result) bool {
			switch g := sent.Get(k.Str); {
			case k.Str == "model" || k.Str == "stream":
				if g.Exists() {
					t.Errorf("%s sent to Bedrock", k.Str)
				}
			case g.Raw != v.Raw:
				t.Errorf("stream=%v: %s sent as %s", stream, k.Str, g.Raw)
			}
			return true
		})
		if sent.Get("anthropic_beta").Raw != `["claude-code-20250219","interleaved-thinking-2025-05-14"]` {
			t.Errorf("anthropic_beta %s", sent.Get("anthropic_beta").Raw)
		}
		if got.Header.Get("anthropic-beta") != "" || got.Header.Get("x-api-key") != "" || got.Header.Get("anthropic-version") != "" {
			t.Errorf("Anthropic headers reached Bedrock: %v", got.Header)
		}
		if !stream {
			if gjson.GetBytes(r.body, "content.0.type").Str != "thinking" || gjson.GetBytes(r.body, "content.0.signature").Str != "sig-fake" ||
				gjson.GetBytes(r.body, "content.2.name").Str != "Write" || gjson.GetBytes(r.body, "usage.cache_read_input_tokens").Int() != 1000 {
				t.Errorf("JSON answer: %s", r.body)
			}
			continue
		}
		if ct := r.header.Get("content-type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("content-type %q", ct)
		}
		s := readAnthropicStream(r.body)
		if s.thinking != "The user wants a file." || s.signature != "sig-fake" || s.tool != "Write" || s.tx != "Writing it." ||
			len(s.names) == 0 || s.names[0] != "message_start" || s.names[len(s.names)-1] != "message_stop" {
			t.Errorf("stream: %+v\n%s", s, r.body)
		}
	}
	m := c.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_tokens_total"], map[string]string{"type": "cache_write", "backend": "bedrock"}) == 600
	})
	for typ, want := range map[string]float64{"input": 2 * 1310, "output": 40, "cached_input": 2000} {
		if got := sum(m["llmproc_tokens_total"], map[string]string{"type": typ, "backend": "bedrock"}); got != want {
			t.Errorf("%s tokens %v, want %v", typ, got, want)
		}
	}

	// A throttled stream ends with Anthropic's error event.
	c.bedrock.Enqueue(fakebedrock.Behaviour{Content: "Hel", Exception: "throttlingException"})
	body, _ := sjson.Set(claudeCodeRequest(t, true), "model", "claude-bedrock")
	r := c.messages(t, "/v1/messages", body, "")
	if s := readAnthropicStream(r.body); len(s.names) == 0 || s.names[len(s.names)-1] != "error" || !strings.Contains(string(r.body), `"rate_limit_error"`) {
		t.Errorf("throttled stream:\n%s", r.body)
	}

	// count_tokens: Bedrock's CountTokens on the foundation model.
	const count = `{"model":"claude-bedrock","messages":[{"role":"user","content":"Count these tokens, please."}]}`
	n := len(c.bedrock.Requests())
	r = c.messages(t, "/v1/messages/count_tokens?beta=true", count, "token-counting-2024-11-01")
	reqs := c.bedrock.Requests()
	if len(reqs) != n+1 || reqs[n].Op != "count-tokens" || reqs[n].ModelID != "anthropic.claude-sonnet-4-5-20250929-v1:0" {
		t.Fatalf("Bedrock got %+v", reqs[n:])
	}
	if r.status != 200 || gjson.GetBytes(r.body, "input_tokens").Int() == 0 || r.header.Get("x-llmproc-token-count") != "" {
		t.Errorf("count_tokens: %d %s %v", r.status, r.body, r.header)
	}
}

// TestAnthropicOnVertex: Claude Code's request reaches Claude on Vertex
// through rawPredict and streamRawPredict with the bearer token, the body as
// sent but model, with anthropic_version, the betas in anthropic-beta; the
// answers pass as Vertex sent them; count_tokens is Vertex's count-tokens;
// an OpenAI client's request is translated and sent to rawPredict too;
// Google's errors reach the client in Anthropic's shape.
func TestAnthropicOnVertex(t *testing.T) {
	c := startAnthropicCloud(t)
	c.vertex.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Thinking: "Easy.", Content: "Done.", Usage: fakeanthropic.Usage{Input: 5, Output: 7, CacheRead: 100}}
	})
	const beta = "interleaved-thinking-2025-05-14"
	for i, stream := range []bool{false, true} {
		body, _ := sjson.Set(claudeCodeRequest(t, stream), "model", "claude-vertex")
		r := c.messages(t, "/v1/messages?beta=true", body, beta)
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: %d %v %s", stream, r.status, r.err, r.body)
		}
		got := c.vertex.Requests()[i]
		method := map[bool]string{false: ":rawPredict", true: ":streamRawPredict"}[stream]
		if got.Path != "/v1/projects/proj-e2e/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929"+method {
			t.Errorf("Vertex got %s", got.Path)
		}
		want, _ := sjson.Delete(body, "model")
		want, _ = sjson.Set(want, "anthropic_version", "vertex-2023-10-16")
		if string(got.Body) != want {
			t.Errorf("stream=%v: Vertex got\n%s\nwant\n%s", stream, got.Body, want)
		}
		if got.Header.Get("anthropic-beta") != beta || got.Header.Get("authorization") != "Bearer ya29.e2e" || got.Header.Get("x-api-key") != "" {
			t.Errorf("headers %v", got.Header)
		}
		if stream {
			if s := readAnthropicStream(r.body); s.thinking != "Easy." || s.signature != "sig-fake" || s.tx != "Done." {
				t.Errorf("stream: %+v", s)
			}
		} else if gjson.GetBytes(r.body, "content.1.text").Str != "Done." {
			t.Errorf("JSON answer: %s", r.body)
		}
	}

	const count = `{"model":"claude-vertex","messages":[{"role":"user","content":"Count these tokens, please."}]}`
	r := c.messages(t, "/v1/messages/count_tokens", count, "")
	got := c.vertex.Requests()[2]
	if !strings.HasSuffix(got.Path, "/publishers/anthropic/models/count-tokens:rawPredict") || gjson.GetBytes(got.Body, "model").Str != "claude-sonnet-4-5@20250929" {
		t.Errorf("Vertex got %s %s", got.Path, got.Body)
	}
	if r.status != 200 || gjson.GetBytes(r.body, "input_tokens").Int() != int64(fakeanthropic.CountTokens(got.Body)) {
		t.Errorf("count_tokens: %d %s", r.status, r.body)
	}

	// An OpenAI client's request for the Claude model: translated for
	// Anthropic, sent to rawPredict.
	for _, stream := range []bool{false, true} {
		n := len(c.vertex.Requests())
		r := c.post(t, chat("claude-vertex", stream, ""), "authorization", "Bearer client-secret")
		got := c.vertex.Requests()[n]
		if r.status != 200 || !strings.Contains(string(r.body), "Done.") || !strings.Contains(got.Path, "/publishers/anthropic/models/claude-sonnet-4-5@20250929:") ||
			gjson.GetBytes(got.Body, "anthropic_version").Str != "vertex-2023-10-16" {
			t.Errorf("OpenAI client, stream=%v: %d %s; Vertex got %s %s", stream, r.status, r.body, got.Path, got.Body)
		}
	}

	quota := fakeanthropic.Behaviour{Status: 429, Body: []byte(`{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com","status":"RESOURCE_EXHAUSTED"}}`)}
	c.vertex.Enqueue(quota, quota) // Envoy retries a 429 once
	body, _ := sjson.Set(claudeCodeRequest(t, false), "model", "claude-vertex")
	r = c.messages(t, "/v1/messages", body, "")
	if r.status != 429 || gjson.GetBytes(r.body, "type").Str != "error" || gjson.GetBytes(r.body, "error.type").Str != "rate_limit_error" {
		t.Errorf("quota error: %d %s", r.status, r.body)
	}
}
