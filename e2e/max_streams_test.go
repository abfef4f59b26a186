package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// TestMaxStreams: with limits.max_streams 2, one streaming request holds
// both (its router stream and its upstream attempt's stream stay open while
// the answer streams). A second request meanwhile gets llmproc's 503 in its
// API shape with retry-after, through Envoy's local reply, and never reaches
// a provider; once the first request ends, requests are served again.
func TestMaxStreams(t *testing.T) {
	e := &env{primary: fakeopenai.New(fakeopenai.Options{}), secondary: fakeopenai.New(fakeopenai.Options{})}
	t.Cleanup(func() { e.primary.Close(); e.secondary.Close() })
	cfg := strings.Replace(fmt.Sprintf(configTemplate, e.primary.URL(), e.secondary.URL()),
		"limits: {max_request_bytes: 65536,", "limits: {max_streams: 2, max_request_bytes: 65536,", 1)
	e.Stack, e.accessLog, e.log = startStack(t, cfg, map[string]string{"PRIMARY_KEY": "sk-primary", "SECONDARY_KEY": "sk-secondary"})

	// The first answer's second event waits until the client goes away.
	e.primary.Enqueue(fakeopenai.Behaviour{ChunkDelay: time.Hour})
	req, err := http.NewRequest(http.MethodPost, e.URL()+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello there"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	held, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if held.StatusCode != 200 {
		t.Fatalf("held request: status %d", held.StatusCode)
	}
	// Its first event has passed both filters: both streams are open.
	if line, err := bufio.NewReader(held.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("held request's first event: %q, %v", line, err)
	}

	r := e.post(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	wantOpenAIError(t, r, 503, "overloaded")
	if got := gjson.GetBytes(r.body, "error.type").String(); got != "server_error" {
		t.Errorf("error.type %q", got)
	}
	if r.header.Get("retry-after") != "1" || r.header.Get("x-llmproc-request-id") == "" {
		t.Errorf("headers %v", r.header)
	}
	if !strings.Contains(gjson.GetBytes(r.body, "error.message").String(), "limits.max_streams") {
		t.Errorf("message does not name the limit: %s", r.body)
	}
	// An Anthropic client gets Anthropic's overload error.
	ar := e.postPath(t, "/v1/messages", `{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`)
	wantAnthropicError(t, ar, 503, "overloaded_error")
	if n := len(e.primary.Requests()) + len(e.secondary.Requests()); n != 1 {
		t.Errorf("providers saw %d requests, want only the held one", n)
	}

	held.Body.Close() // the client goes away: Envoy ends both streams
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.post(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
		if r.status == 200 {
			break
		}
		if r.status != 503 || time.Now().After(deadline) {
			t.Fatalf("after the held request ended: %d %s", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond) // its streams are still closing
	}
	m := e.metrics(t)
	var refused float64
	for _, s := range m["llmproc_extproc_streams_refused_total"] {
		refused += s.value
	}
	if refused < 2 {
		t.Errorf("llmproc_extproc_streams_refused_total = %v, want at least 2", refused)
	}
}
