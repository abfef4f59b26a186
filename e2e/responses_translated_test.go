package e2e

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// POST /v1/responses to backends that do not speak it: translated through
// chat completions both ways (filter/translate/client_responses*.go).

// responsesEvents parses a Responses stream ("event:" and "data:" lines) and
// checks what every such stream must satisfy: each event's data names its
// event line's type, sequence numbers count from 0, and the stream ends
// with exactly one terminal event.
func responsesEvents(t *testing.T, body []byte) []gjson.Result {
	t.Helper()
	var evs []gjson.Result
	name := ""
	for _, line := range strings.Split(string(body), "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev := gjson.Parse(strings.TrimPrefix(line, "data: "))
			if typ := ev.Get("type").Str; typ != name && typ != "error" {
				t.Errorf("event line %q with data type %q", name, typ)
			}
			if typ := ev.Get("type").Str; typ != "error" && ev.Get("sequence_number").Int() != int64(len(evs)) {
				t.Errorf("event %d (%s) has sequence_number %d", len(evs), typ, ev.Get("sequence_number").Int())
			}
			evs = append(evs, ev)
		default:
			t.Fatalf("unexpected SSE line %q in\n%s", line, body)
		}
	}
	if len(evs) == 0 {
		t.Fatalf("no events in %q", body)
	}
	for i, ev := range evs {
		typ := ev.Get("type").Str
		terminal := typ == "response.completed" || typ == "response.incomplete" || typ == "response.failed" || typ == "error"
		if terminal != (i == len(evs)-1) {
			t.Errorf("event %d of %d is %s", i, len(evs), typ)
		}
	}
	return evs
}

// responsesText is the output text of a response object.
func responsesText(r gjson.Result) string {
	var sb strings.Builder
	r.Get("output").ForEach(func(_, it gjson.Result) bool {
		if it.Get("type").Str == "message" {
			it.Get("content").ForEach(func(_, p gjson.Result) bool {
				sb.WriteString(p.Get("text").Str)
				return true
			})
		}
		return true
	})
	return sb.String()
}

// TestResponsesAnthropic: a Responses request reaches an Anthropic backend
// as a Messages request, JSON and streamed, after a failover from OpenAI
// (503) too; the client gets a response object and OpenAI's event stream,
// with usage in the Responses shape, and llmproc counts the usage once.
func TestResponsesAnthropic(t *testing.T) {
	a := startAnthropic(t)
	a.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	a.claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Content: "Hello from Claude", Thinking: "Greet back.",
			Usage: fakeanthropic.Usage{Input: 100, Output: 50, CacheRead: 1000}}
	})
	for _, c := range []struct {
		model  string
		stream bool
	}{{"claude-haiku-4-5", false}, {"claude-haiku-4-5", true}, {"gpt-4o-mini", true}} {
		body := `{"model":"` + c.model + `","instructions":"Be nice.","input":[{"role":"developer","content":"Answer in English."},{"role":"user","content":[{"type":"input_text","text":"hi"}]}],"max_output_tokens":300,"stream":` + map[bool]string{true: "true", false: "false"}[c.stream] + `}`
		r := a.postPath(t, "/v1/responses", body, "authorization", "Bearer client-secret")
		if r.status != 200 || r.err != nil {
			t.Fatalf("%s stream=%v: %d %v %s", c.model, c.stream, r.status, r.err, r.body)
		}
		if b := r.header.Get("x-llmproc-backend"); b != "claude" {
			t.Errorf("x-llmproc-backend %q", b)
		}
		resp := gjson.ParseBytes(r.body)
		if c.stream {
			if ct := r.header.Get("content-type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("content-type %q", ct)
			}
			evs := responsesEvents(t, r.body)
			if evs[0].Get("type").Str != "response.created" || evs[len(evs)-1].Get("type").Str != "response.completed" {
				t.Fatalf("events %s … %s", evs[0].Raw, evs[len(evs)-1].Raw)
			}
			resp = evs[len(evs)-1].Get("response")
		}
		if resp.Get("object").Str != "response" || resp.Get("status").Str != "completed" || resp.Get("max_output_tokens").Int() != 300 {
			t.Errorf("response %s", resp.Raw)
		}
		if got := responsesText(resp); got != "Hello from Claude" {
			t.Errorf("text %q in %s", got, resp.Raw)
		}
		if s := resp.Get(`output.#(type=="reasoning").summary.0.text`).Str; s != "Greet back." {
			t.Errorf("reasoning summary %q in %s", s, resp.Raw)
		}
		u := resp.Get("usage")
		if u.Get("input_tokens").Int() != 1100 || u.Get("input_tokens_details.cached_tokens").Int() != 1000 || u.Get("output_tokens").Int() != 50 || u.Get("total_tokens").Int() != 1150 {
			t.Errorf("usage %s", u.Raw)
		}
	}
	reqs := a.claude.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests reached Anthropic, want 3", len(reqs))
	}
	for i, req := range reqs {
		b := gjson.ParseBytes(req.Body)
		if req.Path != "/v1/messages" || b.Get("max_tokens").Int() != 300 || b.Get("system.0.text").Str != "Be nice." ||
			b.Get("system.1.text").Str != "Answer in English." || b.Get("messages.0.content.0.text").Str != "hi" {
			t.Errorf("request %d: %s %s", i, req.Path, req.Body)
		}
	}
	labels := map[string]string{"gen_ai_provider_name": "anthropic", "gen_ai_token_type": "input"}
	m := a.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["gen_ai_client_token_usage"], labels) == 3*1100
	})
	if got := sum(m["gen_ai_client_token_usage"], labels); got != 3*1100 {
		t.Errorf("input tokens %v, want %d", got, 3*1100)
	}
	if got := sum(m["gen_ai_client_token_usage"], map[string]string{"gen_ai_provider_name": "anthropic", "gen_ai_token_type": "output"}); got != 3*50 {
		t.Errorf("output tokens %v, want %d", got, 3*50)
	}
}

