package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// TestAnthropicClient: a client on Anthropic's Messages API is served by an
// OpenAI backend through the same pool, JSON and streaming, with usage.
func TestAnthropicClient(t *testing.T) {
	e := start(t)
	u := fakeopenai.Usage{Prompt: 40, Completion: 5, Cached: 16}
	e.primary.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: "Hello from OpenAI", Usage: u}
	})
	post := func(body string) result {
		req, _ := http.NewRequest(http.MethodPost, e.URL()+"/v1/messages", strings.NewReader(body))
		req.Header.Set("content-type", "application/json")
		req.Header.Set("x-api-key", "client-secret")
		req.Header.Set("anthropic-version", "2023-06-01")
		return do(t, req)
	}
	const msg = `"model":"gpt-4o-mini","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Say hello"}]`

	r := post(`{` + msg + `}`)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if gjson.GetBytes(r.body, "type").String() != "message" || gjson.GetBytes(r.body, "content.0.text").String() != "Hello from OpenAI" ||
		gjson.GetBytes(r.body, "stop_reason").String() != "end_turn" {
		t.Errorf("not an Anthropic message: %s", r.body)
	}
	if in, cached := gjson.GetBytes(r.body, "usage.input_tokens").Int(), gjson.GetBytes(r.body, "usage.cache_read_input_tokens").Int(); in != 24 || cached != 16 {
		t.Errorf("usage %s", gjson.GetBytes(r.body, "usage").Raw)
	}
	got := e.primary.Requests()[0]
	if gjson.GetBytes(got.Body, "messages.0.role").String() != "system" || got.Header.Get("x-api-key") != "" {
		t.Errorf("provider got %s with x-api-key %q", got.Body, got.Header.Get("x-api-key"))
	}

	r = post(`{` + msg + `,"stream":true}`)
	if r.status != 200 || r.err != nil || !strings.HasPrefix(r.header.Get("content-type"), "text/event-stream") {
		t.Fatalf("stream: status %d err %v ct %q", r.status, r.err, r.header.Get("content-type"))
	}
	var events []string
	var text strings.Builder
	for _, line := range strings.Split(string(r.body), "\n") {
		if ev, ok := strings.CutPrefix(line, "event: "); ok {
			events = append(events, ev)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && gjson.Get(data, "delta.type").String() == "text_delta" {
			text.WriteString(gjson.Get(data, "delta.text").String())
		}
	}
	if events[0] != "message_start" || events[len(events)-1] != "message_stop" || text.String() != "Hello from OpenAI" {
		t.Errorf("events %v text %q\n%s", events, text.String(), r.body)
	}
	// Translated: message_start carries llmproc's estimate of the prompt (what
	// count_tokens answers for it), message_delta the backend's exact counts.
	var start, delta gjson.Result
	for _, line := range strings.Split(string(r.body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		switch typ := gjson.Get(data, "type").String(); {
		case ok && typ == "message_start":
			start = gjson.Get(data, "message.usage")
		case ok && typ == "message_delta":
			delta = gjson.Get(data, "usage")
		}
	}
	count := e.postPath(t, "/v1/messages/count_tokens", `{`+msg+`}`, "x-api-key", "client-secret")
	estimate := gjson.GetBytes(count.body, "input_tokens").Int()
	if count.header.Get("x-llmproc-token-count") != "estimated" || estimate <= 0 {
		t.Fatalf("count_tokens: %d %s %v", count.status, count.body, count.header)
	}
	if start.Get("input_tokens").Int() != estimate || start.Get("output_tokens").Int() != 0 {
		t.Errorf("message_start usage %s, want input_tokens %d (the estimate)", start.Raw, estimate)
	}
	if delta.Get("input_tokens").Int() != 24 || delta.Get("cache_read_input_tokens").Int() != 16 || delta.Get("output_tokens").Int() != 5 {
		t.Errorf("message_delta usage %s, want the backend's exact 24 + 16 cached in, 5 out", delta.Raw)
	}

	// llmproc's own rejections use Anthropic's error shape too.
	r = post(`{"model":"gpt-9","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	if r.status != 404 || gjson.GetBytes(r.body, "type").String() != "error" {
		t.Errorf("unknown model: %d %s", r.status, r.body)
	}

	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_tokens_total"], map[string]string{"type": "input"}) == 80
	})
	if got := sum(m["llmproc_tokens_total"], map[string]string{"type": "cached_input"}); got != 32 {
		t.Errorf("cached_input tokens %v", got)
	}
}

// TestAnthropicClientAnthropicBackend: an Anthropic Messages client whose
// primary (OpenAI) fails is served by Anthropic natively, with cache tokens
// preserved end to end.
func TestAnthropicClientAnthropicBackend(t *testing.T) {
	a := startAnthropic(t)
	a.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	a.claude.Script(func(fakeanthropic.Request) fakeanthropic.Behaviour {
		return fakeanthropic.Behaviour{Content: "Hi from Claude", Usage: fakeanthropic.Usage{Input: 10, Output: 4, CacheRead: 100, CacheWrite: 20}}
	})
	for _, stream := range []bool{false, true} {
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","max_tokens":32,"stream":%v,"messages":[{"role":"user","content":"Hello"}]}`, stream)
		req, _ := http.NewRequest(http.MethodPost, a.URL()+"/v1/messages", strings.NewReader(body))
		req.Header.Set("content-type", "application/json")
		r := do(t, req)
		if r.status != 200 || r.err != nil {
			t.Fatalf("stream=%v: status %d err %v %s", stream, r.status, r.err, r.body)
		}
		if b := r.header.Get("x-llmproc-backend"); b != "claude" {
			t.Errorf("x-llmproc-backend %q", b)
		}
		usage, out := gjson.GetBytes(r.body, "usage"), gjson.GetBytes(r.body, "usage")
		if stream { // native: message_start has the input side, message_delta the output
			for _, line := range strings.Split(string(r.body), "\n") {
				data, ok := strings.CutPrefix(line, "data: ")
				switch typ := gjson.Get(data, "type").String(); {
				case ok && typ == "message_start":
					usage = gjson.Get(data, "message.usage")
				case ok && typ == "message_delta":
					out = gjson.Get(data, "usage")
				}
			}
		}
		if usage.Get("input_tokens").Int() != 10 || usage.Get("cache_read_input_tokens").Int() != 100 ||
			usage.Get("cache_creation_input_tokens").Int() != 20 || out.Get("output_tokens").Int() != 4 {
			t.Errorf("stream=%v usage %s, %s", stream, usage.Raw, out.Raw)
		}
	}
}
