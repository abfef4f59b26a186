package harness

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
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

// explicitMode is a fully explicit ProcessingMode (no DEFAULTs).
func explicitMode(reqHdr extprocfilterv3.ProcessingMode_HeaderSendMode, reqBody, respBody extprocfilterv3.ProcessingMode_BodySendMode) *extprocfilterv3.ProcessingMode {
	return &extprocfilterv3.ProcessingMode{
		RequestHeaderMode: reqHdr, ResponseHeaderMode: extprocfilterv3.ProcessingMode_SEND,
		RequestBodyMode: reqBody, ResponseBodyMode: respBody,
		RequestTrailerMode: extprocfilterv3.ProcessingMode_SKIP, ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
	}
}

// TestModeOverrideRules models Filter::onReceiveMessage and
// effectiveModeOverride (source/extensions/filters/http/ext_proc/ext_proc.cc):
// an upstream filter honours a request-headers reply's mode_override when
// allow_mode_override is on; the new mode is the configured one with the
// override's non-DEFAULT header/trailer modes and both its body modes; with
// allowed_override_modes it must match an entry in every field but
// request_header_mode; an override in a body reply is ignored. Request body
// NONE: no request_body message, the provider gets the body unchanged.
func TestModeOverrideRules(t *testing.T) {
	const (
		send     = extprocfilterv3.ProcessingMode_SEND
		skip     = extprocfilterv3.ProcessingMode_SKIP
		none     = extprocfilterv3.ProcessingMode_NONE
		buffered = extprocfilterv3.ProcessingMode_BUFFERED
		streamed = extprocfilterv3.ProcessingMode_STREAMED
	)
	allowedNone := `            allow_mode_override: true
            allowed_override_modes: [{request_header_mode: SEND, response_header_mode: SEND, request_body_mode: NONE, response_body_mode: STREAMED, request_trailer_mode: SKIP, response_trailer_mode: SKIP}]`
	const skipRespHeaders = "{request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SKIP, response_body_mode: STREAMED}"
	tests := []struct {
		name     string
		extra    string
		mode     string // the upstream filter's processing_mode, when not the default
		override *extprocfilterv3.ProcessingMode
		inBody   bool // sent with the request-body reply instead
		// what the upstream filter then sees
		wantReqBody, wantRespHeaders, wantRespBody int
	}{
		{"no allow_mode_override: ignored", "", "", explicitMode(send, none, streamed), false, 1, 1, 1},
		{"allowed, request body NONE", "            allow_mode_override: true", "", explicitMode(send, none, streamed), false, 0, 1, 1},
		{"allow-list match", allowedNone, "", explicitMode(send, none, streamed), false, 0, 1, 1},
		{"allow-list ignores request_header_mode", allowedNone, "", explicitMode(skip, none, streamed), false, 0, 1, 1},
		{"allow-list mismatch: ignored", allowedNone, "", explicitMode(send, none, buffered), false, 1, 1, 1},
		{"DEFAULT header modes keep the configured ones", "            allow_mode_override: true", skipRespHeaders,
			&extprocfilterv3.ProcessingMode{RequestBodyMode: none, ResponseBodyMode: streamed}, false, 0, 0, 1},
		{"an explicit header mode replaces the configured one", "            allow_mode_override: true", skipRespHeaders,
			explicitMode(send, none, streamed), false, 0, 1, 1},
		{"an unset response body mode is NONE", "            allow_mode_override: true", "",
			&extprocfilterv3.ProcessingMode{RequestBodyMode: none}, false, 0, 1, 0},
		// The test config leaves its trailer modes DEFAULT: the effective
		// mode's DEFAULT is compared as such, not as SKIP.
		{"configured DEFAULT trailers do not match an explicit SKIP entry", allowedNone, "",
			&extprocfilterv3.ProcessingMode{RequestBodyMode: none, ResponseBodyMode: streamed}, false, 1, 1, 1},
		{"explicit trailers in the override match it", allowedNone, "",
			&extprocfilterv3.ProcessingMode{RequestBodyMode: none, ResponseBodyMode: streamed, RequestTrailerMode: skip, ResponseTrailerMode: skip}, false, 0, 1, 1},
		{"in a body reply: ignored", "            allow_mode_override: true", "",
			&extprocfilterv3.ProcessingMode{RequestBodyMode: none, ResponseBodyMode: none}, true, 1, 1, 1},
	}
	const orig = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
				if role != "upstream" {
					return routeTo("a", true)(role, req)
				}
				r := continueAll(req)
				if (req.GetRequestHeaders() != nil && !tt.inBody) || (req.GetRequestBody() != nil && tt.inBody) {
					r.ModeOverride = tt.override
				}
				return []*extprocv3.ProcessingResponse{r}, nil
			}}
			a := newUpstream(t, "a", nil)
			e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}, Upstream: true, UpstreamExtra: tt.extra, UpstreamMode: tt.mode}, nil)
			resp, _ := mustDo(t, e, "POST", "/v1/chat/completions", orig, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := a.requests(); len(got) != 1 || got[0].body != orig {
				t.Fatalf("provider got %+v, want the body unchanged", got)
			}
			var reqBody, respHeaders, respBody int
			for _, m := range fp.recorded("upstream")[0].msgs {
				switch {
				case m.GetRequestBody() != nil:
					reqBody++
				case m.GetResponseHeaders() != nil:
					respHeaders++
				case m.GetResponseBody() != nil:
					respBody++
				}
			}
			if reqBody != tt.wantReqBody || respHeaders != tt.wantRespHeaders || respBody != tt.wantRespBody {
				t.Errorf("request_body %d response_headers %d response_body %d messages, want %d %d %d",
					reqBody, respHeaders, respBody, tt.wantReqBody, tt.wantRespHeaders, tt.wantRespBody)
			}
		})
	}
}

