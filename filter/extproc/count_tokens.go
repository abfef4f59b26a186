package extproc

import (
	"net/http"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
)

// POST /v1/messages/count_tokens, Anthropic's token counting: the router
// role forwards it when the pool's first backend is Anthropic (the upstream
// role sends it natively, like a Messages request, and passes the answer
// through: nothing is billed, cached or counted against a budget); otherwise,
// and on an attempt that failed over to another schema, llmproc answers with
// its own estimate (route.Features.EstimatedInputTokens, the routing
// estimator) and says so in HeaderTokenCount.

const (
	countTokensPath = "/v1/messages/count_tokens"
	// endpointCountTokens is KeyEndpoint's value for a count_tokens request.
	endpointCountTokens = "count_tokens"
	// HeaderTokenCount is "estimated" on an answer llmproc computed itself.
	HeaderTokenCount = "x-llmproc-token-count"
)

// forwardsCountTokens reports whether a pool's count_tokens requests go to
// its first backend: for Anthropic clients an Anthropic one, for Gemini
// clients (models.countTokens) a Gemini or Vertex one.
func (r *router) forwardsCountTokens(p *config.RPool) bool {
	if len(p.Members) == 0 {
		return false
	}
	if r.client == clientGemini {
		return translate.GeminiServed(translate.GeminiCountTokens, p.Members[0].Backend.Schema)
	}
	return p.Members[0].Backend.Schema == "anthropic"
}

// estimatedCount answers count_tokens with llmproc's estimate of body's
// input tokens, marked estimated: {"input_tokens": N} for Anthropic
// clients, {"totalTokens": N} for Gemini clients.
func estimatedCount(rt *config.Runtime, client, model string, body []byte) *extprocv3.ProcessingResponse {
	key := `{"input_tokens":`
	if client == clientGemini {
		key = `{"totalTokens":`
		if hub := geminiHub(body, model); hub != nil {
			body = hub
		}
	}
	n := rt.Classifier.FeaturesOfValid(body).EstimatedInputTokens
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
