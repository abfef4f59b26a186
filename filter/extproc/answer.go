package extproc

import (
	"errors"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/decode"
	"github.com/llmproc/llmproc/filter/translate"
)

// This file is how the upstream role takes in a provider's answer before the
// translators, the usage tracker and the cache read it: compressed answers
// are decoded chunk by chunk; what llmproc holds of an answer is bounded per
// answer (limits.max_answer_buffer_bytes) and over all answers
// (limits.max_buffered_bytes); and an answer it cannot deliver ends with an
// error in the client's API shape and is recorded as undelivered, never as a
// 2xx with usage.
//
// Envoy hands the answer over in STREAMED mode and takes exactly one reply
// per chunk, each replacing that chunk (ext_proc processor_state.cc,
// handleStreamedBodyResponse), so a reply can carry no more than what
// llmproc built from the chunks so far: an answer that must be whole before
// it can be rewritten (a JSON answer translated for an Anthropic-API client)
// goes out in the reply to its last chunk. MaxMessageBytes sizes the gRPC
// send limit for the largest such reply the bound allows, and a reply that
// would still not fit is replaced by an error rather than lost in a reset.

// HeaderAnswer marks an answer llmproc passed on without reading it, e.g.
// "passthrough; content-encoding=compress".
const HeaderAnswer = "x-llmproc-answer"

// Handling values (llmproc_answer_handling_total).
const (
	handlingDecoded     = "decoded"
	handlingPassthrough = "passthrough"
	handlingUnread      = "unread"
)

// Why an answer was not delivered (the "undelivered_" handling values).
const (
	reasonTooLarge    = "too_large"    // past limits.max_answer_buffer_bytes
	reasonBuffersFull = "buffers_full" // past limits.max_buffered_bytes
	reasonEncoding    = "encoding"     // a coding llmproc cannot decode, where it must read
	reasonCorrupt     = "corrupt"      // compressed data that does not decode
	reasonReply       = "reply_too_large"
)

// CodeAnswerUndelivered is the error code of an answer llmproc could not
// deliver.
const CodeAnswerUndelivered = "answer_undelivered"

// MaxMessageBytes is the gRPC message size llmproc must be able to send: the
// largest request body it replaces, or twice the largest answer it holds
// (room for a rewritten answer to grow), plus framing and headers.
func MaxMessageBytes(l config.Limits) int {
	return int(max(l.MaxRequestBytes, 2*l.MaxAnswerBufferBytes)) + grpcFraming
}

// grpcFraming is what a reply needs beyond its body: headers, metadata and
// protobuf framing.
const grpcFraming = 1 << 20

// answerState is the upstream role's state for reading one answer.
type answerState struct {
	dec       *streamDecoder
	events    bool   // bounded by the event not yet complete (SSE), not the whole answer
	unbound   bool   // a binary event stream: its translator holds one frame
	clientSSE bool   // the client gets an SSE stream
	pending   int64  // bytes of the answer its readers keep (each its own copy)
	copies    int64  // how many readers keep them
	held      int64  // pending × copies, counted against the bounds
	emitted   int    // bytes sent on to the client
	handling  string // handling* or ""
	failed    string // reason*: the answer is undelivered
	refuse    string // the answer cannot be read (a coding llmproc cannot decode): its first chunk fails
}

// openAnswer prepares the reading of the answer once its headers are known,
// as the last step of responseHeaders, and returns the headers to remove.
// An answer in a coding llmproc decodes is decoded; one it cannot decode
// passes untouched (marked) when llmproc would only have read it, and is
// otherwise replaced by a 502 error.
func (u *upstream) openAnswer(hs headers, ct string, set *[]*corev3.HeaderValueOption) []string {
	ok := u.status >= 200 && u.status < 300
	sse := strings.HasPrefix(ct, "text/event-stream")
	u.ans = answerState{events: ok && sse, unbound: ok && u.stream && !sse, clientSSE: ok && u.stream, copies: u.copies()}
	enc := hs["content-encoding"]
	if enc == "" {
		return nil
	}
	codings, err := decode.Codings(enc)
	if err == nil {
		if len(codings) == 0 {
			return nil // identity
		}
		u.ans.dec = newStreamDecoder(codings, int(u.rt.Source.Limits.MaxAnswerBufferBytes))
		u.handled(handlingDecoded)
		return []string{"content-encoding", "content-length"}
	}
	be := u.member.Backend.Name
	if translate.Passes(u.body) && u.conv == nil && u.strip == nil {
		// llmproc would only have read it: the client gets what the provider sent.
		u.ans.handling = handlingPassthrough
		u.tracker, u.asm = nil, nil
		u.handled(handlingPassthrough)
		u.s.log.Warn("answer passed through unread", "request_id", u.id, "backend", be, "content_encoding", enc)
		setHeader(set, HeaderAnswer, handlingPassthrough+"; content-encoding="+enc)
		return nil
	}
	// The body is replaced by the error (readAnswer, first chunk).
	u.ans.refuse = "content-encoding " + enc
	u.status = http.StatusBadGateway
	u.ans.clientSSE = false
	setHeader(set, ":status", "502")
	setHeader(set, "content-type", "application/json")
	return []string{"content-encoding", "content-length"}
}

