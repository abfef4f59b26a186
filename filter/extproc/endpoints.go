package extproc

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
	"github.com/llmproc/llmproc/filter/validate"
)

// OpenAI's client APIs beside chat completions: POST /v1/responses,
// /v1/embeddings and /v1/completions. They pass natively to the backends
// that serve them (translate.EndpointServed): the body as the client sent
// it but the model, the path and the credential. Their errors are OpenAI's.
// A Responses request to any other backend is translated
// (translate.EndpointTranslated): converted to chat completions, sent
// through the backend's translator, its chat answer converted back
// (translate.ResponsesResponse), so usage, cost, budgets and metrics read
// the chat form in between, as for chat.
// Embeddings are translated for Gemini, Vertex AI and Bedrock
// (translate.Set.Embeddings), their answers written in OpenAI's shape.
//
// A pool whose first backend does not serve the endpoint is refused by the
// router role with a 400 naming that backend. A later backend of a pool (a
// failover) that does not serve it is refused by the upstream role: the
// attempt answers that 400 itself, so a Responses body never reaches, say,
// Anthropic, and Envoy does not retry a 400.
//
// Their answers are read for usage (Responses: usage.NewResponsesTracker;
// embeddings and completions: usage.prompt_tokens/completion_tokens as in
// chat), priced, metered and settled against budgets like chat. Embeddings
// are deterministic: the exact cache stores their JSON answer byte for byte
// (cache.NewEmbeddingsAssembler) in the "deterministic" mode too. Responses
// answers are stored as their final response object (conversation.go,
// storeResponse) and replayed from it (cache.ReplayResponsesSSE).
// Completions bypass it: its assembler and replay rebuild chat completions
// and cannot store these answers faithfully.

var openAIEndpoints = map[string]string{
	"/v1/responses":   translate.EndpointResponses,
	"/v1/embeddings":  translate.EndpointEmbeddings,
	"/v1/completions": translate.EndpointCompletions,
	inputTokensPath:   translate.EndpointInputTokens,
}

// genAIOperations are the endpoints' gen_ai_operation_name (OpenTelemetry's
// GenAI names; a Responses call is a chat).
var genAIOperations = map[string]string{
	translate.EndpointEmbeddings:  "embeddings",
	translate.EndpointCompletions: "text_completion",
}

var endpointValidators = map[string]func([]byte, validate.Options) error{
	translate.EndpointResponses:   validate.Responses,
	translate.EndpointEmbeddings:  validate.Embeddings,
	translate.EndpointCompletions: validate.Completions,
	translate.EndpointInputTokens: validate.Responses, // a Responses body, counted
}

// endpointPath is the client path of an endpoint.
func endpointPath(endpoint string) string { return "/v1/" + endpoint }

// unservedEndpoint is the 400 for a backend that does not serve endpoint.
func unservedEndpoint(endpoint string, be *config.RBackend) *apierr.Error {
	return apierr.New(http.StatusBadRequest, apierr.TypeInvalidRequest, "unsupported_endpoint",
		"POST %s is not supported by backend %q (schema %s): llmproc serves it only on %s backends.",
		endpointPath(endpoint), be.Name, be.Schema, strings.Join(translate.EndpointSchemas(endpoint), ", "))
}

// checkEndpoint refuses, in the router, a registry model of the wrong kind
// (an embedding model outside /v1/embeddings, a chat model in it) and a
// pool whose first backend does not serve the request's endpoint.
func (r *router) checkEndpoint(d config.Decision) *apierr.Error {
	embeds := r.endpoint == translate.EndpointEmbeddings || isGeminiEmbed(r.geminiMethod)
	if m := d.Model; m != nil && (m.Kind == config.KindEmbedding) != embeds {
		what := "an embedding model; it serves only POST /v1/embeddings (Gemini: embedContent, batchEmbedContents)"
		if m.Kind != config.KindEmbedding {
			what = "not an embedding model (models[].kind)"
		}
		return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "model_kind_mismatch", Param: "model",
			Message: "The model `" + m.Name + "` is " + what + "."}
	}
	if isGeminiEmbed(r.geminiMethod) && len(d.Pool.Members) > 0 {
		if be := d.Pool.Members[0].Backend; !translate.GeminiServed(r.geminiMethod, be.Schema) && !served(translate.EndpointEmbeddings, be.Schema) {
			return unservedGemini(r.geminiMethod, be)
		}
	}
	if r.endpoint == "" || r.endpoint == translate.EndpointInputTokens || len(d.Pool.Members) == 0 {
		return nil // input_tokens is estimated where it is not served
	}
	if be := d.Pool.Members[0].Backend; !served(r.endpoint, be.Schema) {
		return unservedEndpoint(r.endpoint, be)
	}
	return nil
}

// endpointRequest prepares an attempt of one of these endpoints but a
// translated Responses request: embeddings translated for Gemini, Vertex
// and Bedrock (u.embed then translates the answer), refused when the
// backend does not serve the endpoint, passed natively otherwise.
func (u *upstream) endpointRequest(tr *translate.Request) (*translate.Upstream, error) {
	be := u.member.Backend
	switch {
	case u.endpoint == translate.EndpointEmbeddings && translate.EmbeddingsTranslated(be.Schema):
		up, call, err := u.s.tr.Embeddings(tr)
		u.embed = call
		return up, err
	case !translate.EndpointServed(u.endpoint, be.Schema):
		return nil, unservedEndpoint(u.endpoint, be)
	}
	return translate.EndpointNative(tr, u.endpoint)
}

// served reports whether a backend of schema takes endpoint in any way:
// natively, Responses through chat completions, embeddings translated.
func served(endpoint, schema string) bool {
	return translate.EndpointServed(endpoint, schema) || translate.EndpointTranslated(endpoint, schema) ||
		endpoint == translate.EndpointEmbeddings && translate.EmbeddingsTranslated(schema)
}

// responsesErrorEvent is e as the error event of a Responses stream.
func responsesErrorEvent(e *apierr.Error) []byte {
	data, _ := json.Marshal(struct {
		Type    string  `json:"type"`
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Param   *string `json:"param"`
	}{"error", e.Code, e.Message, nil})
	return append(append([]byte("event: error\ndata: "), data...), "\n\n"...)
}
