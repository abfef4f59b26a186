package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"
)

// chatBody is a 2 KB chat completion request with a system prompt and a few
// turns; it asks for a stream without stream_options.
//
//go:embed testdata/chat_2k.json
var chatBody []byte

// Answer kinds.
const (
	answerJSON = "json" // one application/json body chunk
	answerSSE  = "sse"  // an SSE stream, one OpenAI chunk event per body message
)

// sseEvents is how many body messages the SSE answer has: a role chunk,
// content chunks, a finish chunk, the usage chunk and [DONE].
const sseEvents = 50

// attrsKey is where Envoy puts the attributes a filter asked for.
const attrsKey = "envoy.filters.http.ext_proc"

// workload is one answer kind's prebuilt ext_proc messages, shared read-only
// by all workers, and what llmproc is expected to answer.
type workload struct {
	answer string
	// check turns on llmproc's expectations; without it (the noop floor)
	// only the reply types are checked.
	check bool

	routerCtx, upstreamCtx metadata.MD

	routerHeaders, routerBody *extprocv3.ProcessingRequest
	upHeaders, upBody         *extprocv3.ProcessingRequest
	respHeaders               *extprocv3.ProcessingRequest
	respBody                  []*extprocv3.ProcessingRequest

	wantPool    string
	wantBackend string
	// wantChunk is what the client should receive for each response body
	// message: the usage chunk llmproc asked for is removed from the stream.
	wantChunk [][]byte
}

// newWorkload builds the messages Envoy would send for one request answered
// with kind, routed by rt (the llmproc config's topology). check says whether
// the replies must carry llmproc's mutations.
func newWorkload(kind string, rt *config.Runtime, check bool) (*workload, error) {
	body := slices.Clone(chatBody)
	model := gjson.GetBytes(body, "model").String()
	d, ok := rt.Resolve(model)
	if !ok {
		return nil, fmt.Errorf("the config routes no pool for model %q (the driver's request body)", model)
	}
	if len(d.Pool.Members) == 0 {
		return nil, fmt.Errorf("pool %q has no backends", d.Pool.Name)
	}
	backend := d.Pool.Members[0].Backend.Name
	w := &workload{
		answer:      kind,
		check:       check,
		routerCtx:   metadata.Pairs("x-llmproc-role", extproc.RoleRouter),
		upstreamCtx: metadata.Pairs("x-llmproc-role", extproc.RoleUpstream),
		wantPool:    d.Pool.Name,
		wantBackend: backend,
	}
	var (
		chunks [][]byte
		ctype  string
		err    error
	)
	switch kind {
	case answerJSON:
		if body, err = sjson.SetBytes(body, "stream", false); err != nil {
			return nil, err
		}
		chunks, ctype = [][]byte{jsonAnswer()}, "application/json"
		w.wantChunk = chunks
	case answerSSE:
		chunks, ctype = sseAnswer(sseEvents), "text/event-stream; charset=utf-8"
		// The client did not ask for usage: llmproc asks, then strips the
		// usage chunk (the second to last) before it reaches the client.
		w.wantChunk = slices.Clone(chunks)
		w.wantChunk[len(chunks)-2] = nil
	default:
		return nil, fmt.Errorf("unknown answer %q (want json or sse)", kind)
	}

	w.routerHeaders = &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: clientHeaders(len(body))},
		ProtocolConfig: &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: extprocfilterv3.ProcessingMode_NONE,
		},
	}
	w.routerBody = bodyMsg(body)

	// Envoy has routed on x-llmproc-pool and picked the pool's first
	// backend; the upstream filter sees the request as the router left it,
	// and the router's decisions in the metadata context.
	uh := clientHeaders(len(body))
	uh.Headers.Headers = slices.DeleteFunc(uh.Headers.Headers, func(h *corev3.HeaderValue) bool { return h.Key == extproc.HeaderPool })
	uh.Headers.Headers = append(uh.Headers.Headers, &corev3.HeaderValue{Key: extproc.HeaderPool, RawValue: []byte(d.Pool.Name)})
	w.upHeaders = &extprocv3.ProcessingRequest{
		MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{extproc.MetadataNamespace: {Fields: map[string]*structpb.Value{
			extproc.KeyPool: structpb.NewStringValue(d.Pool.Name), extproc.KeyRoute: structpb.NewStringValue(d.Route),
			extproc.KeyClient: structpb.NewStringValue("openai"),
		}}}},
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: uh},
		ProtocolConfig: &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED,
		},
		Attributes: map[string]*structpb.Struct{attrsKey: {Fields: map[string]*structpb.Value{
			extproc.AttrBackend: structpb.NewStringValue(backend),
			extproc.AttrCluster: structpb.NewStringValue("pool/" + d.Pool.Name),
		}}},
	}
	w.upBody = bodyMsg(body)
	w.respHeaders = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headerMap(false,
		":status", "200", "content-type", ctype, "date", "Tue, 14 Jul 2026 10:00:00 GMT",
		"x-request-id", "req_0b3c5d7e1f2a4b6c", "openai-processing-ms", "212", "openai-version", "2020-10-01",
		"x-ratelimit-remaining-requests", "9999", "x-ratelimit-remaining-tokens", "1999512")}}
	for i, c := range chunks {
		w.respBody = append(w.respBody, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
			ResponseBody: &extprocv3.HttpBody{Body: c, EndOfStream: i == len(chunks)-1}}})
	}
	return w, nil
}

