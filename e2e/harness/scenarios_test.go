package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

func setHeaders(kv ...string) *extprocv3.HeaderMutation {
	m := &extprocv3.HeaderMutation{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.SetHeaders = append(m.SetHeaders, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])}})
	}
	return m
}

func reqBodyReply(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: c}}}
}

// routeTo returns a handler whose router role routes to pool via the body
// reply, optionally with clear_route_cache.
func routeTo(pool string, clear bool) func(string, *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	return func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if role == "router" && req.GetRequestBody() != nil {
			return []*extprocv3.ProcessingResponse{reqBodyReply(&extprocv3.CommonResponse{
				HeaderMutation:  setHeaders("x-llmproc-pool", pool),
				ClearRouteCache: clear,
			})}, nil
		}
		return []*extprocv3.ProcessingResponse{continueAll(req)}, nil
	}
}

func headerValue(m *corev3.HeaderMap, key string) (string, bool) {
	for _, h := range m.GetHeaders() {
		if h.GetKey() == key {
			return string(h.GetRawValue()), true
		}
	}
	return "", false
}

func TestRouteOnHeaderAfterClearRouteCache(t *testing.T) {
	tests := []struct {
		name       string
		clear      bool
		wantStatus int
		wantB      int
		ignored    uint64
	}{
		{"clear honoured", true, 200, 1, 0},
		{"no clear keeps the cached route", false, 404, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := &fakeProc{handle: routeTo("b", tt.clear)}
			a, b := newUpstream(t, "a", nil), newUpstream(t, "b", nil)
			e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}, PoolB: []endpoint{{b.addr, 0, "b"}}}, nil)
			resp, body := mustDo(t, e, "POST", "/v1/chat/completions", `{"model":"m"}`, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if got := len(b.requests()); got != tt.wantB {
				t.Errorf("pool b got %d requests, want %d", got, tt.wantB)
			}
			if len(a.requests()) != 0 {
				t.Errorf("pool a got requests")
			}
		})
	}
}

