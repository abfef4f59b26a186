package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/redisserver"
)

const convConfig = `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 4194304, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
cache:
  mode: "off"
  tenant_header: x-tenant
  conversations: {ttl: 1h}%s
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
  - {name: claude, schema: anthropic, url: "%s", credential: {env: ANTHROPIC_KEY}}
models:
  - {name: gpt-conv, pool: conv}
  - {name: claude-conv, pool: claude-first}
pools:
  - {name: conv, backends: [{backend: openai, model: gpt-backend}, {backend: claude, model: claude-backend}]}
  - {name: claude-first, backends: [{backend: claude, model: claude-backend}]}
`

type convEnv struct {
	*env
	openai *fakeopenai.Server
	claude *fakeanthropic.Server
}

// startConv runs a stack whose pool conv is [openai, claude]; redis, when
// set, is the shared tier.
func startConv(t *testing.T, redis string, oa *fakeopenai.Server, claude *fakeanthropic.Server) *convEnv {
	t.Helper()
	shared := ""
	if redis != "" {
		shared = fmt.Sprintf("\n  redis: {addr: %q, timeout: 2s}", redis)
	}
	st, accessLog, log := startStack(t, fmt.Sprintf(convConfig, shared, oa.URL(), claude.URL()),
		map[string]string{"OPENAI_KEY": "sk-openai", "ANTHROPIC_KEY": "sk-ant"})
	return &convEnv{env: &env{Stack: st, accessLog: accessLog, log: log}, openai: oa, claude: claude}
}

func newConvFakes(t *testing.T) (*fakeopenai.Server, *fakeanthropic.Server) {
	oa, claude := fakeopenai.New(fakeopenai.Options{}), fakeanthropic.New(fakeanthropic.Options{})
	t.Cleanup(func() { oa.Close(); claude.Close() })
	return oa, claude
}

// respond posts a Responses request for tenant and returns the response
// object: the JSON answer, or a stream's response.completed response.
func (e *env) respond(t *testing.T, tenant, body string) (result, gjson.Result) {
	t.Helper()
	r := e.postPath(t, "/v1/responses", body, "x-tenant", tenant, "authorization", "Bearer client-key")
	if r.status != http.StatusOK || r.err != nil {
		t.Fatalf("POST /v1/responses %s: %d %v %s", body, r.status, r.err, r.body)
	}
	if !strings.HasPrefix(r.header.Get("content-type"), "text/event-stream") {
		return r, gjson.ParseBytes(r.body)
	}
	for _, ev := range namedEvents(t, r.body) {
		if gjson.Get(ev, "type").Str == "response.completed" {
			return r, gjson.Get(ev, "response")
		}
	}
	t.Fatalf("no response.completed in\n%s", r.body)
	return r, gjson.Result{}
}

// stored sends method to /v1/responses/{path} for tenant.
func (e *env) stored(t *testing.T, method, tenant, path string) result {
	t.Helper()
	req, err := http.NewRequest(method, e.URL()+"/v1/responses/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-tenant", tenant)
	return do(t, req)
}

// inputTexts is the text of every message item of a Responses input, in order.
func inputTexts(body []byte) []string {
	var out []string
	for _, it := range gjson.GetBytes(body, "input").Array() {
		c := it.Get("content")
		if c.Type == gjson.String {
			out = append(out, c.Str)
			continue
		}
		for _, p := range c.Array() {
			out = append(out, p.Get("text").Str)
		}
	}
	return out
}