// clientHeaders is a chat completion request as an OpenAI SDK sends it, plus
// one forged x-llmproc-pool the router must remove.
func clientHeaders(size int) *extprocv3.HttpHeaders {
	return headerMap(false,
		":method", "POST", ":path", "/v1/chat/completions", ":authority", "llm.internal", ":scheme", "http",
		"content-type", "application/json", "content-length", strconv.Itoa(size),
		"authorization", "Bearer sk-client", "user-agent", "OpenAI/Python 1.99.0", "accept", "application/json",
		"x-stainless-lang", "python", "x-request-id", "0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f",
		"x-forwarded-proto", "http", extproc.HeaderPool, "forged")
}

// headerMap builds ext_proc headers the way Envoy sends them: lowercase keys,
// values in raw_value.
func headerMap(eos bool, kv ...string) *extprocv3.HttpHeaders {
	m := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return &extprocv3.HttpHeaders{Headers: m, EndOfStream: eos}
}

func bodyMsg(b []byte) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: b, EndOfStream: true}}}
}

// jsonAnswer is a non-streamed chat completion of about 1 KB.
func jsonAnswer() []byte {
	return []byte(`{"id":"chatcmpl-load","object":"chat.completion","created":1760000000,"model":"gpt-4o-mini-2024-07-18",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Yes. Set request_body_buffer_limit on the two upload routes ` +
		`and keep per_connection_buffer_limit_bytes at its default for the listener, so the large buffer is only reserved ` +
		`where uploads happen. Route-level limits apply per request, so the other thirty-eight routes keep the 1 MiB ` +
		`connection limit and a slow client on them cannot pin megabytes of memory. Check that your Envoy version has the ` +
		`field (it is newer than the deprecated per_request_buffer_limit_bytes) with envoy --mode validate before rolling it ` +
		`out, and raise the upstream retry buffer to match, or retries of large uploads will be abandoned.",` +
		`"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":482,"completion_tokens":118,"total_tokens":600,` +
		`"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
		`"service_tier":"default","system_fingerprint":"fp_load"}`)
}

// sseAnswer is an OpenAI stream of n events, one per body message.
func sseAnswer(n int) [][]byte {
	const head = `data: {"id":"chatcmpl-load","object":"chat.completion.chunk","created":1760000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_load",`
	words := []string{"Yes", ".", " Set", " the", " limit", " on", " the", " two", " upload", " routes"}
	out := [][]byte{[]byte(head + `"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n")}
	for i := 0; len(out) < n-3; i++ {
		out = append(out, []byte(head+`"choices":[{"index":0,"delta":{"content":"`+words[i%len(words)]+`"},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n"))
	}
	return append(out,
		[]byte(head+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`+"\n\n"),
		[]byte(head+`"choices":[],"usage":{"prompt_tokens":482,"completion_tokens":47,"total_tokens":529,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`+"\n\n"),
		[]byte("data: [DONE]\n\n"))
}

// errUnexpected marks a reply Envoy would not have accepted as the normal
// answer, so the driver never silently measures errors.
var errUnexpected = errors.New("unexpected reply")

// cycle plays Envoy's part for one request: the router stream (request
// headers, then the buffered body; each waits for its reply), then one
// upstream attempt (request headers with the endpoint attributes, buffered
// body, response headers, then the response body).
//
// Response body messages go in lock-step: each chunk is sent and its reply
// read before the next is sent. That is what STREAMED mode does when the
// provider is slower than llmproc (the normal case for token streams); Envoy
// could also pipeline chunks that arrive together, which would save
// round-trips on both sides equally.
//
// Each stream ends the way Envoy ends it (half-close after the last
// message) and the server's clean close is awaited, so the server has done
// all of the request's work when cycle returns.
func cycle(ctx context.Context, c extprocv3.ExternalProcessorClient, w *workload) error {
	rs, err := c.Process(metadata.NewOutgoingContext(ctx, w.routerCtx))
	if err != nil {
		return fmt.Errorf("router stream: %w", err)
	}
	cr, err := exchange(rs, w.routerHeaders, "request_headers")
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if w.check && !slices.Contains(cr.GetHeaderMutation().GetRemoveHeaders(), extproc.HeaderPool) {
		return fmt.Errorf("router request_headers: %w: the forged %s is not removed", errUnexpected, extproc.HeaderPool)
	}
	cr, err = exchange(rs, w.routerBody, "request_body")
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if w.check {
		if got := setHeader(cr, extproc.HeaderPool); got != w.wantPool {
			return fmt.Errorf("router request_body: %w: %s is %q, want %q", errUnexpected, extproc.HeaderPool, got, w.wantPool)
		}
		if !cr.GetClearRouteCache() {
			return fmt.Errorf("router request_body: %w: clear_route_cache not set", errUnexpected)
		}
	}
	if err := closeStream(rs); err != nil {
		return fmt.Errorf("router: %w", err)
	}

	us, err := c.Process(metadata.NewOutgoingContext(ctx, w.upstreamCtx))
	if err != nil {
		return fmt.Errorf("upstream stream: %w", err)
	}
	if _, err := exchange(us, w.upHeaders, "request_headers"); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	cr, err = exchange(us, w.upBody, "request_body")
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	if w.check {
		if setHeader(cr, ":path") == "" {
			return fmt.Errorf("upstream request_body: %w: :path not rewritten", errUnexpected)
		}
		if nb := cr.GetBodyMutation().GetBody(); nb != nil && setHeader(cr, "content-length") != strconv.Itoa(len(nb)) {
			return fmt.Errorf("upstream request_body: %w: content-length %q for a %d-byte body", errUnexpected, setHeader(cr, "content-length"), len(nb))
		}
	}
	cr, err = exchange(us, w.respHeaders, "response_headers")
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	if w.check {
		if got := setHeader(cr, extproc.HeaderBackend); got != w.wantBackend {
			return fmt.Errorf("upstream response_headers: %w: %s is %q, want %q", errUnexpected, extproc.HeaderBackend, got, w.wantBackend)
		}
	}
	for i, m := range w.respBody {
		if err := us.Send(m); err != nil {
			return fmt.Errorf("upstream response_body %d: send: %w", i, err)
		}
		resp, err := us.Recv()
		if err != nil {
			return fmt.Errorf("upstream response_body %d: recv: %w", i, err)
		}
		cr, err := common(resp, "response_body")
		if err != nil {
			return fmt.Errorf("upstream response_body %d: %w", i, err)
		}
		if !w.check {
			continue
		}
		out := m.GetResponseBody().GetBody()
		if bm := cr.GetBodyMutation(); bm != nil {
			out = bm.GetBody()
		}
		if !bytes.Equal(out, w.wantChunk[i]) {
			return fmt.Errorf("upstream response_body %d: %w: the client would get %q, want %q", i, errUnexpected, out, w.wantChunk[i])
		}
		if i == len(w.respBody)-1 {
			md := resp.GetDynamicMetadata().GetFields()["llmproc"].GetStructValue().GetFields()
			if o := md["outcome"].GetStringValue(); o != "ok" || md["usage"].GetStringValue() != "known" {
				return fmt.Errorf("upstream response_body %d: %w: dynamic metadata outcome %q usage %q, want ok and known",
					i, errUnexpected, o, md["usage"].GetStringValue())
			}
		}
	}
	if err := closeStream(us); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	return nil
}

// exchange sends one message and reads its reply, which must be of the
// matching type.
func exchange(s extprocv3.ExternalProcessor_ProcessClient, m *extprocv3.ProcessingRequest, phase string) (*extprocv3.CommonResponse, error) {
	if err := s.Send(m); err != nil {
		return nil, fmt.Errorf("%s: send: %w", phase, err)
	}
	resp, err := s.Recv()
	if err != nil {
		return nil, fmt.Errorf("%s: recv: %w", phase, err)
	}
	cr, err := common(resp, phase)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", phase, err)
	}
	return cr, nil
}

// common returns the CommonResponse of a reply of the type phase expects.
func common(resp *extprocv3.ProcessingResponse, phase string) (*extprocv3.CommonResponse, error) {
	var hr *extprocv3.HeadersResponse
	var br *extprocv3.BodyResponse
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		if phase == "request_headers" {
			hr = r.RequestHeaders
		}
	case *extprocv3.ProcessingResponse_RequestBody:
		if phase == "request_body" {
			br = r.RequestBody
		}
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		if phase == "response_headers" {
			hr = r.ResponseHeaders
		}
	case *extprocv3.ProcessingResponse_ResponseBody:
		if phase == "response_body" {
			br = r.ResponseBody
		}
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		ir := r.ImmediateResponse
		return nil, fmt.Errorf("%w: immediate response %d (%s): %s", errUnexpected, ir.GetStatus().GetCode(), ir.GetDetails(), ir.GetBody())
	}
	switch {
	case hr != nil:
		return hr.GetResponse(), nil
	case br != nil:
		return br.GetResponse(), nil
	}
	return nil, fmt.Errorf("%w: %T answering %s", errUnexpected, resp.GetResponse(), phase)
}

// closeStream half-closes like Envoy after its last message and waits for
// the server's clean end; a further reply is unexpected.
func closeStream(s extprocv3.ExternalProcessor_ProcessClient) error {
	if err := s.CloseSend(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	resp, err := s.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("close: %w", err)
	}
	return fmt.Errorf("close: %w: extra message %T", errUnexpected, resp.GetResponse())
}

// setHeader returns the value a reply sets for a header, or "".
func setHeader(c *extprocv3.CommonResponse, key string) string {
	for _, h := range c.GetHeaderMutation().GetSetHeaders() {
		if h.GetHeader().GetKey() == key {
			return string(h.GetHeader().GetRawValue())
		}
	}
	return ""
}