func TestMessageSequenceAndEncoding(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	a := newUpstream(t, "a", nil)
	e := start(t, bsParams{
		Proc:        startProc(t, fp),
		RouterExtra: "              request_attributes: [request.path, xds.upstream_host_metadata]",
		PoolA:       []endpoint{{a.addr, 0, "backend-a"}},
		Upstream:    true,
	}, nil)
	resp, body := mustDo(t, e, "POST", "/v1/chat/completions?x=1", `{"model":"m"}`, map[string]string{"X-Mixed-Case": "V"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	router := fp.recorded("router")
	if len(router) != 1 || len(router[0].msgs) != 2 {
		t.Fatalf("router streams %+v", router)
	}
	m0, m1 := router[0].msgs[0], router[0].msgs[1]
	if m0.GetProtocolConfig().GetRequestBodyMode() != extprocfilterv3.ProcessingMode_BUFFERED || m1.GetProtocolConfig() != nil {
		t.Errorf("protocol_config: first %v, second %v", m0.GetProtocolConfig(), m1.GetProtocolConfig())
	}
	hs := m0.GetRequestHeaders().GetHeaders()
	for key, want := range map[string]string{":method": "POST", ":path": "/v1/chat/completions?x=1", ":scheme": "http", ":authority": e.Addr(), "x-mixed-case": "V", "content-length": "13"} {
		if got, ok := headerValue(hs, key); !ok || got != want {
			t.Errorf("header %s = %q, %v; want %q", key, got, ok, want)
		}
	}
	for _, h := range hs.GetHeaders() {
		if h.GetValue() != "" {
			t.Errorf("header %s has value set; want raw_value only", h.GetKey())
		}
	}
	attrs := m0.GetAttributes()["envoy.filters.http.ext_proc"].GetFields()
	if attrs["request.path"].GetStringValue() != "/v1/chat/completions?x=1" {
		t.Errorf("attributes %v", attrs)
	}
	if _, ok := attrs["xds.upstream_host_metadata"]; ok {
		t.Errorf("downstream filter got host metadata before a host was chosen")
	}
	if m1.GetAttributes() != nil || !m1.GetRequestBody().GetEndOfStream() || string(m1.GetRequestBody().GetBody()) != `{"model":"m"}` {
		t.Errorf("body message %v", m1)
	}
	if m0.GetMetadataContext() == nil || m1.GetMetadataContext() == nil {
		t.Errorf("metadata_context missing")
	}
	up := fp.recorded("upstream")
	if len(up) != 1 {
		t.Fatalf("upstream streams %d", len(up))
	}
	ua := up[0].msgs[0].GetAttributes()["envoy.filters.http.ext_proc"].GetFields()
	if got := ua["xds.upstream_host_metadata.filter_metadata['llmproc']['backend']"].GetStringValue(); got != "backend-a" {
		t.Errorf("backend attribute %q (all %v)", got, ua)
	}
	if ua["xds.cluster_name"].GetStringValue() != "pool/a" || ua["upstream.address"].GetStringValue() != a.addr {
		t.Errorf("upstream attributes %v", ua)
	}
	// The upstream request's headers carry the router's mutation.
	if v, _ := headerValue(up[0].msgs[0].GetRequestHeaders().GetHeaders(), "x-llmproc-pool"); v != "a" {
		t.Errorf("upstream filter saw x-llmproc-pool %q", v)
	}
	c := e.Counters()
	if c["http.llm.ext_proc.streams_started"] != 1 || c["cluster.pool/aext_proc.streams_started"] != 1 {
		t.Errorf("counters %v", c)
	}
}

func TestUpstreamMutationsReachProvider(t *testing.T) {
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if role == "upstream" && req.GetRequestBody() != nil {
			nb := `{"model":"provider-model"}`
			return []*extprocv3.ProcessingResponse{reqBodyReply(&extprocv3.CommonResponse{
				HeaderMutation: setHeaders(":path", "/openai/v1/chat", "authorization", "Bearer provider", "content-length", "26"),
				BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(nb)}},
			})}, nil
		}
		return routeTo("a", true)(role, req)
	}}
	a := newUpstream(t, "a", nil)
	e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}, Upstream: true}, nil)
	resp, body := mustDo(t, e, "POST", "/v1/chat/completions", `{"model":"m"}`, map[string]string{"Authorization": "Bearer client"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	got := a.requests()[0]
	if got.path != "/openai/v1/chat" || got.header.Get("Authorization") != "Bearer provider" || got.body != `{"model":"provider-model"}` {
		t.Errorf("provider got %+v", got)
	}
}

func TestContentLengthMismatch(t *testing.T) {
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if req.GetRequestBody() != nil {
			return []*extprocv3.ProcessingResponse{reqBodyReply(&extprocv3.CommonResponse{
				HeaderMutation:  setHeaders("x-llmproc-pool", "a"),
				ClearRouteCache: true,
				BodyMutation:    &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("longer body")}},
			})}, nil
		}
		return []*extprocv3.ProcessingResponse{continueAll(req)}, nil
	}}
	// Envoy: ProcessorState::validateContentLength (processor_state.cc),
	// answered by Filter::handleErrorResponse with status_on_error, the
	// error message as details, an empty body and no response flag.
	for _, tt := range []struct {
		extra string
		want  int
	}{{"", 500}, {"              status_on_error: {code: 503}\n              failure_mode_allow: true", 503}} {
		a := newUpstream(t, "a", nil)
		log := newSyncLog()
		e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}, RouterExtra: tt.extra, HCMExtra: flagsLog}, log)
		resp, body := mustDo(t, e, "POST", "/", `{}`, nil)
		if resp.StatusCode != tt.want || body != "" {
			t.Errorf("got %d %q, want an empty %d", resp.StatusCode, body, tt.want)
		}
		want := fmt.Sprintf("%d - mismatch_between_content_length_and_the_length_of_the_mutated_body\n", tt.want)
		if got := log.wait(1); got != want {
			t.Errorf("access log %q, want %q", got, want)
		}
	}
}

