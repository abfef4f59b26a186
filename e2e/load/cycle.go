package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// errUnexpected marks a reply Envoy would not have accepted as the normal
// answer, so the driver never silently measures errors.
var errUnexpected = errors.New("unexpected reply")

// outcome is what one cycle did, as Envoy and the client would see it. The
// header lists, bodies and metadata are only recorded when the workload
// records (llmproc, -target, the probe): the floor's cycles stay lean.
type outcome struct {
	msgs      int                          // ext_proc messages Envoy sent
	immediate *extprocv3.ImmediateResponse // the router role ended the request
	// routerHeaders is the request header map after the router role.
	routerHeaders headerList
	clearRoute    bool
	meta          map[string]*structpb.Struct // dynamic metadata, all replies
	upMsg         *extprocv3.ProcessingRequest
	upHeaders     headerList // the request headers the provider gets
	upBody        []byte     // the request body the provider gets
	respHeaders   headerList // the response headers the client gets
	client        []byte     // the response body the client gets
}

// pstream is one ext_proc stream (one filter, one request or attempt),
// opened on its first message like Envoy's filter, with the processing mode
// the server's replies left it in.
type pstream struct {
	spec *filterSpec
	mode *extprocfilterv3.ProcessingMode
	c    extprocv3.ExternalProcessorClient
	s    extprocv3.ExternalProcessor_ProcessClient
	ctx  context.Context
}

func newStream(ctx context.Context, c extprocv3.ExternalProcessorClient, spec *filterSpec) *pstream {
	return &pstream{spec: spec, mode: spec.mode, c: c, ctx: ctx}
}

// ask sends one message and reads its reply. A headers reply's
// mode_override is applied by Envoy's rules (filterSpec.overridden); an
// immediate response returns errImmediate with the reply.
func (p *pstream) ask(m *extprocv3.ProcessingRequest, phase string, o *outcome, rec bool) (*extprocv3.ProcessingResponse, *extprocv3.CommonResponse, error) {
	if p.s == nil {
		s, err := p.c.Process(metadata.NewOutgoingContext(p.ctx, p.spec.md))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: open stream: %w", p.spec.name, err)
		}
		p.s = s
	}
	o.msgs++
	if err := p.s.Send(m); err != nil {
		return nil, nil, fmt.Errorf("%s %s: send: %w", p.spec.name, phase, err)
	}
	resp, err := p.s.Recv()
	// A server may ask for more time (override_message_timeout) before it
	// answers; Envoy extends its timer and keeps waiting for the reply
	// (Filter::onReceiveMessage returns after onNewTimeout).
	for err == nil && resp.GetOverrideMessageTimeout() != nil {
		resp, err = p.s.Recv()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: recv: %w", p.spec.name, phase, err)
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		return resp, nil, errImmediate
	}
	cr, err := common(resp, phase)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", p.spec.name, phase, err)
	}
	p.mode = p.spec.overridden(p.mode, resp)
	if rec && resp.GetDynamicMetadata() != nil {
		if o.meta == nil {
			o.meta = map[string]*structpb.Struct{}
		}
		mergeMetadata(o.meta, resp, p.spec.receive)
	}
	return resp, cr, nil
}

// needsResponse reports whether Envoy still has response messages for
// this stream.
func (p *pstream) needsResponse() bool {
	return sendsHeaders(p.mode.GetResponseHeaderMode()) || p.mode.GetResponseBodyMode() != extprocfilterv3.ProcessingMode_NONE
}

// close half-closes like Envoy after its last message and waits for the
// server's clean end; a further reply is unexpected. A stream that was never
// opened (Envoy had nothing to send on it) is left alone.
func (p *pstream) close() error {
	if p.s == nil {
		return nil
	}
	s := p.s
	p.s = nil
	if err := s.CloseSend(); err != nil {
		return fmt.Errorf("%s: close: %w", p.spec.name, err)
	}
	resp, err := s.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("%s: close: %w", p.spec.name, err)
	}
	return fmt.Errorf("%s: close: %w: extra message %T", p.spec.name, errUnexpected, resp.GetResponse())
}

