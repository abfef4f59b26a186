package extproc

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
)

// nativeConfig: Claude Code's model names reach an Anthropic backend first,
// then (failover) a second one with a model pin, and an OpenAI-first pool.
const nativeConfig = `
backends:
  - {name: claude-1, schema: anthropic, url: "http://127.0.0.1:1", credential: {env: KEY1}, anthropic: {version: "2023-06-01"}}
  - {name: claude-2, schema: anthropic, url: "http://127.0.0.1:1/proxy", credential: {env: KEY2}, drop_params: [context_management]}
  - {name: openai-1, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY3}}
  - {name: bedrock-1, schema: bedrock, url: "http://127.0.0.1:1", credential: {env: AWS}, bedrock: {region: us-east-1}}
  - {name: vertex-1, schema: vertex, url: "http://127.0.0.1:1", credential: {env: GCP}, vertex: {project: proj-1, region: us-east5}}
  - {name: gemini-1, schema: gemini, url: "http://127.0.0.1:1", credential: {env: GEM}}
models:
  - {name: claude-sonnet-4-5, aliases: ["claude-sonnet-4-5*"], pool: claude, price: {input: 3, output: 15, cached_input: 0.30, cache_write: 3.75, cache_write_1h: 6}}
  - {name: gpt-then-claude, pool: mixed}
  - {name: claude-bedrock, pool: bedrock, price: {input: 3, output: 15, cached_input: 0.30, cache_write: 3.75, cache_write_1h: 6}}
  - {name: claude-vertex, pool: vertex, price: {input: 3, output: 15}}
  - {name: gemini-vertex, pool: vertex-gemini}
  - {name: gemini-flash, pool: gemini}
  - {name: claude-anywhere, pool: claude-clouds}
pools:
  - {name: claude, backends: [{backend: claude-1}, {backend: claude-2, model: claude-sonnet-4-5}]}
  - {name: mixed, backends: [{backend: openai-1, model: gpt-4o}, {backend: claude-1}]}
  - {name: bedrock, backends: [{backend: bedrock-1, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}]}
  - {name: vertex, backends: [{backend: vertex-1, model: "claude-sonnet-4-5@20250929"}]}
  - {name: vertex-gemini, backends: [{backend: vertex-1, model: gemini-2.5-flash}]}
  - {name: gemini, backends: [{backend: gemini-1, model: gemini-2.5-flash}]}
  - name: claude-clouds
    backends: [{backend: claude-1, model: claude-sonnet-4-5}, {backend: bedrock-1, model: "anthropic.claude-sonnet-4-5-20250929-v1:0"},
      {backend: vertex-1, model: "claude-sonnet-4-5@20250929"}, {backend: openai-1, model: gpt-4o}]
`