func TestImmediateResponse(t *testing.T) {
	tests := []struct {
		name      string
		code      typev3.StatusCode
		wantCode  int
		wantCType string
	}{
		{"429 with json", typev3.StatusCode_TooManyRequests, 429, "application/json"},
		{"below 200 becomes 200", typev3.StatusCode_Continue, 200, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
				return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
					Status:  &typev3.HttpStatus{Code: tt.code},
					Headers: setHeaders("content-type", "application/json", "x-envoy-nope", "1"),
					Body:    []byte(`{"error":{"message":"slow down"}}`),
					Details: "budget exceeded",
				}}}}, nil
			}}
			log := newSyncLog()
			e := start(t, bsParams{
				Proc:     startProc(t, fp),
				HCMExtra: `          access_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog, log_format: {text_format_source: {inline_string: "%RESPONSE_CODE% %RESPONSE_CODE_DETAILS%\n"}}}}]`,
			}, log)
			resp, body := mustDo(t, e, "POST", "/", `{}`, nil)
			if resp.StatusCode != tt.wantCode || body != `{"error":{"message":"slow down"}}` || resp.Header.Get("Content-Type") != tt.wantCType || resp.Header.Get("X-Envoy-Nope") != "" {
				t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
			}
			if want := "budget_exceeded"; !strings.Contains(log.wait(1), want) {
				t.Errorf("access log %q lacks %q", log.wait(0), want)
			}
			if got := e.Counters()["http.llm.ext_proc.rejected_header_mutations"]; got != 1 {
				t.Errorf("rejected_header_mutations = %d", got)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	silent := func(string, *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) { return nil, nil }
	spurious := func(_ string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}}, nil
	}
	grpcErr := func(string, *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		return nil, status.Error(codes.PermissionDenied, "no way")
	}
	closeOK := func(string, *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		return nil, errCloseOK
	}
	tests := []struct {
		name     string
		handle   func(string, *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error)
		extra    string
		want     int
		counter  string
		details  string
		upstream int
	}{
		{"message timeout", silent, "              message_timeout: 0.05s", 504, "http.llm.ext_proc.message_timeouts", "ext_proc_error_per-message_timeout_exceeded", 0},
		{"timeout fail open", silent, "              message_timeout: 0.05s\n              failure_mode_allow: true", 200, "http.llm.ext_proc.failure_mode_allowed", "via_upstream", 1},
		{"spurious", spurious, "", 500, "http.llm.ext_proc.spurious_msgs_received", "spurious_message", 0},
		{"grpc error", grpcErr, "              status_on_error: {code: 503}", 503, "http.llm.ext_proc.streams_failed", "ext_proc_error_gRPC_error_7{no_way}", 0},
		{"clean close continues", closeOK, "", 200, "http.llm.ext_proc.streams_started", "via_upstream", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := &fakeProc{handle: tt.handle}
			a := newUpstream(t, "a", nil)
			log := newSyncLog()
			e := start(t, bsParams{
				Proc: startProc(t, fp), RouterExtra: tt.extra, PoolA: []endpoint{{a.addr, 0, "a"}},
				HCMExtra: `          access_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog, log_format: {text_format_source: {inline_string: "%RESPONSE_CODE_DETAILS%\n"}}}}]`,
			}, log)
			// x-llmproc-pool from the client keeps the cached route on pool a.
			resp, body := mustDo(t, e, "POST", "/", `{}`, map[string]string{"X-Llmproc-Pool": "a"})
			if resp.StatusCode != tt.want {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tt.want)
			}
			if c := e.Counters()[tt.counter]; c != 1 {
				t.Errorf("%s = %d, want 1", tt.counter, c)
			}
			if strings.TrimSpace(log.wait(1)) != tt.details {
				t.Errorf("details %q, want %q", log.wait(0), tt.details)
			}
			if got := len(a.requests()); got != tt.upstream {
				t.Errorf("upstream got %d requests, want %d", got, tt.upstream)
			}
		})
	}
}