// cycle plays Envoy's part for one request: the router filter's stream
// (request headers, then the buffered body), then one upstream attempt's
// stream (request headers with the endpoint attributes and the router's
// metadata, the body, response headers, the response body), each message
// sent only when the stream's processing mode — the rendered config's,
// changed by any mode_override Envoy honours — asks for it. An immediate
// response from the router ends the request there (a cache hit).
//
// Response body messages go in lock-step: each chunk is sent and its reply
// read before the next is sent. That is what STREAMED mode does when the
// provider is slower than the server (the normal case for token streams);
// Envoy could also pipeline chunks that arrive together, which would save
// round-trips on both sides equally. When both filters take response
// messages, each chunk goes through the upstream filter first, then the
// router filter, as in Envoy's encoder chain.
//
// Each stream ends the way Envoy ends it (half-close after its last
// message) and the server's clean close is awaited, so the server has done
// all of the request's work when cycle returns.
func cycle(ctx context.Context, c extprocv3.ExternalProcessorClient, w *workload) (outcome, error) {
	var o outcome
	rec := w.record
	router := newStream(ctx, c, w.router)
	up := newStream(ctx, c, w.upstream)
	defer func() {
		// On an error path, end the streams without waiting.
		for _, p := range []*pstream{router, up} {
			if p.s != nil {
				_ = p.s.CloseSend()
			}
		}
	}()
	if rec {
		o.routerHeaders = slices.Clone(w.clientHeaders)
	}
	body := w.body

	// The router filter: request headers, then the buffered body. ask
	// sends one router message; done is true when the cycle ends there
	// (an immediate response, or an error).
	ask := func(m *extprocv3.ProcessingRequest, phase string) (cr *extprocv3.CommonResponse, done bool, err error) {
		resp, cr, err := router.ask(m, phase, &o, rec)
		if errors.Is(err, errImmediate) {
			o.immediate = resp.GetImmediateResponse()
			return nil, true, router.close()
		}
		if err != nil {
			return nil, true, err
		}
		if rec {
			o.routerHeaders = o.routerHeaders.apply(cr.GetHeaderMutation())
			o.clearRoute = o.clearRoute || cr.GetClearRouteCache()
		}
		return cr, false, nil
	}
	if sendsHeaders(router.mode.GetRequestHeaderMode()) {
		if _, done, err := ask(w.routerHeaders, "request_headers"); done {
			return o, err
		}
	}
	if err := checkBodyMode(router.mode.GetRequestBodyMode()); err != nil {
		return o, err
	}
	if router.mode.GetRequestBodyMode() != extprocfilterv3.ProcessingMode_NONE {
		cr, done, err := ask(w.routerBody, "request_body")
		if done {
			return o, err
		}
		if bm := cr.GetBodyMutation(); rec && bm != nil {
			body = bm.GetBody()
		}
	}
	if !router.needsResponse() {
		if err := router.close(); err != nil {
			return o, err
		}
	}

	// Envoy routes, picks the pool's first endpoint and runs the upstream
	// filter for that attempt.
	upMsg := w.upHeaders
	if rec {
		upMsg = w.upstreamHeaders(o.routerHeaders, o.meta)
		o.upMsg = upMsg
		o.upHeaders = slices.Clone(headerList(upMsg.GetRequestHeaders().GetHeaders().GetHeaders()))
		o.upBody = body
	}
	if sendsHeaders(up.mode.GetRequestHeaderMode()) {
		_, cr, err := up.ask(upMsg, "request_headers", &o, rec)
		if err != nil {
			return o, upstreamErr(err)
		}
		if rec {
			o.upHeaders = o.upHeaders.apply(cr.GetHeaderMutation())
			if bm := cr.GetBodyMutation(); bm != nil {
				o.upBody = bm.GetBody()
			}
		}
	}
	if err := checkBodyMode(up.mode.GetRequestBodyMode()); err != nil {
		return o, err
	}
	if up.mode.GetRequestBodyMode() != extprocfilterv3.ProcessingMode_NONE {
		m := w.upBody
		if rec && !sameBytes(body, w.body) {
			m = bodyMsg(body)
		}
		_, cr, err := up.ask(m, "request_body", &o, rec)
		if err != nil {
			return o, upstreamErr(err)
		}
		if rec {
			o.upHeaders = o.upHeaders.apply(cr.GetHeaderMutation())
			if bm := cr.GetBodyMutation(); bm != nil {
				o.upBody = bm.GetBody()
			}
		}
	}

	// The provider answers: response headers, then the body, through the
	// upstream filter, then the router filter (Envoy's encoder order).
	if rec {
		o.respHeaders = slices.Clone(w.providerHeaders)
	}
	chain := []*pstream{up, router}
	for _, p := range chain {
		if p.s == nil && p == router {
			continue // closed after the request: nothing more for it
		}
		if !sendsHeaders(p.mode.GetResponseHeaderMode()) {
			continue
		}
		m := w.respHeaders
		if rec && p == router {
			m = headersMsg(o.respHeaders, false, true)
		}
		_, cr, err := p.ask(m, "response_headers", &o, rec)
		if err != nil {
			return o, upstreamErr(err)
		}
		if rec {
			o.respHeaders = o.respHeaders.apply(cr.GetHeaderMutation())
		}
	}
	chunks := w.chunks
	msgs := w.respBody
	for _, p := range chain {
		if p.s == nil && p == router {
			continue
		}
		if err := checkBodyMode(p.mode.GetResponseBodyMode()); err != nil {
			return o, err
		}
		switch p.mode.GetResponseBodyMode() {
		case extprocfilterv3.ProcessingMode_STREAMED:
			var next [][]byte
			for i, m := range msgs {
				_, cr, err := p.ask(m, fmt.Sprintf("response_body %d", i), &o, rec)
				if err != nil {
					return o, upstreamErr(err)
				}
				if rec || w.check {
					out := chunks[i]
					if bm := cr.GetBodyMutation(); bm != nil {
						out = bm.GetBody()
					}
					next = append(next, out)
				}
				if i == 0 && p == up && w.hold != nil {
					w.hold() // -hold: the stream waits here, mid-answer
				}
			}
			if rec || w.check {
				chunks = next
			}
		case extprocfilterv3.ProcessingMode_BUFFERED:
			m := w.respBuffered
			if !sameChunks(chunks, w.chunks) {
				m = bodyResp(slices.Concat(chunks...), true)
			}
			_, cr, err := p.ask(m, "response_body", &o, rec)
			if err != nil {
				return o, upstreamErr(err)
			}
			if rec || w.check {
				out := m.GetResponseBody().GetBody()
				if bm := cr.GetBodyMutation(); bm != nil {
					out = bm.GetBody()
				}
				chunks = [][]byte{out}
			}
		}
		if p == up && rec {
			msgs = nil
			for i, ch := range chunks {
				msgs = append(msgs, bodyResp(ch, i == len(chunks)-1))
			}
		}
	}
	if rec || w.check {
		o.client = slices.Concat(chunks...)
	}
	for _, p := range chain {
		if err := p.close(); err != nil {
			return o, err
		}
	}
	return o, nil
}