// TestResponsesAnthropicToolRoundTrip: a function tool call comes back as a
// function_call item; the client's function_call_output reaches Anthropic
// as the tool_result of that call, and the final answer depends on it.
func TestResponsesAnthropicToolRoundTrip(t *testing.T) {
	a := startAnthropic(t)
	a.claude.Script(func(req fakeanthropic.Request) fakeanthropic.Behaviour {
		if res := gjson.GetBytes(req.Body, `messages.#.content.#(type=="tool_result")#`); strings.Contains(res.Raw, "toolu_1") {
			out := gjson.GetBytes(req.Body, `messages.2.content.0.content`).Str
			return fakeanthropic.Behaviour{Content: "It is " + out + "."}
		}
		return fakeanthropic.Behaviour{Content: "Checking.", ToolUses: []fakeanthropic.ToolUse{{ID: "toolu_1", Name: "get_weather", Input: `{"city":"Paris"}`}}}
	})
	const tools = `"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]`
	for _, stream := range []string{"false", "true"} {
		r := a.postPath(t, "/v1/responses", `{"model":"claude-haiku-4-5","input":"Weather in Paris?",`+tools+`,"stream":`+stream+`}`)
		if r.status != 200 {
			t.Fatalf("first turn: %d %s", r.status, r.body)
		}
		resp := gjson.ParseBytes(r.body)
		if stream == "true" {
			evs := responsesEvents(t, r.body)
			resp = evs[len(evs)-1].Get("response")
			var args strings.Builder
			for _, ev := range evs {
				if ev.Get("type").Str == "response.function_call_arguments.delta" {
					args.WriteString(ev.Get("delta").Str)
				}
			}
			if args.String() != `{"city":"Paris"}` {
				t.Errorf("streamed arguments %q", args.String())
			}
		}
		call := resp.Get(`output.#(type=="function_call")`)
		if call.Get("call_id").Str != "toolu_1" || call.Get("name").Str != "get_weather" || call.Get("arguments").Str != `{"city":"Paris"}` {
			t.Fatalf("function_call %s in %s", call.Raw, resp.Raw)
		}
		second := `{"model":"claude-haiku-4-5","input":[{"role":"user","content":"Weather in Paris?"},` + call.Raw +
			`,{"type":"function_call_output","call_id":"toolu_1","output":"18C and sunny"}],` + tools + `,"stream":` + stream + `}`
		r = a.postPath(t, "/v1/responses", second)
		if r.status != 200 {
			t.Fatalf("second turn: %d %s", r.status, r.body)
		}
		resp = gjson.ParseBytes(r.body)
		if stream == "true" {
			evs := responsesEvents(t, r.body)
			resp = evs[len(evs)-1].Get("response")
		}
		if got := responsesText(resp); got != "It is 18C and sunny." {
			t.Errorf("final text %q in %s", got, resp.Raw)
		}
	}
}

// TestResponsesAnthropicCut: an Anthropic stream ending in an error event
// ends the client's stream with response.failed; one cut mid-way is cut
// for the client too (the transport error) or ends with response.failed,
// never with response.completed.
func TestResponsesAnthropicCut(t *testing.T) {
	a := startAnthropic(t)
	for _, b := range []fakeanthropic.Behaviour{
		{Content: "one two three four five", CutAfter: 4},
		{Content: "one two", StreamError: "overloaded_error"},
	} {
		a.claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour { return b })
		r := a.postPath(t, "/v1/responses", `{"model":"claude-haiku-4-5","input":"count","stream":true}`)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if strings.Contains(string(r.body), "response.completed") {
			t.Fatalf("a failed stream carries response.completed:\n%s", r.body)
		}
		if r.err != nil && b.CutAfter > 0 {
			continue // the client saw the cut
		}
		evs := responsesEvents(t, r.body)
		last := evs[len(evs)-1]
		if last.Get("type").Str != "response.failed" || last.Get("response.status").Str != "failed" || last.Get("response.error.message").Str == "" {
			t.Errorf("cut=%d error=%q: ends with %s", b.CutAfter, b.StreamError, last.Raw)
		}
	}
}