func TestRejectedMutations(t *testing.T) {
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if req.GetRequestHeaders() != nil {
			return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{
					SetHeaders: []*corev3.HeaderValueOption{
						{Header: &corev3.HeaderValue{Key: ":authority", RawValue: []byte("evil")}},
						{Header: &corev3.HeaderValue{Key: "x-envoy-retry-on", RawValue: []byte("5xx")}},
						{Header: &corev3.HeaderValue{Key: "host", RawValue: []byte("evil")}},
						{Header: &corev3.HeaderValue{Key: "x-added", Value: "ignored", RawValue: []byte("one")}},
						{Header: &corev3.HeaderValue{Key: "x-added", RawValue: []byte("two")}, Append: wrapBool(true)},
					},
					RemoveHeaders: []string{":path"},
				},
			}}}}}, nil
		}
		return []*extprocv3.ProcessingResponse{continueAll(req)}, nil
	}}
	a := newUpstream(t, "a", nil)
	e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}}, nil)
	resp, _ := mustDo(t, e, "POST", "/p", `{}`, map[string]string{"X-Llmproc-Pool": "a"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := a.requests()[0]
	if got.host == "evil" || got.header.Get("X-Envoy-Retry-On") != "" || got.path != "/p" {
		t.Errorf("disallowed mutation applied: %+v", got)
	}
	if v := got.header.Values("X-Added"); len(v) != 2 || v[0] != "one" || v[1] != "two" {
		t.Errorf("x-added %v", v)
	}
	if c := e.Counters()["http.llm.ext_proc.rejected_header_mutations"]; c != 4 {
		t.Errorf("rejected_header_mutations = %d, want 4", c)
	}
}

func TestModeOverride(t *testing.T) {
	tests := []struct {
		name      string
		allow     bool
		wantBody  int // response_body messages seen by the upstream filter
		wantFirst bool
	}{
		{"allowed: BUFFERED response body", true, 1, true},
		{"not allowed: ignored", false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
				if role == "upstream" && req.GetResponseHeaders() != nil {
					r := continueAll(req)
					r.ModeOverride = &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED, RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED}
					return []*extprocv3.ProcessingResponse{r}, nil
				}
				return routeTo("a", true)(role, req)
			}}
			a := newUpstream(t, "a", func(w http.ResponseWriter, r *http.Request, _ []byte) {
				fl := w.(http.Flusher)
				for _, s := range []string{"one ", "two ", "three"} {
					io.WriteString(w, s) //nolint:errcheck
					fl.Flush()
				}
			})
			extra := ""
			if tt.allow {
				extra = "            allow_mode_override: true"
			}
			e := start(t, bsParams{
				Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}, Upstream: true,
				UpstreamMode:  "{request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SEND, response_body_mode: NONE}",
				UpstreamExtra: extra,
			}, nil)
			_, body := mustDo(t, e, "POST", "/", `{}`, nil)
			if body != "one two three" {
				t.Errorf("body %q", body)
			}
			var n int
			for _, m := range fp.recorded("upstream")[0].msgs {
				if rb := m.GetResponseBody(); rb != nil {
					n++
					if string(rb.GetBody()) != "one two three" || !rb.GetEndOfStream() {
						t.Errorf("buffered body message %v", rb)
					}
				}
			}
			if n != tt.wantBody {
				t.Errorf("response_body messages %d, want %d", n, tt.wantBody)
			}
		})
	}
}

func TestStreamedResponseRewrite(t *testing.T) {
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if role == "upstream" {
			switch {
			case req.GetResponseHeaders() != nil:
				return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
					HeaderMutation: setHeaders("x-llmproc-backend", "a", "content-length", "999"),
				}}}}}, nil
			case req.GetResponseBody() != nil:
				up := strings.ToUpper(string(req.GetResponseBody().GetBody()))
				return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
					BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(up)}},
				}}}}}, nil
			}
		}
		return routeTo("a", true)(role, req)
	}}
	fake := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Content: "hello world", Chunks: 2}})
	t.Cleanup(func() { fake.Close() })
	e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{fake.Addr(), 0, "a"}}, Upstream: true}, nil)
	resp, body := mustDo(t, e, "POST", "/v1/chat/completions", `{"model":"m","stream":true}`, nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Llmproc-Backend") != "a" || resp.ContentLength != -1 {
		t.Errorf("status %d headers %v length %d", resp.StatusCode, resp.Header, resp.ContentLength)
	}
	if !strings.Contains(body, `"CONTENT":"HELLO"`) || !strings.HasSuffix(body, "DATA: [DONE]\n\n") {
		t.Errorf("body %q", body)
	}
	msgs := fp.recorded("upstream")[0].msgs
	last := msgs[len(msgs)-1].GetResponseBody()
	if last == nil || !last.GetEndOfStream() {
		t.Errorf("last message %v, want a response_body with end_of_stream", msgs[len(msgs)-1])
	}
}

// TestStreamedChunkPerRead checks each upstream read becomes one message
// and reaches the client before the next is produced: the upstream writes
// its next chunk only after the ext_proc server has seen the previous one,
// and the client reads each transformed chunk as it comes.
func TestStreamedChunkPerRead(t *testing.T) {
	seen := make(chan string, 10)
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if rb := req.GetResponseBody(); role == "upstream" && rb != nil && len(rb.GetBody()) > 0 {
			seen <- string(rb.GetBody())
			return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
				BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("<" + string(rb.GetBody()) + ">")}},
			}}}}}, nil
		}
		return routeTo("a", true)(role, req)
	}}
	a := newUpstream(t, "a", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range []string{"one", "two", "three"} {
			io.WriteString(w, c) //nolint:errcheck
			w.(http.Flusher).Flush()
			<-seen
		}
	})
	e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}, Upstream: true}, nil)
	resp, err := http.Post("http://"+e.Addr()+"/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{"<one>", "<two>", "<three>"} {
		got := make([]byte, len(want))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	rest, _ := io.ReadAll(br)
	if len(rest) != 0 {
		t.Errorf("trailing %q", rest)
	}
}

