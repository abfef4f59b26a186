package harness

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestOverrideMessageTimeoutOncePerMessage: Envoy takes at most one
// override_message_timeout per message (ProcessorState::new_timeout_received_,
// source/extensions/filters/http/ext_proc/processor_state.h, reset only when
// the next message's timer starts). The processor shortens the timer to
// 50 ms, asks for an hour, then stays silent: the second override is
// ignored, so the request ends in the per-message timeout's 504 at once
// rather than waiting an hour.
func TestOverrideMessageTimeoutOncePerMessage(t *testing.T) {
	override := func(d time.Duration) *extprocv3.ProcessingResponse {
		return &extprocv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(d)}
	}
	p := &fakeProc{handle: func(string, *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		return []*extprocv3.ProcessingResponse{override(50 * time.Millisecond), override(time.Hour)}, nil
	}}
	u := newUpstream(t, "u", nil)
	e := start(t, bsParams{
		Proc: startProc(t, p), PoolA: []endpoint{{u.addr, 0, "a"}},
		RouterExtra: "              message_timeout: 10s\n              max_message_timeout: 7200s",
	}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // a hang guard, not the assertion
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+e.Addr()+"/v1/chat/completions", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no answer: %v (the second override was honoured)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504 from the per-message timeout", resp.StatusCode)
	}
	if len(u.requests()) != 0 {
		t.Error("the upstream was reached")
	}
}
