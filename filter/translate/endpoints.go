package translate

import (
	"net/url"
	"slices"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// OpenAI's client APIs beside chat completions, which llmproc passes to the
// backends that speak them natively; Responses is translated for every other
// backend (EndpointTranslated, client_responses.go), embeddings for Gemini,
// Vertex AI and Bedrock (EmbeddingsTranslated, embeddings.go).
const (
	EndpointResponses   = "responses"   // POST /v1/responses
	EndpointEmbeddings  = "embeddings"  // POST /v1/embeddings
	EndpointCompletions = "completions" // POST /v1/completions (legacy)
	// EndpointInputTokens counts a Responses request's input tokens.
	EndpointInputTokens = "responses/input_tokens" // POST /v1/responses/input_tokens
)

// endpointSchemas lists, per endpoint, the backend schemas that serve it
// natively.
var endpointSchemas = map[string][]string{
	EndpointResponses:   {"openai", "azure-openai"},
	EndpointEmbeddings:  {"openai", "azure-openai", "openai-compatible"},
	EndpointCompletions: {"openai", "openai-compatible"},
	EndpointInputTokens: {"openai"},
}

// EndpointServed reports whether a backend of schema serves endpoint natively.
func EndpointServed(endpoint, schema string) bool {
	for _, s := range endpointSchemas[endpoint] {
		if s == schema {
			return true
		}
	}
	return false
}

// EndpointTranslated reports whether a request of endpoint reaches a backend
// of schema translated through chat completions (ResponsesRequestToChat):
// Responses, for every schema that does not serve it natively.
func EndpointTranslated(endpoint, schema string) bool {
	return endpoint == EndpointResponses && !EndpointServed(endpoint, schema)
}

// EndpointSchemas lists the schemas that serve endpoint, natively or (for
// embeddings) translated, for messages.
func EndpointSchemas(endpoint string) []string {
	if endpoint == EndpointEmbeddings {
		return append(slices.Clone(endpointSchemas[endpoint]), embeddingsSchemas...)
	}
	return endpointSchemas[endpoint]
}

// EndpointNative prepares a pass-through request of one of OpenAI's other
// APIs (EndpointResponses, EndpointEmbeddings, EndpointCompletions) for a
// backend that serves it (EndpointServed): only the path, the model and the
// credential change. Legacy completions share chat's rewrites (drop_params,
// stream_options.include_usage for streams) because their shape is chat's.
//
// Azure: embeddings and completions go to the deployment's path with the
// backend's api-version, the body's model unchanged (Azure ignores it);
// Responses go to Azure's v1 API, /openai/v1/responses, which takes no
// api-version and names the deployment in the body's model.
func EndpointNative(r *Request, endpoint string) (*Upstream, error) {
	be := r.Backend
	if endpoint == EndpointCompletions {
		body, err := rewriteOpenAI(r, r.Model, streamOptionsAllowed(be))
		if err != nil {
			return nil, err
		}
		return withCredential(&Upstream{Path: be.BasePath + "/v1/completions", Body: body}, be.Schema, be.Azure.Auth, be.Credential), nil
	}
	up := &Upstream{Path: be.BasePath + "/v1/" + endpoint}
	model := r.Model
	if be.Schema == "azure-openai" {
		if endpoint == EndpointResponses {
			up.Path = be.BasePath + "/openai/v1/responses"
		} else {
			up.Path = be.BasePath + "/openai/deployments/" + url.PathEscape(r.Model) + "/" + endpoint +
				"?api-version=" + url.QueryEscape(be.Azure.APIVersion)
			model = ""
		}
	}
	if model != "" && gjson.GetBytes(r.Body, "model").Str != model {
		b, err := sjson.SetBytes(r.Body, "model", model)
		if err != nil {
			return nil, apierr.Internal(err)
		}
		up.Body = b
	}
	return withCredential(up, be.Schema, be.Azure.Auth, be.Credential), nil
}

// withCredential sets the backend's key as its schema sends it: api-key for
// Azure (unless its auth is bearer), a bearer token otherwise.
func withCredential(up *Upstream, schema, azureAuth, credential string) *Upstream {
	switch {
	case credential == "":
	case schema == "azure-openai" && azureAuth != "bearer":
		up.SetHeaders = append(up.SetHeaders, [2]string{"api-key", credential})
	default:
		up.SetHeaders = append(up.SetHeaders, [2]string{"authorization", "Bearer " + credential})
	}
	return up
}