func TestStreamCut(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	fake := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Content: "a b c d", Chunks: 4, CutAfter: 2}})
	t.Cleanup(func() { fake.Close() })
	e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{fake.Addr(), 0, "a"}}, Upstream: true}, nil)
	req, _ := http.NewRequest("POST", "http://"+e.Addr()+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	events := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			events++
		}
	}
	if !errors.Is(sc.Err(), io.ErrUnexpectedEOF) {
		t.Errorf("read error %v, want unexpected EOF", sc.Err())
	}
	// Chunks still with the ext_proc server when the upstream resets are
	// lost, as in Envoy, so up to two events arrive.
	if events > 2 {
		t.Errorf("events before the cut %d, want at most 2", events)
	}
}

func TestRetryOntoNextPriority(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	p0 := newUpstream(t, "p0", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.WriteHeader(503)
		io.WriteString(w, "down") //nolint:errcheck
	})
	p1 := newUpstream(t, "p1", nil)
	log := newSyncLog()
	e := start(t, bsParams{
		Proc:     startProc(t, fp),
		PoolA:    []endpoint{{p0.addr, 0, "first"}, {p1.addr, 1, "second"}},
		Upstream: true,
		Retry:    `{retry_on: "retriable-status-codes,connect-failure", retriable_status_codes: [503, 429], num_retries: 2, retry_back_off: {base_interval: 0.001s, max_interval: 0.002s}, retry_priority: {name: envoy.retry_priorities.previous_priorities, typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig, update_frequency: 1}}}`,
		HCMExtra: `          access_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog, log_format: {text_format_source: {inline_string: "%RESPONSE_CODE% %UPSTREAM_HOST% %UPSTREAM_CLUSTER%\n"}}}}]`,
	}, log)
	resp, body := mustDo(t, e, "POST", "/v1/chat/completions", `{"model":"m"}`, nil)
	if resp.StatusCode != 200 || body != `{"from":"p1"}` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if len(p0.requests()) != 1 || len(p1.requests()) != 1 || p1.requests()[0].body != `{"model":"m"}` {
		t.Errorf("p0 %d p1 %d requests", len(p0.requests()), len(p1.requests()))
	}
	up := fp.recorded("upstream")
	if len(up) != 2 {
		t.Fatalf("upstream streams %d, want one per attempt", len(up))
	}
	for i, want := range []string{"first", "second"} {
		got := up[i].msgs[0].GetAttributes()["envoy.filters.http.ext_proc"].GetFields()["xds.upstream_host_metadata.filter_metadata['llmproc']['backend']"].GetStringValue()
		if got != want {
			t.Errorf("attempt %d backend %q, want %q", i, got, want)
		}
		if string(up[i].msgs[1].GetRequestBody().GetBody()) != `{"model":"m"}` {
			t.Errorf("attempt %d body not replayed", i)
		}
	}
	c := e.Counters()
	if c["cluster.pool/a.upstream_rq_retry"] != 1 || c["cluster.pool/a.upstream_rq_total"] != 2 || c["cluster.pool/a.upstream_rq_503"] != 1 {
		t.Errorf("counters %v", c)
	}
	if want := "200 " + p1.addr + " pool/a\n"; log.wait(1) != want {
		t.Errorf("access log %q, want %q", log.wait(0), want)
	}
}