// upstreamErr turns an immediate response from an upstream filter into a
// failure: the driver's cases never expect one there.
func upstreamErr(err error) error {
	if errors.Is(err, errImmediate) {
		return fmt.Errorf("upstream: %w: immediate response", errUnexpected)
	}
	return err
}

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func sameChunks(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameBytes(a[i], b[i]) {
			return false
		}
	}
	return true
}

// common returns the CommonResponse of a reply of the type phase expects.
func common(resp *extprocv3.ProcessingResponse, phase string) (*extprocv3.CommonResponse, error) {
	var hr *extprocv3.HeadersResponse
	var br *extprocv3.BodyResponse
	want := phase
	if len(want) > len("response_body") && want[:len("response_body")] == "response_body" {
		want = "response_body"
	}
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		if want == "request_headers" {
			hr = r.RequestHeaders
		}
	case *extprocv3.ProcessingResponse_RequestBody:
		if want == "request_body" {
			br = r.RequestBody
		}
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		if want == "response_headers" {
			hr = r.ResponseHeaders
		}
	case *extprocv3.ProcessingResponse_ResponseBody:
		if want == "response_body" {
			br = r.ResponseBody
		}
	}
	switch {
	case hr != nil:
		return hr.GetResponse(), nil
	case br != nil:
		return br.GetResponse(), nil
	}
	return nil, fmt.Errorf("%w: %T answering %s", errUnexpected, resp.GetResponse(), phase)
}