// claudeCodeBody is a request as Claude Code sends it (issue 13), shared
// with the translator's golden tests.
func claudeCodeBody(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../translate/testdata/client_anthropic/req_claude_code.in.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func nativeHarness(t *testing.T) *harness {
	t.Helper()
	cfg, err := config.Parse([]byte(nativeConfig))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Compile(cfg, func(k string) string {
		if k == "AWS" {
			return "AKIDEXAMPLE:secret"
		}
		return "sk-" + strings.ToLower(k)
	})
	if err != nil {
		t.Fatal(err)
	}
	return newHarnessFor(t, rt, nil)
}

func claudeCodeClient(body string) envoyHeaders {
	return envoyHeaders{
		{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/messages?beta=true")},
		{Key: ":authority", RawValue: []byte("llm.internal")}, {Key: ":scheme", RawValue: []byte("http")},
		{Key: "content-type", RawValue: []byte("application/json")},
		{Key: "content-length", RawValue: []byte(strconv.Itoa(len(body)))},
		{Key: "x-api-key", RawValue: []byte("client-key")},
		{Key: "anthropic-version", RawValue: []byte("2023-06-01")},
		{Key: "anthropic-beta", RawValue: []byte("claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27")},
		{Key: "user-agent", RawValue: []byte("claude-cli/2.1.328 (external, sdk-cli)")},
	}
}

func header1(s sent, name string) (string, bool) {
	for _, kv := range s.headers {
		if k, v, _ := strings.Cut(kv, ": "); k == name {
			return v, true
		}
	}
	return "", false
}

// TestNativeAnthropicRequest: Claude Code's request reaches an Anthropic
// backend byte for byte as sent (thinking, cache_control,
// context_management, output_config, a system turn, deferred and server
// tools), with its anthropic-version and anthropic-beta; a pool member's
// model pin and drop_params are the only changes; and after a failed
// OpenAI attempt (translated, with the Anthropic headers removed) the
// Anthropic attempt is the same as a first attempt.
func TestNativeAnthropicRequest(t *testing.T) {
	h := nativeHarness(t)
	body := claudeCodeBody(t)
	routed, dec := h.route(t, claudeCodeClient(body), body)
	if dec[KeyClient] != clientAnthropic || dec[KeyAnthropicBeta] == "" {
		t.Fatalf("decisions %v", dec)
	}

	first := slices.Clone(routed)
	got := h.attempt(t, &first, body, "claude", "claude-1", dec)
	if got.body != body {
		t.Errorf("the body changed on its way to Anthropic:\n%s", got.body)
	}
	for name, want := range map[string]string{
		":path": "/v1/messages", "anthropic-version": "2023-06-01", "x-api-key": "sk-key1",
		"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
	} {
		if v, _ := header1(got, name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}

	// The failover member pins the model and drops context_management.
	second := h.attempt(t, &first, body, "claude", "claude-2", dec)
	req, sentReq := gjson.Parse(body), gjson.Parse(second.body)
	if sentReq.Get("model").Str != "claude-sonnet-4-5" || sentReq.Get("context_management").Exists() {
		t.Errorf("pinned attempt body:\n%s", second.body)
	}
	for _, field := range []string{"thinking", "output_config", "system", "messages", "tools", "tool_choice", "metadata", "top_k", "max_tokens", "stream"} {
		if sentReq.Get(field).Raw != req.Get(field).Raw {
			t.Errorf("%s changed: %s", field, sentReq.Get(field).Raw)
		}
	}
	if v, _ := header1(second, ":path"); v != "/proxy/v1/messages" {
		t.Errorf(":path %q", v)
	}
	if v, _ := header1(second, "content-length"); v != strconv.Itoa(len(second.body)) {
		t.Errorf("content-length %q for a %d-byte body", v, len(second.body))
	}
	if v, _ := header1(second, "x-api-key"); v != "sk-key2" {
		t.Errorf("x-api-key %q", v)
	}

	// OpenAI first: translated, no Anthropic header; then Anthropic as new.
	mixedBody := strings.Replace(body, `"claude-sonnet-4-5-20250929"`, `"gpt-then-claude"`, 1)
	routed, dec = h.route(t, claudeCodeClient(mixedBody), mixedBody)
	m := slices.Clone(routed)
	oa := h.attempt(t, &m, mixedBody, "mixed", "openai-1", dec)
	if _, ok := header1(oa, "anthropic-beta"); ok || gjson.Get(oa.body, "thinking").Exists() || gjson.Get(oa.body, "model").Str != "gpt-4o" {
		t.Errorf("OpenAI attempt: %v\n%s", oa.headers, oa.body)
	}
	after := h.attempt(t, &m, mixedBody, "mixed", "claude-1", dec)
	fresh := slices.Clone(routed)
	direct := h.attempt(t, &fresh, mixedBody, "mixed", "claude-1", dec)
	if strings.Join(after.headers, "\n") != strings.Join(direct.headers, "\n") || after.body != direct.body || direct.body != mixedBody {
		t.Errorf("after failover:\n%v\n%s\nas a first attempt:\n%v\n%s", after.headers, after.body, direct.headers, direct.body)
	}
}

// TestNativeAnthropicAnswer: the Anthropic stream reaches the client as the
// backend sent it, split anywhere, while usage is read from message_start
// and message_delta: cache reads, five-minute and one-hour writes priced
// apart, and web searches.
func TestNativeAnthropicAnswer(t *testing.T) {
	stream := readTestdata(t, "anthropic_native.sse")
	for _, size := range []int{0, 1, 13, len(stream)} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			got := nativeExchange(t, "200", "text/event-stream", splitEvery(stream, size)...)
			if ct, ok := got.set["content-type"]; ok {
				t.Errorf("content-type rewritten to %q", ct)
			}
			if got.body != stream {
				t.Errorf("the stream changed:\n%s", got.body)
			}
			want := map[string]string{"prompt_tokens": "1312", "completion_tokens": "40", "cached_tokens": "1000",
				"web_search_requests": "1", "usage": "known", "outcome": "ok"}
			for k, v := range want {
				if got.md[k] != v {
					t.Errorf("metadata %s = %q, want %q", k, got.md[k], v)
				}
			}
			// 12 at 3, 1000 at 0.30, 100 at 3.75, 200 at 6, 40 at 15 per million.
			if c := got.md["cost_usd"]; c != "0.002511000000" {
				t.Errorf("cost_usd %q", c)
			}
		})
	}
}

