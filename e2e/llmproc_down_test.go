package e2e

import (
	"strings"
	"testing"

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
