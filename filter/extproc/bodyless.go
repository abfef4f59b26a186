package extproc

import (
	"bytes"
	"cmp"
	"strconv"
	"strings"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"google.golang.org/protobuf/proto"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
)

// An attempt whose body goes to its backend unchanged needs no request body
// message: the upstream role prepares it from the request headers and the
// router's decisions, and its headers reply asks Envoy, with mode_override,
// not to send the body (Envoy then passes the body it holds on as it is).
//
// Envoy honours a mode_override in a headers reply when the filter has
// allow_mode_override and not send_body_without_waiting_for_header_response
// (and no FULL_DUPLEX_STREAMED body mode); the new mode is the configured
// processing_mode with the override's non-DEFAULT header and trailer modes
// and both its body modes; allowed_override_modes, when set, must hold an
// entry equal to it in every field but request_header_mode (Filter::
// onReceiveMessage and effectiveModeOverride in
// source/extensions/filters/http/ext_proc/ext_proc.cc). Upstream (cluster)
// filters are no exception. The override sets both directions, so it keeps
// the response modes as rendered (envoy.UpstreamFilter) and spells out every
// field: it then also equals the rendered allowed_override_modes entry under
// the older whole-message comparison.
//
// The request-header map is shared by all attempts of a request (Envoy hands
// each attempt the map the previous one left), so the reply restores the
// content-length of the body Envoy forwards, which the router role records
// (KeyBody): an earlier attempt may have sent a translated body of another
// length.

// KeyBody is what the router role read of the body it lets through, for
// attempts that do not read it: "<length>[/<estimate length>] <flags>".
// length is the body Envoy forwards; estimate length the client's body,
// which token estimates count, when the router added to it; flags:
// s stream, u the client asked for usage (stream_options.include_usage),
// a the router added include_usage (withStreamUsage), t the body has
// thinking_blocks, o it has stream_options.
const KeyBody = "body"

// bodyFacts is KeyBody read back.
type bodyFacts struct {
	length, estimate int
	// usage is the client's include_usage; added: the router added it, so
	// the body Envoy forwards has it either way.
	stream, usage, added bool
	translate.BodyFacts
}

// noteBody is KeyBody's value for the body Envoy forwards, the client's
// body being estimate bytes and read as req.
func noteBody(body []byte, estimate int, req chatRequest, added bool) string {
	b := make([]byte, 0, 24)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if estimate != len(body) {
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(estimate), 10)
	}
	b = append(b, ' ')
	if req.stream.Type == gjson.True {
		b = append(b, 's')
	}
	if req.usageRequested() {
		b = append(b, 'u')
	}
	if added {
		b = append(b, 'a')
	}
	if hasThinkingBlocks(body) {
		b = append(b, 't')
	}
	if added || req.streamOptions.Exists() {
		b = append(b, 'o')
	}
	return string(b)
}

func parseBodyFacts(v string) (bodyFacts, bool) {
	lengths, flags, ok := strings.Cut(v, " ")
	if !ok {
		return bodyFacts{}, false
	}
	l, e, twoLengths := strings.Cut(lengths, "/")
	var f bodyFacts
	var err error
	if f.length, err = strconv.Atoi(l); err != nil || f.length < 0 {
		return bodyFacts{}, false
	}
	f.estimate = f.length
	if twoLengths {
		if f.estimate, err = strconv.Atoi(e); err != nil || f.estimate < 0 {
			return bodyFacts{}, false
		}
	}
	for _, c := range flags {
		switch c {
		case 's':
			f.stream = true
		case 'u':
			f.usage = true
		case 'a':
			f.added = true
		case 't':
			f.ThinkingBlocks = true
		case 'o':
			f.StreamOptions = true
		default:
			return bodyFacts{}, false // a newer router's flag: read the body
		}
	}
	return f, true
}

// withStreamUsage adds stream_options.include_usage: true to an OpenAI chat
// stream that did not ask for usage, when the pool's OpenAI-shaped backends
// all take stream_options (each attempt to one would add it: rewriteOpenAI)
// and it has one. Envoy hands every attempt the router's body, so the
// same-API attempts then need no rewrite of their own, and translating
// attempts build their own body and ignore the field. The upstream role
// learns from KeyBody that the client did not ask, and still strips the
// usage chunk from the client's stream. A body whose stream_options is no
// object is left for the attempt to handle, as before.
func (r *router) withStreamUsage(body []byte, req chatRequest, pool *config.RPool) ([]byte, bool) {
	if r.client != "" || r.endpoint != "" || r.countTokens || r.feedback || req.stream.Type != gjson.True ||
		req.usageRequested() || (req.streamOptions.Exists() && !req.streamOptions.IsObject()) {
		return body, false
	}
	shaped := false
	for _, m := range pool.Members {
		openAIShaped, takes := translate.StreamUsage(m.Backend)
		if openAIShaped && !takes {
			return body, false
		}
		shaped = shaped || openAIShaped
	}
	if !shaped {
		return body, false
	}
	out, err := sjson.SetBytes(body, "stream_options.include_usage", true)
	if err != nil {
		return body, false // the attempts add it, as they would have
	}
	return out, true
}

