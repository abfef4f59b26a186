package e2e

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/envoy"
)

// TestLLMProcDown: with llmproc stopped, Envoy's router-role ext_proc stream
// cannot open and Envoy answers itself (ext_proc onGrpcError: status 500,
// details ext_proc_error_gRPC_error_14{…}, empty body, no response flag).
// The rendered local_reply_config turns that into a 503 saying llmproc was
// unreachable: OpenAI's error shape for Chat Completions, Anthropic's for
// /v1/messages, told from the path since the router role never ran.
func TestLLMProcDown(t *testing.T) {
	e := start(t)
	if r := e.post(t, chat("gpt-4o-mini", false, "")); r.status != 200 {
		t.Fatalf("before the stop: %d %s", r.status, r.body)
	}
	if err := e.StopLLMProc(); err != nil {
		t.Fatalf("stopping llmproc: %v", err)
	}
	for _, stream := range []bool{false, true} {
		r := e.post(t, chat("gpt-4o-mini", stream, ""))
		wantOpenAIError(t, r, 503, envoy.CodeLLMProcUnavailable)
		if !strings.Contains(string(r.body), "could not reach llmproc") || !strings.Contains(string(r.body), "ext_proc_error_gRPC_error_14") {
			t.Errorf("message does not say llmproc was unreachable: %s", r.body)
		}
	}
	msg := wantAnthropicError(t, postMessages(t, e.URL(), messagesBody), 503, "api_error")
	if !strings.Contains(msg, "could not reach llmproc") {
		t.Errorf("Anthropic message %q", msg)
	}
	if got := len(e.primary.Requests()) + len(e.secondary.Requests()); got != 1 {
		t.Errorf("providers saw %d requests, want only the one before the stop", got)
	}
}

// TestLLMProcDraining: while llmproc drains (SIGTERM: NOT_SERVING, then a
// graceful stop within limits.shutdown_grace), the answer in flight
// finishes, and a new request, whose ext_proc stream llmproc no longer
// takes, gets the same 503 llmproc_unavailable instead of Envoy's empty 500.
func TestLLMProcDraining(t *testing.T) {
	e := start(t)
	e.primary.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: "one two three four five six", ChunkDelay: 150 * time.Millisecond}
	})
	inflight := make(chan result, 1)
	go func() { // not through e.post: t.Fatal belongs to the test goroutine
		resp, err := http.Post(e.URL()+"/v1/chat/completions", "application/json", strings.NewReader(chat("gpt-4o-mini", true, "")))
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		inflight <- result{status: resp.StatusCode, body: b, err: err}
	}()
	// Waits bounded by hangGuard, which only turns a hang into a failure.
	until(t, "the provider has the request", func() bool { return len(e.primary.Requests()) > 0 })
	stopped := make(chan error, 1)
	go func() { stopped <- e.StopLLMProc() }()
	// GracefulStop closes llmproc's listener at once.
	until(t, "llmproc's gRPC listener is closed", func() bool {
		c, err := net.Dial("tcp", e.LLMProc.GRPC)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	r := e.post(t, chat("gpt-4o-mini", false, ""))
	wantOpenAIError(t, r, 503, envoy.CodeLLMProcUnavailable)
	if got := <-inflight; got.err != nil || got.status != 200 || !strings.Contains(string(got.body), "[DONE]") {
		t.Errorf("the answer in flight: %d %s (%v)", got.status, got.body, got.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("llmproc stop: %v", err)
	}
}

// hangGuard bounds until's waits; it is never what a test asserts.
const hangGuard = 30 * time.Second

// until waits for cond, failing the test if it does not hold within hangGuard.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