// setHeader sets k in set, replacing an earlier value.
func setHeader(set *[]*corev3.HeaderValueOption, k, v string) {
	for _, h := range *set {
		if h.GetHeader().GetKey() == k {
			h.Header.RawValue = []byte(v)
			return
		}
	}
	*set = append(*set, header(k, v))
}

// readAnswer returns the bytes of chunk b the translators and the tracker
// read (decoded, counted against the bounds), or the reply when the chunk
// goes no further: the answer passes through unread, or is not delivered.
func (u *upstream) readAnswer(b *extprocv3.HttpBody) ([]byte, *extprocv3.ProcessingResponse) {
	eos := b.EndOfStream
	switch {
	case u.ans.refuse != "" && u.ans.failed == "":
		return nil, u.fail(reasonEncoding, u.ans.refuse, eos)
	case u.ans.failed != "":
		return nil, u.undelivered(nil, eos) // the error went out; drop the rest
	case u.ans.handling == handlingPassthrough:
		u.ans.emitted += len(b.Body)
		if eos {
			return nil, u.finish(responseBodyResponse(&extprocv3.CommonResponse{}), nil)
		}
		return nil, continueResponseBody
	}
	in := b.Body
	if u.ans.dec != nil {
		out, err := u.ans.dec.Feed(b.Body, eos)
		if err != nil {
			reason := reasonCorrupt
			if errors.Is(err, decode.ErrTooLarge) {
				reason = reasonTooLarge
			}
			return nil, u.fail(reason, err.Error(), eos)
		}
		in = out
	}
	if reason := u.hold(in); reason != "" {
		if u.ans.events || u.ans.emitted == 0 {
			return nil, u.fail(reason, "", eos)
		}
		// The answer streams to the client already and only the usage
		// tracker holds it: it goes on, unread.
		if u.tracker != nil {
			u.tracker.Drop()
		}
		u.asm = nil
		u.ans.handling = handlingUnread
		u.release()
		u.handled(handlingUnread)
		u.s.log.Warn("answer delivered unread", "request_id", u.id, "reason", reason, "backend", u.member.Backend.Name)
	}
	return in, nil
}

// hold counts what llmproc keeps of the answer once in is read: an SSE
// stream's event not yet complete, or the whole of any other answer, once
// for each reader that keeps its own copy. It returns the bound it would
// exceed, holding nothing more then.
func (u *upstream) hold(in []byte) string {
	p := u.ans.pending
	switch {
	case u.ans.unbound || u.ans.handling == handlingUnread:
		return ""
	case u.ans.events:
		if i := lastEventEnd(in); i >= 0 {
			p = int64(len(in) - i)
		} else {
			p += int64(len(in))
		}
	default:
		p += int64(len(in))
	}
	n := p * u.ans.copies
	if n > u.rt.Source.Limits.MaxAnswerBufferBytes {
		return reasonTooLarge
	}
	delta := n - u.ans.held
	total := u.s.buffered.Add(delta)
	if delta > 0 && total > u.rt.Source.Limits.MaxBufferedBytes {
		u.s.buffered.Add(-delta)
		return reasonBuffersFull
	}
	u.s.notePeak(total)
	u.ans.pending, u.ans.held = p, n
	return ""
}

// copies is how many of the answer's readers keep what they have not
// finished reading: the usage tracker, the usage stripper, the conversion
// for an Anthropic client, a translator that rewrites the answer, the
// cache assembler.
func (u *upstream) copies() int64 {
	n := int64(0)
	for _, keeps := range []bool{u.tracker != nil, u.strip != nil, u.conv != nil, !translate.Passes(u.body), u.asm != nil} {
		if keeps {
			n++
		}
	}
	return max(n, 1)
}

// lastEventEnd returns the index just past the last blank line in b ("\n\n"
// or "\r\n\r\n"), or -1. It scans from the end, so a chunk that ends an
// event, as nearly all do, costs a few byte compares.
func lastEventEnd(b []byte) int {
	for i := len(b) - 1; i >= 1; i-- {
		if b[i] != '\n' {
			continue
		}
		switch {
		case b[i-1] == '\n':
			return i + 1
		case i >= 3 && b[i-1] == '\r' && b[i-2] == '\n' && b[i-3] == '\r':
			return i + 1
		}
	}
	return -1
}