// TestRetriesExhausted: the last upstream answer is passed on (URX set, but
// no local reply, so no mapper applies); retries ending in connect failures
// make a local reply, which an and_filter of flags and a request header
// selects and a json_format value mixing text and operators renders as one
// string.
func TestRetriesExhausted(t *testing.T) {
	tests := []struct {
		name      string
		handler   func(http.ResponseWriter, *http.Request, []byte)
		dead      bool
		want      int
		wantFlags string
		wantBody  string
	}{
		{"last upstream response forwarded", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			w.WriteHeader(503)
			io.WriteString(w, "busy") //nolint:errcheck
		}, false, 503, "URX", "busy"},
		{"connect failure", nil, true, 503, "UF,URX",
			`{"error":{"code":"pool_exhausted","message":"pool \"a\" after 2 attempts: upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure (upstream_reset_before_response_started{connection_failure}; -)"}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := &fakeProc{handle: routeTo("a", true)}
			u := newUpstream(t, "u", tt.handler)
			addr := u.addr
			if tt.dead {
				addr = "127.0.0.1:1"
			}
			log := newSyncLog()
			e := start(t, bsParams{
				Proc: startProc(t, fp), PoolA: []endpoint{{addr, 0, "a"}},
				Retry: `{retry_on: "5xx", num_retries: 1, retry_back_off: {base_interval: 0.001s}}`,
				HCMExtra: `          access_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog, log_format: {text_format_source: {inline_string: "%RESPONSE_FLAGS%\n"}}}}]
          local_reply_config:
            mappers:
            - filter: {and_filter: {filters: [{response_flag_filter: {flags: [UH, UF, URX]}}, {header_filter: {header: {name: x-llmproc-pool, present_match: true}}}]}}
              body_format_override: {json_format: {error: {code: pool_exhausted, message: 'pool "%REQ(x-llmproc-pool)%" after %UPSTREAM_REQUEST_ATTEMPT_COUNT% attempts: %LOCAL_REPLY_BODY% (%RESPONSE_CODE_DETAILS%; %REQ(x-absent)%)'}}}`,
			}, log)
			resp, body := mustDo(t, e, "POST", "/", `{}`, nil)
			if resp.StatusCode != tt.want || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.want, tt.wantBody)
			}
			if strings.TrimSpace(log.wait(1)) != tt.wantFlags {
				t.Errorf("flags %q, want %q", log.wait(0), tt.wantFlags)
			}
			if c := e.Counters()["cluster.pool/a.upstream_rq_total"]; c != 2 {
				t.Errorf("attempts %d, want 2", c)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	fake := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { fake.Close() })
	fake.Enqueue(fakeopenai.Behaviour{Status: 429, Header: http.Header{"Retry-After": {"1"}}})
	e := start(t, bsParams{
		Proc: startProc(t, fp), PoolA: []endpoint{{fake.Addr(), 0, "a"}},
		Retry: `{retry_on: retriable-status-codes, retriable_status_codes: [429], num_retries: 1, rate_limited_retry_back_off: {reset_headers: [{name: retry-after, format: SECONDS}], max_interval: 5s}}`,
	}, nil)
	start := time.Now()
	resp, body := mustDo(t, e, "POST", "/v1/chat/completions", `{"model":"m"}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	// The counter, not a clock, says which back-off was used; the elapsed
	// time is only a sanity check that the retry did wait.
	if c := e.Counters()["cluster.pool/a.upstream_rq_retry_backoff_ratelimited"]; c != 1 {
		t.Errorf("ratelimited back-offs %d, want 1", c)
	}
	if time.Since(start) < time.Second {
		t.Errorf("retry did not wait for retry-after")
	}
}

func TestOutlierEjectionSpillsToNextPriority(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	p0 := newUpstream(t, "p0", func(w http.ResponseWriter, _ *http.Request, _ []byte) { w.WriteHeader(502) })
	p1 := newUpstream(t, "p1", nil)
	e := start(t, bsParams{
		Proc: startProc(t, fp), PoolA: []endpoint{{p0.addr, 0, "a"}, {p1.addr, 1, "b"}},
		PoolAExtra: "\n    outlier_detection: {consecutive_gateway_failure: 2, enforcing_consecutive_gateway_failure: 100, max_ejection_percent: 100, base_ejection_time: 60s}",
	}, nil)
	var codes []int
	for range 3 {
		resp, _ := mustDo(t, e, "POST", "/", `{}`, nil)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 502 || codes[1] != 502 || codes[2] != 200 {
		t.Errorf("codes %v, want [502 502 200]", codes)
	}
	if c := e.Counters()["cluster.pool/a.outlier_detection.ejections_enforced_total"]; c != 1 {
		t.Errorf("ejections %d", c)
	}
}

func TestDynamicMetadataFiltering(t *testing.T) {
	md, _ := structpb.NewStruct(map[string]any{"llmproc": map[string]any{"model": "gpt"}, "other": map[string]any{"k": "v"}})
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		rs, _ := routeTo("a", true)(role, req)
		if req.GetRequestBody() != nil {
			rs[0].DynamicMetadata = md
		}
		return rs, nil
	}}
	a := newUpstream(t, "a", nil)
	log := newSyncLog()
	e := start(t, bsParams{
		Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}, Upstream: true,
		RouterExtra:   "              metadata_options: {receiving_namespaces: {untyped: [llmproc]}}",
		UpstreamExtra: "            metadata_options: {receiving_namespaces: {untyped: [llmproc]}}",
		HCMExtra:      `          access_log: [{name: envoy.access_loggers.stdout, typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog, log_format: {json_format: {code: "%RESPONSE_CODE%", model: "%DYNAMIC_METADATA(llmproc:model)%", other: "%DYNAMIC_METADATA(other:k)%"}}}}]`,
	}, log)
	mustDo(t, e, "POST", "/", `{}`, nil)
	if want := `{"code":200,"model":"gpt","other":null}` + "\n"; log.wait(1) != want {
		t.Errorf("access log %q, want %q", log.wait(0), want)
	}
}

