package extproc

// The upstream role's answer side: the provider's response headers and body
// chunks on their way back to the client, and the cache fill at the end.

import (
	"net/http"
	"strconv"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/conversation"
	"github.com/llmproc/llmproc/filter/translate"
	"github.com/llmproc/llmproc/filter/usage"
)

func (u *upstream) responseHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	if u.member == nil {
		return responseHeadersResponse(&extprocv3.CommonResponse{}), nil
	}
	hs := headersOf(h)
	u.status, _ = strconv.Atoi(hs[":status"])
	// The provider's own status, before any translation: its verdict on the key.
	retryKey := u.keySlot != "" && !u.sentAt.IsZero() && authRefused(u.status) && u.keyRefused()
	resp := &translate.Response{Status: u.status, ContentType: hs["content-type"], Stream: u.stream, Model: u.served,
		Header: func(name string) string { return hs[name] },
		// Anthropic and Gemini clients get thinking (blocks, thought parts),
		// Responses clients too (reasoning items); OpenAI chat clients only
		// when the backend says so.
		Reasoning: u.client == clientAnthropic || u.client == clientGemini || u.respMeta != nil || u.member.Backend.ReasoningContent}
	if u.countTokens && u.client == clientAnthropic {
		return u.countAnswer(resp, hs["content-type"]), nil
	}
	if u.countTokens { // Gemini's answer as it is; nothing to bill or cache
		u.finished = true
		return responseHeadersResponse(&extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
			SetHeaders: u.answerHeaders()}}), nil
	}
	var ans translate.Answer
	if u.native && u.client == clientAnthropic {
		u.wire, ans = u.s.tr.AnthropicNativeResponse(u.member.Backend.Schema, resp)
	} else if u.embed != nil {
		ans = u.embed.Response(resp)
	} else {
		ans = u.tr.Response(resp)
	}
	if u.native && isGeminiEmbed(u.geminiMethod) && u.status >= 200 && u.status < 300 {
		ans = translate.Answer{Body: translate.GeminiEmbedUsage()} // the client gets Gemini's embeddings as they are
	}
	u.body = ans.Body
	set := u.answerHeaders()
	if u.route != "" { // the rule that chose the pool, shown to the client
		set = append(set, header(HeaderRoute, u.route))
	}
	if u.class != "" { // "code; confidence=0.97"
		v := u.class
		if u.classConfidence != "" {
			v += "; confidence=" + u.classConfidence
		}
		set = append(set, header(HeaderClass, v))
	}
	if ans.Status != 0 && ans.Status != u.status {
		u.status = ans.Status // what the client and Envoy's retry policy see
		set = append(set, header(":status", strconv.Itoa(ans.Status)))
	}
	ct := hs["content-type"]
	if ans.ContentType != "" && ans.ContentType != ct {
		ct = ans.ContentType
		set = append(set, header("content-type", ct))
	}
	ok := u.status >= 200 && u.status < 300
	exhausted := !ok && u.exhaust()
	if ok {
		sse := strings.HasPrefix(ct, "text/event-stream")
		u.tracker = usage.NewTracker(sse)
		if u.out != nil {
			u.out.sse = sse
		}
		if u.endpoint == translate.EndpointResponses && u.respMeta == nil {
			u.tracker = usage.NewResponsesTracker(sse)
		}
		if sse && u.dropUse {
			u.strip = &usageStripper{}
		}
		// A Responses answer is kept (conversation state) and cached as its
		// final response object, which one capture reads.
		u.cacheResponses = u.endpoint == translate.EndpointResponses && u.cacheKey != "" && u.s.cache != nil
		if u.keepBody != nil || u.cacheResponses {
			limit := 0
			if u.keepBody != nil {
				limit = u.s.conv.MaxBytes
			}
			if u.cacheResponses {
				limit = max(limit, u.s.cache.MaxEntryBytes)
			}
			u.capture = conversation.NewCapture(sse, limit)
		}
		if u.cacheKey != "" && u.s.cache != nil && !u.cacheResponses {
			u.asm = cache.NewAssembler(sse, u.s.cache.MaxEntryBytes)
			if u.endpoint == translate.EndpointEmbeddings {
				u.asm = cache.NewEmbeddingsAssembler(u.s.cache.MaxEntryBytes)
			}
		}
	}
	if u.cacheResult != "" {
		set = append(set, header(HeaderCache, u.cacheResult))
	}
	if retryKey {
		set = append(set, header(HeaderCredentialRetry, "1"))
	}
	switch {
	case ok && u.native:
		u.passNative = true
		if u.framing == translate.GeminiArray { // asked for as SSE: reframed
			u.conv = translate.GeminiArrayStream()
			set = append(set, header("content-type", "application/json"))
		}
	case u.client == clientGemini && isGeminiEmbed(u.geminiMethod):
		u.conv = translate.GeminiEmbedResponse(u.geminiMethod, u.status)
		if ct != "application/json" {
			set = append(set, header("content-type", "application/json"))
		}
	case u.client == clientGemini:
		u.conv = translate.GeminiResponse(u.framing, u.status, u.served)
		clientCT := "application/json"
		if ok && u.framing == translate.GeminiSSE {
			clientCT = "text/event-stream"
		}
		if clientCT != ct {
			set = append(set, header("content-type", clientCT))
		}
	case u.client == clientAnthropic:
		u.conv = translate.NewAnthropicAnswer(translate.AnthropicAnswer{Stream: u.stream, Status: u.status, Model: u.served,
			InputEstimate: u.inputEstimate, OmitThinking: u.omitThinking})
		clientCT := "application/json"
		if ok && u.stream {
			clientCT = "text/event-stream"
		}
		if clientCT != ct {
			set = append(set, header("content-type", clientCT))
		}
	case u.respMeta != nil && ok:
		u.conv = translate.ResponsesResponse(u.respMeta, u.stream, u.status, u.served)
		clientCT := "application/json"
		if u.stream {
			clientCT = "text/event-stream"
		}
		if clientCT != ct {
			set = append(set, header("content-type", clientCT))
		}
	}
	remove := u.openAnswer(hs, ct, &set)
	if _, sent := hs[HeaderCredentialRetry]; sent && !retryKey {
		remove = append(remove, HeaderCredentialRetry) // only llmproc asks Envoy to retry
	}
	c := &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: set, RemoveHeaders: remove}}
	if h.EndOfStream {
		if exhausted {
			u.replaceHeadersOnly(c)
		}
		return u.finish(responseHeadersResponse(c), nil), nil
	}
	return responseHeadersResponse(c), nil
}