// release gives back what the answer held.
func (u *upstream) release() {
	if u.ans.held != 0 {
		u.s.notePeak(u.s.buffered.Add(-u.ans.held))
		u.ans.pending, u.ans.held = 0, 0
	}
}

// closeAnswer ends the reading of the answer: the stream is over.
func (u *upstream) closeAnswer() {
	u.release()
	if u.ans.dec != nil {
		u.ans.dec.Close()
	}
}

// fail ends the answer undelivered: the client gets an error in its API
// shape in place of the rest, nothing more is read or held. What the usage
// tracker read so far is kept (finished now, so its buffers go): usage the
// provider reported, e.g. in a whole answer whose rewritten form did not
// fit a reply, is what it bills.
func (u *upstream) fail(reason, detail string, eos bool) *extprocv3.ProcessingResponse {
	u.ans.failed = reason
	u.closeAnswer()
	u.result()
	u.tracker, u.asm, u.strip, u.conv = nil, nil, nil, nil
	u.handled("undelivered_" + reason)
	u.s.log.Warn("answer undelivered", "request_id", u.id, "reason", reason, "backend", u.member.Backend.Name, "err", detail)
	return u.undelivered(u.errorInPlace(reason), eos)
}

// undelivered is the reply to a chunk of an undelivered answer: out (the
// error, or nothing) in place of the chunk, and the record at the end.
func (u *upstream) undelivered(out []byte, eos bool) *extprocv3.ProcessingResponse {
	resp := responseBodyResponse(&extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
		Mutation: &extprocv3.BodyMutation_Body{Body: out}}})
	if eos {
		return u.finish(resp, nil)
	}
	return resp
}

// errorInPlace is what the client gets for an answer llmproc cannot deliver:
// an error event ending its stream, the error JSON when nothing of the answer
// went out yet, or nothing (a JSON answer already half sent can only be cut).
func (u *upstream) errorInPlace(reason string) []byte {
	msg := map[string]string{
		reasonTooLarge:    "The answer from backend %q is larger than llmproc may hold to read it (limits.max_answer_buffer_bytes).",
		reasonBuffersFull: "llmproc holds as much of other answers as it may (limits.max_buffered_bytes); the answer from backend %q could not be read.",
		reasonEncoding:    "The answer from backend %q is in a content-encoding llmproc cannot decode.",
		reasonCorrupt:     "The compressed answer from backend %q does not decode.",
		reasonReply:       "The answer from backend %q, as rewritten for this client, is larger than one ext_proc message may be.",
	}[reason]
	e := apierr.New(http.StatusBadGateway, apierr.TypeUpstream, CodeAnswerUndelivered, msg, u.member.Backend.Name)
	switch {
	case u.ans.clientSSE && u.client == clientGemini && u.framing == translate.GeminiArray:
		if u.ans.emitted == 0 {
			return append(append([]byte{'['}, translate.GeminiError(e)...), ']')
		}
		return append(append([]byte(",\r\n"), translate.GeminiError(e)...), ']')
	case u.ans.clientSSE && u.client == clientGemini:
		return translate.GeminiErrorEvent(e)
	case u.ans.clientSSE && u.client == clientAnthropic:
		return anthropicErrorEvent(e)
	case u.ans.clientSSE && u.endpoint == translate.EndpointResponses:
		return responsesErrorEvent(e)
	case u.ans.clientSSE:
		return append(append([]byte("data: "), e.JSON()...), "\n\n"...)
	case u.ans.emitted == 0:
		return renderError(u.clientSchema(), e)
	}
	return nil
}

// anthropicErrorEvent is e as the error event of an Anthropic stream.
func anthropicErrorEvent(e *apierr.Error) []byte {
	return append(append([]byte("event: error\ndata: "), translate.AnthropicError(e)...), "\n\n"...)
}

// deliver checks a reply's body before it goes out: one larger than llmproc
// can send is replaced by the error, so the client is never left with a
// reset and a 200.
func (u *upstream) deliver(out []byte, eos bool) ([]byte, *extprocv3.ProcessingResponse) {
	if u.s.maxReply > 0 && len(out) > u.s.maxReply {
		return nil, u.fail(reasonReply, "", eos)
	}
	u.ans.emitted += len(out)
	return out, nil
}

func (u *upstream) handled(h string) {
	if u.s.metrics != nil {
		u.s.metrics.AnswerHandling(u.pool.Name, u.member.Backend.Name, h)
	}
}

// notePeak records the bytes held over all answers, and the most ever held.
func (s *Server) notePeak(total int64) {
	for {
		p := s.bufferedPeak.Load()
		if total <= p || s.bufferedPeak.CompareAndSwap(p, total) {
			break
		}
	}
	if s.metrics != nil {
		s.metrics.AnswerBuffered(total)
	}
}
