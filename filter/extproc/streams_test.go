package extproc

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"
)

// TestMaxStreams: with limits.max_streams open, a further stream of either
// role is answered at once with a 503 in the client's API shape, with
// retry-after and the request id, and counted; once a stream ends, the next
// one is served.
func TestMaxStreams(t *testing.T) {
	rt := testRuntime(t, 4096)
	rt.Source.Limits.MaxStreams = 2
	h := newHarnessFor(t, rt, nil)
	// Two streams held open: a router mid-request and an upstream attempt.
	held := h.stream(RoleRouter)
	roundTrip(t, held, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json"), nil))
	held2 := h.stream(RoleUpstream)
	roundTrip(t, held2, withDecisions(reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions", "x-llmproc-pool", "cheap"),
		map[string]string{AttrBackend: "primary"}), map[string]string{KeyPool: "cheap", KeyClient: clientOpenAI}))

	tests := []struct {
		name, role, path, client string
		wantType                 string // the error's type in the client's shape
		typePath                 string
	}{
		{"openai router", RoleRouter, "/v1/chat/completions", "", "server_error", "error.type"},
		{"anthropic router", RoleRouter, "/v1/messages", "", "overloaded_error", "error.type"},
		{"gemini router", RoleRouter, "/v1beta/models/gemini-2.5-flash:generateContent", "", "UNAVAILABLE", "error.status"},
		// A retried attempt's :path may be the previous backend's; the
		// router's decision says the client speaks Anthropic.
		{"anthropic upstream", RoleUpstream, "/v1/chat/completions", clientAnthropic, "overloaded_error", "error.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.stream(tt.role)
			req := reqHeaders(hdrs(false, ":method", "POST", ":path", tt.path, "x-request-id", "req-over"), nil)
			if tt.client != "" {
				req = withDecisions(req, map[string]string{KeyClient: tt.client})
			}
			im := roundTrip(t, s, req).GetImmediateResponse()
			if im == nil {
				t.Fatal("no immediate response")
			}
			if im.GetStatus().GetCode() != 503 {
				t.Errorf("status %d, want 503", im.GetStatus().GetCode())
			}
			if got := gjson.GetBytes(im.GetBody(), tt.typePath).String(); got != tt.wantType {
				t.Errorf("%s = %q, want %q in %s", tt.typePath, got, tt.wantType, im.GetBody())
			}
			if !strings.Contains(string(im.GetBody()), "limits.max_streams") {
				t.Errorf("body does not name the limit: %s", im.GetBody())
			}
			set := map[string]string{}
			for _, hv := range im.GetHeaders().GetSetHeaders() {
				set[hv.Header.Key] = string(hv.Header.RawValue)
			}
			if set["retry-after"] != "1" || set[HeaderRequestID] != "req-over" || set["content-type"] != "application/json" {
				t.Errorf("headers %v", set)
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				t.Errorf("after the refusal: %v, want the stream's clean end", err)
			}
		})
	}
	want := `# HELP llmproc_extproc_streams_refused_total ext_proc streams answered with a 503 at once because limits.max_streams were open, by role.
# TYPE llmproc_extproc_streams_refused_total counter
llmproc_extproc_streams_refused_total{role="router"} 3
llmproc_extproc_streams_refused_total{role="upstream"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "llmproc_extproc_streams_refused_total"); err != nil {
		t.Error(err)
	}

	// One held stream ends; the next is served.
	if err := held.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := held.Recv(); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	s := h.stream(RoleRouter)
	resp := roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json"), nil))
	if resp.GetImmediateResponse() != nil {
		t.Fatalf("after a stream ended: %v", resp)
	}
	_ = held2.CloseSend()
}