func (u *upstream) responseBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	if u.countTokens {
		return u.countBody(b), nil
	}
	if u.body == nil {
		return responseBodyResponse(&extprocv3.CommonResponse{}), nil
	}
	u.renewBudget()
	in, early := u.readAnswer(b)
	if early != nil {
		return early, nil
	}
	// Bytes that replace the chunk: decoded, or rewired (Bedrock's event
	// stream as Anthropic SSE) for the client.
	replaced := u.ans.dec != nil
	if u.wire != nil {
		if o, p := u.wire.Chunk(in, b.EndOfStream); !p {
			in, replaced = o, true
		}
	}
	out, pass := u.body.Chunk(in, b.EndOfStream)
	if pass {
		out, pass = in, !replaced
	}
	// The tracker reads the whole normalized answer, before the usage chunk
	// the client did not ask for is stripped from it.
	if u.tracker != nil && u.tracker.Write(out) && u.ttft == 0 {
		u.ttft = u.s.now().Sub(u.sentAt)
	}
	if u.asm != nil {
		u.asm.Write(out)
	}
	if u.out != nil && u.tracker != nil { // a 2xx answer's content
		u.out.write(out)
	}
	if u.passNative {
		out, pass = in, !replaced // read above; delivered as sent
	}
	if u.strip != nil {
		if o, p := u.strip.chunk(out, b.EndOfStream); !p {
			out, pass = o, false
		}
	}
	if b.EndOfStream {
		if tail := u.endOfStreamTail(); tail != nil {
			out, pass = append(out, tail...), false
		}
	}
	if u.conv != nil {
		if o, p := u.conv.Chunk(out, b.EndOfStream); !p {
			out, pass = o, false
		}
	}
	if u.capture != nil { // what the client gets
		u.capture.Write(out)
	}
	if pass {
		u.ans.emitted += len(b.Body)
	} else if out, early = u.deliver(out, b.EndOfStream); early != nil {
		return early, nil
	}
	if !b.EndOfStream {
		if pass {
			return continueResponseBody, nil
		}
		return u.replaceChunk(out), nil
	}
	c := &extprocv3.CommonResponse{}
	if !pass {
		c.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}}
	}
	resp := responseBodyResponse(c)
	if b.EndOfStream {
		return u.finish(resp, nil), nil
	}
	return resp, nil
}

