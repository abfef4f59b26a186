package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakebedrock"
	"github.com/llmproc/llmproc/e2e/fakegemini"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// respBackend drives one translated backend for the Responses scenarios:
// its stack, the model that reaches it, and how to script its fake.
type respBackend struct {
	name  string
	model string
	start func(t *testing.T) (e *env, requests func() int)
	// text answers every request with text (cut after a few events, or
	// ending in a provider error event, when asked).
	text func(content string, cut, streamErr bool)
	// tool answers a first turn with a get_weather call for Paris and a
	// second with "It is <tool output>.".
	tool func()
}

func respBackends(t *testing.T) []respBackend {
	var g *geminiEnv
	var b *bedrockEnv
	var c *compatEnv
	return []respBackend{
		{name: "gemini", model: "gemini-2.5-flash",
			start: func(t *testing.T) (*env, func() int) {
				g = startGemini(t)
				return g.env, func() int { return len(g.gemini.Requests()) }
			},
			text: func(content string, cut, streamErr bool) {
				bh := fakegemini.Behaviour{Text: content, Usage: fakegemini.Usage{Prompt: 40, Candidates: 8}}
				if cut {
					bh.CutAfter = 2
				}
				if streamErr {
					bh.StreamError = "UNAVAILABLE"
				}
				g.gemini.Script(func(fakegemini.Request) fakegemini.Behaviour { return bh })
			},
			tool: func() {
				g.gemini.Turns(func([]fake.ToolResult) fakegemini.Behaviour {
					return fakegemini.Behaviour{Calls: []fakegemini.FunctionCall{{Name: "get_weather", Args: map[string]any{"city": "Paris"}}}}
				}, func(rs []fake.ToolResult) fakegemini.Behaviour {
					return fakegemini.Behaviour{Text: "It is " + rs[0].Output + "."}
				})
			}},
		{name: "bedrock", model: "claude-bedrock",
			start: func(t *testing.T) (*env, func() int) {
				b = startBedrock(t)
				return b.env, func() int { return len(b.bedrock.Requests()) }
			},
			text: func(content string, cut, streamErr bool) {
				bh := fakebedrock.Behaviour{Content: content, Usage: fakebedrock.Usage{Input: 40, Output: 8}}
				if cut {
					bh.CutAfter = 3
				}
				if streamErr {
					bh.Exception = "modelStreamErrorException"
				}
				b.bedrock.Script(func(fakebedrock.Request) fakebedrock.Behaviour { return bh })
			},
			tool: func() {
				b.bedrock.Turns(func([]fake.ToolResult) fakebedrock.Behaviour {
					return fakebedrock.Behaviour{Tool: &fakebedrock.ToolUse{ID: "tooluse_1", Name: "get_weather", Input: `{"city":"Paris"}`}}
				}, func(rs []fake.ToolResult) fakebedrock.Behaviour {
					return fakebedrock.Behaviour{Content: "It is " + rs[0].Output + "."}
				})
			}},
		{name: "openai-compatible", model: "qwen3",
			start: func(t *testing.T) (*env, func() int) {
				c = startCompat(t)
				return c.env, func() int { return len(c.vllm.Requests()) }
			},
			text: func(content string, cut, streamErr bool) {
				bh := fakeopenai.Behaviour{Content: content, Usage: fakeopenai.Usage{Prompt: 40, Completion: 8}}
				if cut {
					bh.CutAfter = 3
				}
				c.vllm.Script(func(fakeopenai.Request) fakeopenai.Behaviour { return bh })
			},
			tool: func() {
				c.vllm.Turns(func([]fake.ToolResult) fakeopenai.Behaviour {
					return fakeopenai.Behaviour{ToolCalls: []fakeopenai.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}}
				}, func(rs []fake.ToolResult) fakeopenai.Behaviour {
					return fakeopenai.Behaviour{Content: "It is " + rs[0].Output + "."}
				})
			}},
	}
}

// compatEnv is a stack whose one backend is an OpenAI-compatible server
// (vLLM, Ollama) without the Responses API.
type compatEnv struct {
	*env
	vllm *fakeopenai.Server
}

func startCompat(t *testing.T) *compatEnv {
	t.Helper()
	c := &compatEnv{vllm: fakeopenai.New(fakeopenai.Options{})}
	t.Cleanup(func() { c.vllm.Close() })
	cfg := fmt.Sprintf(`
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2}
backends:
  - {name: vllm, schema: openai-compatible, url: "%s"}
models:
  - {name: qwen3, pool: local, price: {input: 0.10, output: 0.20}}
pools:
  - {name: local, backends: [{backend: vllm}]}
`, c.vllm.URL())
	st, accessLog, log := startStack(t, cfg, nil)
	c.env = &env{Stack: st, accessLog: accessLog, log: log}
	return c
}

