package extproc

import (
	"cmp"
	"net/http"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
)

// POST /v1/messages/count_tokens, Anthropic's token counting: the router
// role forwards it when the pool's first backend counts tokens itself
// (translate.CountsTokens: Anthropic, Claude on Bedrock or Vertex, Gemini),
// and the upstream role sends it in that backend's way and answers in
// Anthropic's ({"input_tokens": N}, errors in Anthropic's shape): nothing is
// billed, cached or counted against a budget. Otherwise, and on an attempt
// that failed over to a backend that cannot count, llmproc answers with its
// own estimate (route.Features.EstimatedInputTokens, the routing estimator)
// and says so in HeaderTokenCount.

const (
	countTokensPath = "/v1/messages/count_tokens"
	// endpointCountTokens is KeyEndpoint's value for a count_tokens request.
	endpointCountTokens = "count_tokens"
	// HeaderTokenCount is "estimated" on an answer llmproc computed itself.
	HeaderTokenCount = "x-llmproc-token-count"
)

// POST /v1/responses/input_tokens, the Responses API's token counting, is
// the same: forwarded when the pool's first backend is OpenAI (the only one
// that serves it), estimated otherwise, in OpenAI's shape.
const inputTokensPath = "/v1/responses/input_tokens"

// forwardsInputTokens reports whether a pool's input_tokens requests go to
// its first backend.
func forwardsInputTokens(p *config.RPool) bool {
	return len(p.Members) > 0 && translate.EndpointServed(translate.EndpointInputTokens, p.Members[0].Backend.Schema)
}

// countResponses stands for the client in estimatedCount for the Responses
// API's input_tokens.
const countResponses = "responses_input_tokens"

// countClient is estimatedCount's client for the attempt.
func (u *upstream) countClient() string {
	if u.endpoint == translate.EndpointInputTokens {
		return countResponses
	}
	return u.client
}

// countsNatively reports whether the attempt's backend serves the counting
// endpoint the client asked for.
func (u *upstream) countsNatively() bool {
	if u.endpoint == translate.EndpointInputTokens {
		return translate.EndpointServed(u.endpoint, u.member.Backend.Schema)
	}
	return u.native
}

// forwardsCountTokens reports whether a pool's count_tokens requests for
// model (the routing rule's target, else the client's) go to its first
// backend: for Anthropic clients one that counts them itself
// (translate.CountsTokens), for Gemini clients (models.countTokens) a
// Gemini or Vertex one.
func (r *router) forwardsCountTokens(p *config.RPool, model string) bool {
	if len(p.Members) == 0 {
		return false
	}
	m := p.Members[0]
	if r.client == clientGemini {
		return translate.GeminiServed(translate.GeminiCountTokens, m.Backend.Schema)
	}
	return translate.CountsTokens(m.Backend, cmp.Or(m.Model, model))
}

// countAnswer readies the reading of a count_tokens answer: Anthropic's
// {"input_tokens": N} from the backend's count, or its error in Anthropic's
// shape.
func (u *upstream) countAnswer(r *translate.Response, ct string) *extprocv3.ProcessingResponse {
	u.finished = true // nothing to bill, cache or meter
	ans := u.s.tr.CountTokensResponse(u.member.Backend, u.served, r)
	u.body = ans.Body
	set := u.answerHeaders()
	status := r.Status
	if ans.Status != 0 && ans.Status != status {
		status = ans.Status
		set = append(set, header(":status", strconv.Itoa(status)))
	}
	if status < 200 || status >= 300 {
		u.conv = translate.AnthropicResponse(false, status, u.served)
	}
	if (u.body != nil || u.conv != nil) && ct != "application/json" {
		set = append(set, header("content-type", "application/json"))
	}
	return responseHeadersResponse(&extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: set}})
}

// countBody rewrites a count_tokens answer's chunk (passed as it is when
// the backend answers in Anthropic's form).
func (u *upstream) countBody(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	out, pass := b.Body, true
	if u.body != nil {
		out, pass = u.body.Chunk(out, b.EndOfStream)
	}
	if u.conv != nil {
		if o, p := u.conv.Chunk(out, b.EndOfStream); !p {
			out, pass = o, false
		}
	}
	if pass {
		return continueResponseBody
	}
	return responseBodyResponse(&extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
		Mutation: &extprocv3.BodyMutation_Body{Body: out}}})
}

// estimatedCount answers count_tokens with llmproc's estimate of body's
// input tokens, marked estimated: {"input_tokens": N} for Anthropic
// clients, {"totalTokens": N} for Gemini clients, and for the Responses
// API's input_tokens (client countResponses)
// {"object":"response.input_tokens","input_tokens": N}.
func estimatedCount(rt *config.Runtime, client, model string, body []byte) *extprocv3.ProcessingResponse {
	key := `{"input_tokens":`
	switch client {
	case countResponses:
		key = `{"object":"response.input_tokens","input_tokens":`
	case clientGemini:
		key = `{"totalTokens":`
		if hub := geminiHub(body, model); hub != nil {
			body = hub
		}
	}
	n := rt.Classifier.InputTokensOfValid(body)
	b := strconv.AppendInt([]byte(key), int64(n), 10)
	b = append(b, '}')
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(http.StatusOK)},
			Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				header("content-type", "application/json"),
				header("content-length", strconv.Itoa(len(b))),
				header(HeaderTokenCount, "estimated"),
			}},
			Body:    b,
			Details: "llmproc_count_tokens_estimated",
		},
	}}
}