// chunkReply is the reply to a chunk whose bytes llmproc replaced, built
// once per stream and reused for each such chunk: the stream loop sends a
// reply, which serializes it, before it receives the next chunk, and nothing
// keeps a reply after that (the server installs no stats handler that would
// read messages later).
type chunkReply struct {
	resp extprocv3.ProcessingResponse
	rb   extprocv3.ProcessingResponse_ResponseBody
	br   extprocv3.BodyResponse
	c    extprocv3.CommonResponse
	bm   extprocv3.BodyMutation
	body extprocv3.BodyMutation_Body
}

// replaceChunk is the reply that replaces a chunk (not the last) with out,
// which must stay unchanged until the reply is sent.
func (u *upstream) replaceChunk(out []byte) *extprocv3.ProcessingResponse {
	r := u.reply
	if r == nil {
		r = &chunkReply{}
		r.resp.Response = &r.rb
		r.rb.ResponseBody = &r.br
		r.br.Response = &r.c
		r.c.BodyMutation = &r.bm
		r.bm.Mutation = &r.body
		u.reply = r
	}
	r.body.Body = out
	return &r.resp
}

// endOfStreamTail is what must follow the last chunk: an error event when a
// stream ended without [DONE], so clients never mistake a cut for a clean end.
func (u *upstream) endOfStreamTail() []byte {
	if u.tracker == nil || !u.stream {
		return nil
	}
	if res := u.result(); !res.Done && !res.ErrorEvent {
		e := apierr.New(http.StatusBadGateway, apierr.TypeUpstream, "stream_incomplete",
			"The upstream stream from backend %q ended before it was complete.", u.member.Backend.Name)
		if u.passNative && u.client == clientGemini { // Gemini's error event (reframed for an array)
			return translate.GeminiErrorEvent(e)
		}
		if u.passNative { // no conversion follows: Anthropic's error event
			return anthropicErrorEvent(e)
		}
		if u.endpoint == translate.EndpointResponses && u.respMeta == nil {
			return responsesErrorEvent(e)
		}
		return append(append([]byte("data: "), e.JSON()...), "\n\n"...) // a translated Responses stream: converted to response.failed
	}
	return nil
}

// store puts a complete, successful answer in the cache; the assembler
// refuses anything else (cut streams, error events, no usage, too large).
func (u *upstream) store() {
	if u.asm == nil && !u.cacheResponses {
		return
	}
	keys := decodeKeys(u.cacheKey)
	if len(keys) == 0 {
		return
	}
	if u.cacheResponses {
		u.storeResponse(keys)
		return
	}
	completion, ok := u.asm.Finish()
	if !ok {
		if u.s.metrics != nil {
			u.s.metrics.CacheSkip(u.asm.Reason())
		}
		return
	}
	e := cache.Entry{Completion: completion, Stored: u.s.now(), RequestID: u.id}
	for i, k := range keys {
		var then func()
		if i == 0 { // the semantic tier joins the exact entry
			then = u.semanticStore(k, e.Stored)
		}
		u.s.cache.set(k, e, then)
	}
}