func TestLocalReplies(t *testing.T) {
	fp := &fakeProc{handle: func(_ string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		return []*extprocv3.ProcessingResponse{continueAll(req)}, nil
	}}
	a := newUpstream(t, "a", nil)
	e := start(t, bsParams{
		Proc: startProc(t, fp), PoolA: []endpoint{{a.addr, 0, "a"}}, BufferLimit: 64,
		HCMExtra: `          local_reply_config:
            mappers:
            - filter: {status_code_filter: {comparison: {op: EQ, value: {default_value: 404, runtime_key: k}}}}
              body_format_override: {json_format: {error: {message: "%LOCAL_REPLY_BODY%", code: "%RESPONSE_CODE%", flags: "%RESPONSE_FLAGS%"}}}
            - filter: {response_flag_filter: {flags: [UH]}}
              status_code: 502
              body_format_override: {text_format_source: {inline_string: "%RESPONSE_CODE_DETAILS%: %LOCAL_REPLY_BODY%"}}`,
	}, nil)
	tests := []struct {
		name, path, body string
		hdr              map[string]string
		want             int
		wantBody         string
		wantCT           string
	}{
		{"no route", "/x", `{}`, nil, 404, `{"error":{"code":404,"flags":"NR","message":""}}` + "\n", "application/json"},
		{"direct response", "/direct", `{}`, nil, 418, "teapot", "text/plain"},
		{"request over the buffer limit", "/", strings.Repeat("x", 100), map[string]string{"X-Llmproc-Pool": "a"}, 413, "Payload Too Large", "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := mustDo(t, e, "POST", tt.path, tt.body, tt.hdr)
			if resp.StatusCode != tt.want || body != tt.wantBody || resp.Header.Get("Content-Type") != tt.wantCT {
				t.Errorf("got %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestUnsupportedConfigFails(t *testing.T) {
	base := string(renderBootstrap(t, bsParams{Proc: "127.0.0.1:1", PoolA: []endpoint{{"127.0.0.1:2", 0, "a"}}, RouterFilterOn: true}))
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown http filter", "- name: envoy.filters.http.router\n", "- name: envoy.filters.http.cors\n            typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec}\n          - name: envoy.filters.http.router\n", "unsupported"},
		{"unimplemented matcher", "string_match: {exact: a}", "range_match: {start: 1, end: 2}", "range_match"},
		{"unimplemented route field", "route: {cluster: pool/b,", "route: {cluster: pool/b, priority: HIGH,", "priority"},
		{"ext_proc over HTTP/1", "explicit_http_config: {http2_protocol_options: {}}", "explicit_http_config: {http_protocol_options: {}}", "HTTP/2"},
		{"unsupported body mode", "request_body_mode: BUFFERED", "request_body_mode: FULL_DUPLEX_STREAMED", "FULL_DUPLEX"},
		{"per-host circuit breakers", "  - name: ext_proc\n    type: STATIC", "  - name: ext_proc\n    type: STATIC\n    circuit_breakers: {per_host_thresholds: [{max_connections: 1}]}", "per_host_thresholds"},
		{"connection pool circuit breaker", "  - name: ext_proc\n    type: STATIC", "  - name: ext_proc\n    type: STATIC\n    circuit_breakers: {thresholds: [{max_connection_pools: 1}]}", "max_connection_pools"},
		{"unknown command operator", "stat_prefix: llm", "stat_prefix: llm\n          access_log: [{name: x, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog, log_format: {text_format: \"%BOGUS%\"}}}]", "BOGUS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(base, tt.old, tt.new, 1)
			if y == base {
				t.Fatalf("replacement %q not found", tt.old)
			}
			bs, err := LoadBootstrapYAML([]byte(y))
			if err != nil {
				t.Fatal(err)
			}
			e, err := Start(t.Context(), bs, Options{ListenAddr: "127.0.0.1:0"})
			if err == nil {
				e.Close() //nolint:errcheck
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

// Envoy names ext_proc counters <scope>ext_proc.<stat_prefix><counter>,
// appending the filter's stat_prefix without a dot
// (FilterConfig::generateStats in source/extensions/filters/http/ext_proc/
// ext_proc.h): the HCM's http.<stat_prefix>. scope downstream, the cluster's
// "cluster.<name>" scope name upstream (ClusterInfoImpl's upstream filter
// chain in source/common/upstream/upstream_impl.cc), which gives names like
// the cluster.<route>ext_proc.streams_started Envoy deployments report.
func TestExtProcStatNames(t *testing.T) {
	u := newUpstream(t, "u", nil)
	e := start(t, bsParams{
		Proc: startProc(t, &fakeProc{handle: routeTo("a", true)}), PoolA: []endpoint{{u.addr, 0, "a"}}, Upstream: true,
		RouterExtra: "              stat_prefix: router", UpstreamExtra: "            stat_prefix: upstream",
	}, nil)
	mustDo(t, e, "POST", "/", `{}`, nil)
	c := e.Counters()
	for _, name := range []string{"http.llm.ext_proc.routerstreams_started", "cluster.pool/aext_proc.upstreamstreams_started"} {
		if c[name] != 1 {
			t.Errorf("%s = %d, want 1 (counters %v)", name, c[name], c)
		}
	}
}

// In STREAMED body mode Envoy sends the headers message with
// content-length and only then removes it from the headers it passes on
// (Filter::encodeHeaders in source/extensions/filters/http/ext_proc/
// ext_proc.cc: onHeaders, then removeContentLength).
func TestStreamedResponseContentLengthSeenThenRemoved(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	u := newUpstream(t, "u", nil)
	e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{u.addr, 0, "a"}}, Upstream: true}, nil)
	resp, body := mustDo(t, e, "POST", "/", `{}`, nil)
	if resp.StatusCode != 200 || body != `{"from":"u"}` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.ContentLength != -1 {
		t.Errorf("client got content-length %d, want none", resp.ContentLength)
	}
	var seen string
	for _, m := range fp.recorded("upstream")[0].msgs {
		if rh := m.GetResponseHeaders(); rh != nil {
			seen, _ = headerValue(rh.GetHeaders(), "content-length")
		}
	}
	if seen != "12" {
		t.Errorf("processor saw content-length %q, want 12", seen)
	}
}

// Envoy 1.37 closes an ext_proc stream once no further message is expected,
// except after a BUFFERED body (isLastBodyResponse and
// closeGrpcStreamIfLastRespReceived in source/extensions/filters/http/
// ext_proc/ext_proc.cc): the router-role stream (BUFFERED request, response
// SKIP) stays open until the filter is destroyed, after the response.
func TestBufferedStreamOpenUntilResponseEnds(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	var openDuringUpstream atomic.Bool
	u := newUpstream(t, "u", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		select {
		case <-fp.recorded("router")[0].ended:
		default:
			openDuringUpstream.Store(true)
		}
		io.WriteString(w, "ok") //nolint:errcheck
	})
	e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{u.addr, 0, "a"}}}, nil)
	if resp, _ := mustDo(t, e, "POST", "/", `{}`, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !openDuringUpstream.Load() {
		t.Error("the router-role stream was closed before the upstream answered")
	}
	<-fp.recorded("router")[0].ended // closed once the request is over
}