// skipRequestBody is the mode_override of a bodyless attempt: the upstream
// filter's rendered processing_mode with request_body_mode NONE.
var skipRequestBody = &extprocfilterv3.ProcessingMode{
	RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
	ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SEND,
	RequestBodyMode:     extprocfilterv3.ProcessingMode_NONE,
	ResponseBodyMode:    extprocfilterv3.ProcessingMode_STREAMED,
	RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
	ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
}

// SkipRequestBodyMode is the only mode_override the upstream role sends,
// for the rendered allowed_override_modes.
func SkipRequestBodyMode() *extprocfilterv3.ProcessingMode {
	return proto.Clone(skipRequestBody).(*extprocfilterv3.ProcessingMode)
}

// bodyless prepares the attempt from the request headers when its body
// goes to the backend as it is, and returns the headers reply; nil when
// the attempt needs its body. Why an attempt needs it:
//   - another client API (Anthropic, Gemini) or endpoint than chat
//     completions, count_tokens: the body is converted, or read for the
//     native choice (an Anthropic client's model), or kept (Responses);
//   - a semantic bucket: the latest user turn is read from it;
//   - a backend whose translator rewrites it (another schema; an OpenAI
//     one with drop_params, max_tokens_field, a model to send instead of
//     the client's, stream_options to add or remove, thinking_blocks to
//     remove: translate.Unchanged);
//   - a router that did not describe the body (KeyBody).
//
// u.facts is KeyBody, read by requestHeaders.
func (u *upstream) bodyless(dec decisions) *extprocv3.ProcessingResponse {
	if u.client != clientOpenAI || u.endpoint != "" || u.countTokens || u.geminiMethod != "" || u.semBucket != "" {
		return nil
	}
	un, ok := u.tr.(translate.Unchanged)
	if !ok {
		return nil
	}
	f := u.facts
	if !u.hasFacts {
		return nil
	}
	model := cmp.Or(dec.get(KeyRequestedModel), u.requested)
	served := cmp.Or(u.member.Model, u.target, model)
	// The translator's UsageRequested is what the body asks.
	tr := &translate.Request{Backend: u.member.Backend, ClientModel: model, Model: served, Stream: f.stream, UsageRequested: f.usage || f.added}
	if _, ok := un.Unchanged(tr, f.BodyFacts); !ok {
		return nil
	}
	// As requestBody would have found them.
	u.reqBytes = f.estimate
	u.model, u.served, u.stream = strings.Clone(model), strings.Clone(served), f.stream
	u.dropUse = u.stream && !f.usage
	u.keyBackend, u.keySlot = u.s.keys.choose(u.member.Backend, u.s.now())
	u.awaitCredential()
	tr.Backend = u.keyBackend
	up, _ := un.Unchanged(tr, f.BodyFacts)
	set := up.SetHeaders
	if tp := u.spanSent(); tp != nil {
		set = append(tp, set...)
	}
	u.headersOnly = true
	u.sentAt = u.s.now()
	if u.keySlot != "" && u.s.metrics != nil {
		u.s.metrics.CredentialUse(u.member.Backend.Name, u.keySlot)
	}
	resp := requestHeadersResponse(&extprocv3.CommonResponse{HeaderMutation: u.attemptHeaders(up.Path, f.length, set)})
	resp.ModeOverride = skipRequestBody
	resp.DynamicMetadata = u.attemptBackendsMetadata()
	return resp
}

// hasThinkingBlocks is bytes.Contains(body, `"thinking_blocks"`), searched
// from its rare "_" rather than its first byte: a quote starts every JSON
// string, and bytes.Contains stepping from quote to quote costs more on a
// 64 KB body than the rest of the router's work.
func hasThinkingBlocks(body []byte) bool {
	const head, tail = `"thinking`, `_blocks"`
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(tail))
		if j < 0 {
			return false
		}
		if p := i + j; p >= len(head) && string(body[p-len(head):p]) == head {
			return true
		}
		i += j + 1
	}
}