// TestResponsesConversationState: llmproc keeps what it served and expands
// previous_response_id itself, so OpenAI gets the whole conversation every
// turn and never an id; GET /v1/responses/{id} (and /input_items) serves the
// kept response to its tenant only, DELETE removes it; store: false keeps
// nothing; an id llmproc does not keep goes untouched to OpenAI and is a
// 400 in OpenAI's shape for a pool that starts with Anthropic.
func TestResponsesConversationState(t *testing.T) {
	oa, claude := newConvFakes(t)
	e := startConv(t, "", oa, claude)
	oa.Enqueue(fakeopenai.Behaviour{Content: "Nice to meet you, Ada."}, fakeopenai.Behaviour{Content: "Your name is Ada."})

	_, first := e.respond(t, "team-a", `{"model":"gpt-conv","input":"My name is Ada."}`)
	id1 := first.Get("id").Str
	if !strings.HasPrefix(id1, "resp_fake") || first.Get("output.0.content.0.text").Str != "Nice to meet you, Ada." {
		t.Fatalf("first answer %s", first.Raw)
	}
	// The kept response: to its tenant only.
	got := e.stored(t, http.MethodGet, "team-a", id1)
	if got.status != 200 || gjson.GetBytes(got.body, "id").Str != id1 || gjson.GetBytes(got.body, "output.0.content.0.text").Str != "Nice to meet you, Ada." {
		t.Errorf("GET: %d %s", got.status, got.body)
	}
	items := e.stored(t, http.MethodGet, "team-a", id1+"/input_items")
	if items.status != 200 || gjson.GetBytes(items.body, "object").Str != "list" || gjson.GetBytes(items.body, "data.0.content").Str != "My name is Ada." {
		t.Errorf("GET input_items: %d %s", items.status, items.body)
	}
	other := e.stored(t, http.MethodGet, "team-b", id1)
	wantOpenAIError(t, other, http.StatusNotFound, "response_not_found")

	// The next turn names the first; OpenAI gets the whole conversation, streamed.
	r2, second := e.respond(t, "team-a", fmt.Sprintf(`{"model":"gpt-conv","stream":true,"previous_response_id":%q,"input":[{"role":"user","content":"What is my name?"}]}`, id1))
	if r2.header.Get("x-llmproc-backend") != "openai" || second.Get("output.0.content.0.text").Str != "Your name is Ada." {
		t.Fatalf("second answer %s", second.Raw)
	}
	sent := oa.Requests()[1].Body
	if gjson.GetBytes(sent, "previous_response_id").Exists() {
		t.Errorf("OpenAI got the previous_response_id:\n%s", sent)
	}
	want := []string{"My name is Ada.", "Nice to meet you, Ada.", "What is my name?"}
	if got := inputTexts(sent); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("OpenAI's input %q, want %q\n%s", got, want, sent)
	}
	if gjson.GetBytes(sent, "model").Str != "gpt-backend" {
		t.Errorf("model %s", gjson.GetBytes(sent, "model"))
	}

	// OpenAI fails: the conversation goes on on Anthropic, translated, with
	// every earlier turn; its answer is kept under llmproc's id, which the
	// next turn continues from.
	oa.Enqueue(fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"})
	claude.Enqueue(fakeanthropic.Behaviour{Content: "Still Ada."})
	r3, third := e.respond(t, "team-a", fmt.Sprintf(`{"model":"gpt-conv","previous_response_id":%q,"input":"And now?"}`, second.Get("id").Str))
	if r3.header.Get("x-llmproc-backend") != "claude" || responsesText(third) != "Still Ada." {
		t.Fatalf("third answer (%s) %s", r3.header.Get("x-llmproc-backend"), third.Raw)
	}
	toClaude := claude.Requests()[0].Body
	if text := fakeanthropic.Text(toClaude); !strings.Contains(text, "My name is Ada.") || !strings.Contains(text, "What is my name?") || !strings.Contains(text, "And now?") ||
		!strings.Contains(string(toClaude), "Your name is Ada.") {
		t.Errorf("Anthropic did not get the whole conversation:\n%s", toClaude)
	}
	if got := e.stored(t, http.MethodGet, "team-a", third.Get("id").Str); got.status != 200 || responsesText(gjson.ParseBytes(got.body)) != "Still Ada." {
		t.Errorf("GET of the translated answer: %d %s", got.status, got.body)
	}
	oa.Enqueue(fakeopenai.Behaviour{Content: "Back on OpenAI."})
	e.respond(t, "team-a", fmt.Sprintf(`{"model":"gpt-conv","previous_response_id":%q,"input":"Last one."}`, third.Get("id").Str))
	back := oa.Requests()[len(oa.Requests())-1].Body
	if got := inputTexts(back); len(got) != 7 || got[4] != "And now?" || got[5] != "Still Ada." || got[6] != "Last one." {
		t.Errorf("back on OpenAI, the input %q", got)
	}

	// store: false keeps nothing.
	_, unstored := e.respond(t, "team-a", `{"model":"gpt-conv","input":"Forget this.","store":false}`)
	if r := e.stored(t, http.MethodGet, "team-a", unstored.Get("id").Str); r.status != http.StatusNotFound {
		t.Errorf("GET of a store:false response: %d %s", r.status, r.body)
	}

	// An id llmproc does not keep: OpenAI's to resolve, untouched; refused
	// for a pool that starts with Anthropic.
	e.respond(t, "team-a", `{"model":"gpt-conv","input":"Go on.","previous_response_id":"resp_openai_own"}`)
	last := oa.Requests()[len(oa.Requests())-1].Body
	if gjson.GetBytes(last, "previous_response_id").Str != "resp_openai_own" {
		t.Errorf("an unknown id did not reach OpenAI untouched:\n%s", last)
	}
	refused := e.postPath(t, "/v1/responses", `{"model":"claude-conv","input":"Go on.","previous_response_id":"resp_openai_own"}`, "x-tenant", "team-a")
	wantOpenAIError(t, refused, http.StatusBadRequest, "previous_response_not_found")
	if n := len(claude.Requests()); n != 1 {
		t.Errorf("Anthropic got %d requests, want the one failover", n)
	}

	// DELETE: once.
	del := e.stored(t, http.MethodDelete, "team-a", id1)
	if del.status != 200 || gjson.GetBytes(del.body, "deleted").Bool() != true || gjson.GetBytes(del.body, "id").Str != id1 {
		t.Errorf("DELETE: %d %s", del.status, del.body)
	}
	wantOpenAIError(t, e.stored(t, http.MethodGet, "team-a", id1), http.StatusNotFound, "response_not_found")
	wantOpenAIError(t, e.stored(t, http.MethodDelete, "team-a", id1), http.StatusNotFound, "response_not_found")
	cont := e.postPath(t, "/v1/responses", fmt.Sprintf(`{"model":"claude-conv","input":"x","previous_response_id":%q}`, id1), "x-tenant", "team-a")
	wantOpenAIError(t, cont, http.StatusBadRequest, "previous_response_not_found")

	m := e.metrics(t)["llmproc_conversations_total"]
	for ev, n := range map[string]float64{"kept": 5, "expanded": 3, "unknown": 3, "deleted": 1} {
		if got := sum(m, map[string]string{"event": ev}); got != n {
			t.Errorf("llmproc_conversations_total{event=%q} = %v, want %v", ev, got, n)
		}
	}
}

