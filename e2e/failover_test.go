package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakebedrock"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// crossConfig has three pools whose first member fails over to a plain
// OpenAI backend: Anthropic, Bedrock with an AWS session token, and an
// OpenAI backend pinned to a model. Every first member also sets a
// configured header. per_try_timeout is short so that a provider left
// waiting for a body shorter than its content-length fails fast.
const crossConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2, per_try_timeout: 5s}
backends:
  - {name: claude, schema: anthropic, url: "%s", credential: {env: ANTHROPIC_KEY}, headers: {set: {x-claude-config: claude-only}}}
  - {name: bedrock, schema: bedrock, url: "%s", credential: {env: BEDROCK_KEYS}, bedrock: {region: eu-central-1}, headers: {set: {x-bedrock-config: bedrock-only}}}
  - {name: pinned, schema: openai, url: "%s", credential: {env: PINNED_KEY}, headers: {set: {x-pinned-config: pinned-only}}}
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
models:
  - {name: via-anthropic, pool: anthropic-openai, price: {input: 1, output: 1}}
  - {name: via-bedrock, pool: bedrock-openai, price: {input: 1, output: 1}}
  - {name: via-pinned, pool: pinned-openai, price: {input: 1, output: 1}}
pools:
  - {name: anthropic-openai, backends: [{backend: claude, model: claude-haiku-4-5}, {backend: openai}]}
  - {name: bedrock-openai, backends: [{backend: bedrock, model: "anthropic.claude-3-5-sonnet-20240620-v1:0"}, {backend: openai}]}
  - {name: pinned-openai, backends: [{backend: pinned, model: pin}, {backend: openai}]}
`

// TestCrossProviderFailover: in each pool the first backend answers 503 and
// the plain OpenAI backend answers; the client gets OpenAI's answer, JSON
// and streamed, and the OpenAI provider receives nothing of the first
// attempt (it shares Envoy's header map): no anthropic-*, x-amz-*, x-goog-*
// or x-llmproc-* header, none of the first backend's credential or
// configured headers, and a content-length matching the body it reads.
func TestCrossProviderFailover(t *testing.T) {
	claude := fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant", Default: fakeanthropic.Behaviour{Status: 503}})
	bedrock := fakebedrock.New(fakebedrock.Options{AccessKeyID: "AKIDE2E", Secret: "e2e-secret", Region: "eu-central-1",
		HostIsAddr: true, Default: fakebedrock.Behaviour{Status: 503}})
	pinned := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Status: 503}})
	openai := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 10, Completion: 4}}})
	t.Cleanup(func() { claude.Close(); bedrock.Close(); pinned.Close(); openai.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(crossConfig, claude.URL(), bedrock.URL(), pinned.URL(), openai.URL()), map[string]string{
		"ANTHROPIC_KEY": "sk-ant", "BEDROCK_KEYS": "AKIDE2E:e2e-secret:session-token-e2e",
		"PINNED_KEY": "sk-pinned", "OPENAI_KEY": "sk-openai",
	})
	e := &env{Stack: st, accessLog: accessLog, log: log}

	firsts := []struct {
		model    string
		requests func() int
		secret   string // the first backend's credential, as it travels
	}{
		{"via-anthropic", func() int { return len(claude.Requests()) }, "sk-ant"},
		{"via-bedrock", func() int { return len(bedrock.Requests()) }, "session-token-e2e"},
		{"via-pinned", func() int { return len(pinned.Requests()) }, "sk-pinned"},
	}
	for _, f := range firsts {
		for _, stream := range []bool{false, true} {
			t.Run(f.model+"/stream="+strconv.FormatBool(stream), func(t *testing.T) {
				before, seen := f.requests(), len(openai.Requests())
				body := chat(f.model, stream, "")
				r := e.post(t, body, "authorization", "Bearer client-secret", "accept", "application/json")
				if f.requests() != before+1 {
					t.Fatalf("the first backend got %d requests, want 1", f.requests()-before)
				}
				if r.status != 200 || r.err != nil || r.header.Get("x-llmproc-backend") != "openai" {
					t.Fatalf("status %d err %v backend %q body %s", r.status, r.err, r.header.Get("x-llmproc-backend"), r.body)
				}
				if stream {
					events := sseEvents(t, r.body)
					if len(events) == 0 || events[len(events)-1] != "[DONE]" {
						t.Errorf("stream does not end with [DONE]: %v", events)
					}
				} else if got := gjson.GetBytes(r.body, "choices.0.message.content").String(); got != "Hello from fakeopenai." {
					t.Errorf("content %q in %s", got, r.body)
				}
				reqs := openai.Requests()
				if len(reqs) != seen+1 {
					t.Fatalf("OpenAI got %d requests, want 1", len(reqs)-seen)
				}
				got := reqs[len(reqs)-1]
				for name, vs := range got.Header {
					k := strings.ToLower(name)
					for _, bad := range []string{"anthropic-", "x-amz-", "x-goog-", "x-llmproc-", "x-claude-", "x-bedrock-", "x-pinned-"} {
						if strings.HasPrefix(k, bad) {
							t.Errorf("OpenAI received %s: %v", k, vs)
						}
					}
					for _, v := range vs {
						if strings.Contains(v, f.secret) || strings.Contains(v, "client-secret") {
							t.Errorf("OpenAI received a credential not its own in %s", k)
						}
					}
				}
				if a := got.Header.Get("Authorization"); a != "Bearer sk-openai" {
					t.Errorf("authorization %q", a)
				}
				if cl := got.Header.Get("Content-Length"); cl != strconv.Itoa(len(got.Body)) {
					t.Errorf("content-length %q for a %d-byte body", cl, len(got.Body))
				}
				if m := gjson.GetBytes(got.Body, "model").String(); m != f.model {
					t.Errorf("OpenAI was asked for model %q, want the client's %q", m, f.model)
				}
			})
		}
	}
	// The first attempts carried what must not travel on.
	if h := bedrock.Requests()[0].Header; h.Get("X-Amz-Security-Token") != "session-token-e2e" || h.Get("X-Bedrock-Config") != "bedrock-only" {
		t.Errorf("bedrock request headers %v", h)
	}
	if h := claude.Requests()[0].Header; h.Get("Anthropic-Version") == "" || h.Get("X-Api-Key") != "sk-ant" {
		t.Errorf("anthropic request headers %v", h)
	}
	if m := gjson.GetBytes(pinned.Requests()[0].Body, "model").String(); m != "pin" {
		t.Errorf("pinned backend asked for %q", m)
	}
}