// nativeAnswer is what the client gets from one native attempt: the status
// Envoy sees, the response headers llmproc set, the body, and the dynamic
// metadata recorded at the end.
type nativeAnswer struct {
	status  string
	set, md map[string]string
	body    string
}

// nativeExchange plays one native attempt of Claude Code's request with the
// given answer.
func nativeExchange(t *testing.T, status, ctype string, chunks ...string) nativeAnswer {
	t.Helper()
	return nativeExchangeOn(t, "claude-sonnet-4-5-20250929", "claude", "claude-1", status, ctype, chunks...)
}

// nativeExchangeOn plays one attempt of Claude Code's request, asking for
// model, on the pool's backend, with the given answer.
func nativeExchangeOn(t *testing.T, model, pool, backend, status, ctype string, chunks ...string) nativeAnswer {
	t.Helper()
	h := nativeHarness(t)
	body := strings.Replace(claudeCodeBody(t), `"claude-sonnet-4-5-20250929"`, strconv.Quote(model), 1)
	routed, dec := h.route(t, claudeCodeClient(body), body)
	s := h.stream(RoleUpstream)
	defer s.CloseSend() //nolint:errcheck
	attrs := map[string]string{AttrBackend: backend, AttrCluster: PoolClusterPrefix + pool}
	roundTrip(t, s, withDecisions(reqHeaders(routed.message(), attrs), dec))
	roundTrip(t, s, withDecisions(reqBody(body), dec))
	resp := roundTrip(t, s, respHeaders(false, ":status", status, "content-type", ctype))
	a := nativeAnswer{status: status, set: setHeaders(resp.GetResponseHeaders().GetResponse()), md: map[string]string{}}
	if st, ok := a.set[":status"]; ok {
		a.status = st
	}
	var out strings.Builder
	for i, c := range chunks {
		r := roundTrip(t, s, respBody(c, i == len(chunks)-1))
		if bm := r.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
			out.Write(bm.GetBody())
		} else {
			out.WriteString(c)
		}
		for k, v := range r.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields() {
			if v.GetStringValue() != "" {
				a.md[k] = v.GetStringValue()
			} else {
				a.md[k] = strconv.FormatFloat(v.GetNumberValue(), 'f', -1, 64)
			}
		}
	}
	a.body = out.String()
	return a
}

// TestNativeAnthropicCutAndErrors: a native stream cut short ends with
// Anthropic's error event; an error answer is in Anthropic's shape, 529
// overloaded as 503 so Envoy's retry policy sees it.
func TestNativeAnthropicCutAndErrors(t *testing.T) {
	stream := readTestdata(t, "anthropic_native.sse")
	cut := stream[:strings.Index(stream, "event: message_delta")]
	out := nativeExchange(t, "200", "text/event-stream", cut, "").body
	if !strings.HasPrefix(out, cut) || !strings.HasSuffix(out, "\n\n") {
		t.Fatalf("cut stream:\n%s", out)
	}
	tail := out[len(cut):]
	if !strings.HasPrefix(tail, "event: error\ndata: ") || gjson.Get(strings.TrimPrefix(strings.TrimSpace(tail), "event: error\ndata: "), "type").Str != "error" {
		t.Errorf("no Anthropic error event at the end: %q", tail)
	}

	e := nativeExchange(t, "529", "application/json", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	if e.status != "503" || gjson.Get(e.body, "type").Str != "error" || gjson.Get(e.body, "error.type").Str != "overloaded_error" || gjson.Get(e.body, "error.message").Str != "Overloaded" {
		t.Errorf("error answer: %s %s", e.status, e.body)
	}
}