// TestModeOverrideSharedHeaderMap: attempts share one request-header map
// (upstream_request.cc), so a first attempt that rewrote the body left its
// content-length there. A second attempt whose headers reply turns the
// request body off sends the original body under whatever content-length
// the map holds when its reply is applied: the stale one truncates it; the
// reply must restore the original's.
func TestModeOverrideSharedHeaderMap(t *testing.T) {
	const orig = `{"model":"m","messages":[{"role":"user","content":"hello there"}]}`
	const first = `{"model":"x"}`
	for _, restore := range []bool{false, true} {
		t.Run(map[bool]string{false: "stale content-length truncates", true: "restored content-length"}[restore], func(t *testing.T) {
			var attempt atomic.Int32
			fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
				if role != "upstream" {
					return routeTo("a", true)(role, req)
				}
				switch {
				case req.GetRequestHeaders() != nil && attempt.Add(1) == 2:
					r := continueAll(req)
					r.ModeOverride = explicitMode(extprocfilterv3.ProcessingMode_SEND, extprocfilterv3.ProcessingMode_NONE, extprocfilterv3.ProcessingMode_STREAMED)
					if restore {
						r.GetRequestHeaders().Response = &extprocv3.CommonResponse{HeaderMutation: setHeaders("content-length", strconv.Itoa(len(orig)))}
					}
					return []*extprocv3.ProcessingResponse{r}, nil
				case req.GetRequestBody() != nil: // attempt 1 only
					return []*extprocv3.ProcessingResponse{reqBodyReply(&extprocv3.CommonResponse{
						HeaderMutation: setHeaders("content-length", strconv.Itoa(len(first))),
						BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(first)}},
					})}, nil
				}
				return []*extprocv3.ProcessingResponse{continueAll(req)}, nil
			}}
			p0 := newUpstream(t, "p0", func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(503) })
			p1 := newUpstream(t, "p1", nil)
			e := start(t, bsParams{
				Proc: startProc(t, fp), PoolA: []endpoint{{p0.addr, 0, "first"}, {p1.addr, 1, "second"}}, Upstream: true,
				UpstreamExtra: "            allow_mode_override: true",
				Retry:         `{retry_on: "retriable-status-codes", retriable_status_codes: [503], num_retries: 1, retry_back_off: {base_interval: 0.001s, max_interval: 0.002s}, retry_priority: {name: envoy.retry_priorities.previous_priorities, typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig, update_frequency: 1}}}`,
			}, nil)
			mustDo(t, e, "POST", "/v1/chat/completions", orig, nil)
			if got := p0.requests(); len(got) != 1 || got[0].body != first {
				t.Fatalf("first attempt got %+v", got)
			}
			want := orig
			if !restore {
				want = orig[:len(first)]
			}
			if got := p1.requests(); len(got) != 1 || got[0].body != want {
				t.Fatalf("second attempt got %+v, want body %q", got, want)
			}
			if n := len(fp.recorded("upstream")[1].msgs); n != 3 { // headers, response headers, response body
				t.Errorf("second attempt sent %d messages, want 3 (no request body)", n)
			}
		})
	}
}