// respFinal is a Responses answer's response object: the body, or the
// terminal event's response of a stream (checked by responsesEvents).
func respFinal(t *testing.T, r result, stream bool) (gjson.Result, string) {
	t.Helper()
	if !stream {
		return gjson.ParseBytes(r.body), ""
	}
	evs := responsesEvents(t, r.body)
	last := evs[len(evs)-1]
	return last.Get("response"), last.Get("type").Str
}

// TestResponsesBackends: for Gemini, Bedrock and an OpenAI-compatible
// server, a Responses request is answered as JSON and as OpenAI's event
// stream, a function tool call round-trips (the provider gets the tool's
// output and answers with it), and a cut or failed provider stream never
// ends in response.completed.
func TestResponsesBackends(t *testing.T) {
	for _, rb := range respBackends(t) {
		t.Run(rb.name, func(t *testing.T) {
			e, requests := rb.start(t)
			rb.text("Hello from "+rb.name, false, false)
			for _, stream := range []string{"false", "true"} {
				r := e.postPath(t, "/v1/responses", `{"model":"`+rb.model+`","instructions":"Be brief.","input":"hi","stream":`+stream+`}`)
				if r.status != 200 || r.err != nil {
					t.Fatalf("stream=%s: %d %v %s", stream, r.status, r.err, r.body)
				}
				resp, typ := respFinal(t, r, stream == "true")
				if stream == "true" && typ != "response.completed" {
					t.Errorf("stream ends with %s", typ)
				}
				if got := responsesText(resp); got != "Hello from "+rb.name || resp.Get("status").Str != "completed" {
					t.Errorf("stream=%s: text %q in %s", stream, got, resp.Raw)
				}
				if u := resp.Get("usage"); u.Get("input_tokens").Int() == 0 || u.Get("output_tokens").Int() == 0 {
					t.Errorf("stream=%s: usage %s", stream, u.Raw)
				}
			}
			if n := requests(); n != 2 {
				t.Errorf("%d provider requests, want 2", n)
			}

			rb.tool()
			const tools = `"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]`
			for _, stream := range []string{"false", "true"} {
				r := e.postPath(t, "/v1/responses", `{"model":"`+rb.model+`","input":"Weather in Paris?",`+tools+`,"stream":`+stream+`}`)
				resp, _ := respFinal(t, r, stream == "true")
				call := resp.Get(`output.#(type=="function_call")`)
				if call.Get("name").Str != "get_weather" || gjson.Get(call.Get("arguments").Str, "city").Str != "Paris" || call.Get("call_id").Str == "" {
					t.Fatalf("stream=%s: function_call %s in %s", stream, call.Raw, r.body)
				}
				next := `{"model":"` + rb.model + `","input":[{"role":"user","content":"Weather in Paris?"},` + call.Raw +
					`,{"type":"function_call_output","call_id":` + strconv.Quote(call.Get("call_id").Str) + `,"output":"18C"}],` + tools + `,"stream":` + stream + `}`
				r = e.postPath(t, "/v1/responses", next)
				resp, _ = respFinal(t, r, stream == "true")
				if got := responsesText(resp); !strings.Contains(got, "It is ") || !strings.Contains(got, "18C") {
					t.Errorf("stream=%s: final text %q in %s", stream, got, r.body)
				}
			}

			for _, c := range []struct{ cut, streamErr bool }{{true, false}, {false, true}} {
				if c.streamErr && rb.name == "openai-compatible" {
					continue // the fake has no mid-stream error event
				}
				rb.text("one two three four five six", c.cut, c.streamErr)
				r := e.postPath(t, "/v1/responses", `{"model":"`+rb.model+`","input":"count","stream":true}`)
				if strings.Contains(string(r.body), "response.completed") {
					t.Fatalf("cut=%v error=%v: a failed stream carries response.completed:\n%s", c.cut, c.streamErr, r.body)
				}
				if r.err != nil {
					continue // the client saw the transport cut
				}
				if _, typ := respFinal(t, r, true); typ != "response.failed" {
					t.Errorf("cut=%v error=%v: ends with %s", c.cut, c.streamErr, typ)
				}
			}
		})
	}
}