// TestResponsesConversationAcrossReplicas: two replicas share Redis; a
// response kept by one continues on the other, and a delete through the
// other is seen by the first, though its own process still held it.
func TestResponsesConversationAcrossReplicas(t *testing.T) {
	redis := redisserver.Start(t)
	oa, claude := newConvFakes(t)
	a, b := startConv(t, redis.Addr(), oa, claude), startConv(t, redis.Addr(), oa, claude)
	_, first := a.respond(t, "team-a", `{"model":"gpt-conv","input":"My name is Ada."}`)
	id := first.Get("id").Str
	// The write to Redis follows the answer.
	deadline := time.Now().Add(10 * time.Second)
	for b.stored(t, http.MethodGet, "team-a", id).status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("replica b never found replica a's response")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.respond(t, "team-a", fmt.Sprintf(`{"model":"gpt-conv","previous_response_id":%q,"input":"What is my name?"}`, id))
	if got := inputTexts(oa.Requests()[1].Body); len(got) != 3 || got[0] != "My name is Ada." {
		t.Errorf("through replica b OpenAI got %q", got)
	}
	if r := b.stored(t, http.MethodDelete, "team-a", id); r.status != http.StatusOK {
		t.Fatalf("DELETE through b: %d %s", r.status, r.body)
	}
	wantOpenAIError(t, a.stored(t, http.MethodGet, "team-a", id), http.StatusNotFound, "response_not_found")
}

// TestResponsesInputTokens: POST /v1/responses/input_tokens is OpenAI's
// count where the pool starts with OpenAI, llmproc's estimate (marked) where
// it does not; a previous_response_id llmproc keeps is counted expanded.
func TestResponsesInputTokens(t *testing.T) {
	oa, claude := newConvFakes(t)
	e := startConv(t, "", oa, claude)
	_, first := e.respond(t, "team-a", `{"model":"gpt-conv","input":"My name is Ada, and I write programs for the analytical engine."}`)
	body := fmt.Sprintf(`{"model":"%%s","previous_response_id":%q,"input":"What is my name?"}`, first.Get("id").Str)

	fwd := e.postPath(t, "/v1/responses/input_tokens", fmt.Sprintf(body, "gpt-conv"), "x-tenant", "team-a")
	sent := oa.Requests()[1]
	if fwd.status != 200 || sent.Path != "/v1/responses/input_tokens" || fwd.header.Get("x-llmproc-token-count") != "" ||
		gjson.GetBytes(fwd.body, "input_tokens").Int() != int64(fakeopenai.CountTokens(sent.Body)) {
		t.Errorf("forwarded: %d %v %s (OpenAI got %s)", fwd.status, fwd.header, fwd.body, sent.Path)
	}
	if got := inputTexts(sent.Body); len(got) != 3 || gjson.GetBytes(sent.Body, "previous_response_id").Exists() {
		t.Errorf("OpenAI counted %q\n%s", got, sent.Body)
	}
	est := e.postPath(t, "/v1/responses/input_tokens", fmt.Sprintf(body, "claude-conv"), "x-tenant", "team-a")
	n := gjson.GetBytes(est.body, "input_tokens").Int()
	if est.status != 200 || est.header.Get("x-llmproc-token-count") != "estimated" || gjson.GetBytes(est.body, "object").Str != "response.input_tokens" || n < 20 {
		t.Errorf("estimated: %d %v %s", est.status, est.header, est.body)
	}
	if len(claude.Requests()) != 0 || len(oa.Requests()) != 2 {
		t.Errorf("providers got %d and %d requests", len(oa.Requests()), len(claude.Requests()))
	}
}