// A BUFFERED body within Envoy's buffer limit goes to the processor as one
// message, however it arrived: above the server's gRPC receive limit the
// stream fails (RESOURCE_EXHAUSTED) and Envoy answers an empty 500 naming
// the gRPC error (Filter::onGrpcError in source/extensions/filters/http/
// ext_proc/ext_proc.cc); above the buffer limit the HCM answers 413
// (request_payload_too_large, source/common/http/filter_manager.cc).
func TestBodyAboveProcessorReceiveLimit(t *testing.T) {
	fp := &fakeProc{handle: routeTo("a", true)}
	u := newUpstream(t, "u", nil)
	log := newSyncLog()
	e := start(t, bsParams{Proc: startProc(t, fp), PoolA: []endpoint{{u.addr, 0, "a"}}, BufferLimit: 8 << 20, HCMExtra: flagsLog}, log)
	for _, tt := range []struct {
		size        int
		want        int
		wantDetails string
	}{
		{5 << 20, 500, "500 - ext_proc_error_gRPC_error_8{grpc:_received_message_larger_than_max_"},
		{9 << 20, 413, "413 - request_payload_too_large"},
	} {
		req, _ := http.NewRequest("POST", "http://"+e.Addr()+"/", io.NopCloser(strings.NewReader(strings.Repeat("x", tt.size)))) // no length: chunked
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || (tt.want == 500 && len(body) != 0) {
			t.Errorf("%d bytes: got %d %q", tt.size, resp.StatusCode, body)
		}
		if got := log.wait(1); !strings.Contains(got, tt.wantDetails) {
			t.Errorf("%d bytes: access log %q lacks %q", tt.size, got, tt.wantDetails)
		}
	}
}
