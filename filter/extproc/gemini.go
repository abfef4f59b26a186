package extproc

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
)

// Google's Gemini API as a client API, a peer of OpenAI's and Anthropic's:
// POST /v1beta/models/{model}:{method} (and /v1/models/{model}:{method})
// for generateContent, streamGenerateContent (alt=sse, or a streamed JSON
// array without it), countTokens, embedContent and batchEmbedContents;
// GET /v1beta/models[/{model}] lists the registry in Gemini's shape (so does
// GET /v1/models when the request carries a Google API key). Every path
// under /v1beta/ answers errors in Google's shape, unknown ones too.
//
// The model comes from the path; the API key from x-goog-api-key or the
// key query parameter, which the router removes from the path (and, under
// client_keys, checks as the llmproc key). A Gemini or Vertex backend gets
// the body as the client sent it (translate.GeminiNative); any other gets
// it converted to chat completions (translate.GeminiRequestToOpenAI), and
// its answer is converted back (translate.GeminiResponse). The embedding
// methods pass as they are to Gemini backends; for any other they become
// an OpenAI embeddings body (translate.GeminiEmbedToOpenAI) that goes on as
// POST /v1/embeddings does (endpointRequest), and the answer is converted
// back (translate.GeminiEmbedResponse). countTokens goes to a Gemini or
// Vertex first backend, else llmproc estimates it.

const clientGemini = "gemini"

// KeyGeminiMethod is a Gemini client's method; KeyGeminiFraming is "array"
// for a stream the client asked for without alt=sse.
const (
	KeyGeminiMethod  = "gemini_method"
	KeyGeminiFraming = "gemini_framing"
)

// geminiPath reports a path that belongs to Gemini's API: everything under
// /v1beta/, and the methods under /v1/models/.
func geminiPath(path string) bool {
	if strings.HasPrefix(path, "/v1beta/") || path == "/v1beta" {
		return true
	}
	rest, ok := strings.CutPrefix(path, "/v1/models/")
	return ok && strings.Contains(rest, ":")
}

// geminiMethodPath splits /v1beta/models/{model}:{method} (or /v1/…).
func geminiMethodPath(path string) (model, method string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/v1beta/models/")
	if !ok {
		if rest, ok = strings.CutPrefix(path, "/v1/models/"); !ok {
			return "", "", false
		}
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return "", "", false
	}
	model, err := url.PathUnescape(rest[:i])
	if err != nil || model == "" || strings.Contains(model, "/") {
		return "", "", false
	}
	return model, rest[i+1:], true
}

// geminiQuery reads a Gemini request's query: the API key (removed from
// the path the request goes on with) and alt. rest is the query without
// the key.
func geminiQuery(q string) (key, alt, rest string) {
	if q == "" {
		return "", "", ""
	}
	var kept []string
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "key":
			key, _ = url.QueryUnescape(v)
			continue
		case "alt":
			alt, _ = url.QueryUnescape(v)
		}
		kept = append(kept, kv)
	}
	return key, alt, strings.Join(kept, "&")
}

// geminiHeaders handles a Gemini client's request headers: the models
// listing is answered here; a method is checked and remembered. done
// reports an answer (resp or err).
func (r *router) geminiHeaders() (resp *extprocv3.ProcessingResponse, err error, done bool) {
	model, method, ok := geminiMethodPath(r.path)
	switch {
	case ok && isGeminiMethod(method):
		if r.method != http.MethodPost {
			return nil, methodNotAllowed(r.method, r.path), true
		}
		r.geminiModel, r.geminiMethod = model, method
		r.countTokens = method == translate.GeminiCountTokens
		if method == translate.GeminiStream && r.geminiAlt != "sse" {
			r.geminiArray = true
		}
		return nil, nil, false
	case !ok && (r.path == "/v1beta/models" || r.path == "/v1/models" ||
		strings.HasPrefix(r.path, "/v1beta/models/") || strings.HasPrefix(r.path, "/v1/models/")):
		if r.method != http.MethodGet {
			return nil, methodNotAllowed(r.method, r.path), true
		}
		id := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(r.path, "/v1beta"), "/v1"), "/models")
		resp, err := r.geminiModels(strings.TrimPrefix(id, "/"))
		return resp, err, true
	}
	r.s.rejected("unknown_url")
	return nil, apierr.New(http.StatusNotFound, apierr.TypeInvalidRequest, "unknown_url",
		"Invalid URL (%s %s): llmproc serves the Gemini API's models.generateContent, streamGenerateContent, countTokens, embedContent and batchEmbedContents.", r.method, r.path), true
}

func isGeminiMethod(m string) bool {
	for _, x := range translate.GeminiMethods {
		if m == x {
			return true
		}
	}
	return false
}

func isGeminiEmbed(m string) bool {
	return m == translate.GeminiEmbed || m == translate.GeminiBatchEmbed
}

// geminiModels answers GET /v1beta/models and /v1beta/models/{model} from
// the registry, in Gemini's Model shape.
func (r *router) geminiModels(id string) (*extprocv3.ProcessingResponse, error) {
	var b []byte
	if id == "" {
		b = append(b, `{"models":[`...)
		n := 0
		for _, m := range r.rt.Models {
			if !r.mayUse(m.Name) {
				continue
			}
			if n++; n > 1 {
				b = append(b, ',')
			}
			b = appendGeminiModel(b, m)
		}
		b = append(b, "]}"...)
	} else {
		id = strings.TrimPrefix(id, "models/")
		m, ok := r.rt.Model(id)
		if !ok || !r.mayUse(id) {
			return nil, r.s.reject(&apierr.Error{Status: http.StatusNotFound, Type: apierr.TypeInvalidRequest, Code: "model_not_found", Param: "model",
				Message: "models/" + id + " is not found for API version v1beta, or is not supported for this method."})
		}
		b = appendGeminiModel(b, m)
	}
	return jsonAnswer(b, "llmproc_models"), nil
}

func appendGeminiModel(b []byte, m *config.RModel) []byte {
	b = append(b, `{"name":`...)
	b = strconv.AppendQuote(b, "models/"+m.Name)
	b = append(b, `,"baseModelId":`...)
	b = strconv.AppendQuote(b, m.Name)
	b = append(b, `,"version":"llmproc","displayName":`...)
	b = strconv.AppendQuote(b, m.Name)
	if m.Kind == config.KindEmbedding {
		b = append(b, `,"supportedGenerationMethods":["embedContent","batchEmbedContents"]`...)
	} else {
		b = append(b, `,"supportedGenerationMethods":["generateContent","streamGenerateContent","countTokens"]`...)
	}
	return append(b, '}')
}

// jsonAnswer is a 200 JSON immediate response.
func jsonAnswer(b []byte, details string, extra ...*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	hs := append([]*corev3.HeaderValueOption{
		header("content-type", "application/json"),
		header("content-length", strconv.Itoa(len(b))),
	}, extra...)
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_OK},
			Headers: &extprocv3.HeaderMutation{SetHeaders: hs},
			Body:    b,
			Details: details,
		},
	}}
}

// geminiHub is a Gemini client's generateContent (or countTokens) body in
// chat-completions form, for the routing features and the token estimate;
// nil when it cannot be converted (the upstream role then refuses it).
func geminiHub(body []byte, model string) []byte {
	if gcr := gjson.GetBytes(body, "generateContentRequest"); gcr.IsObject() {
		body = []byte(gcr.Raw)
	} else if gcr := gjson.GetBytes(body, "generate_content_request"); gcr.IsObject() {
		body = []byte(gcr.Raw)
	}
	out, err := translate.GeminiRequestToOpenAI(body, model, false)
	if err != nil {
		return nil
	}
	return out
}

// geminiFraming is how the client takes its answer.
func geminiFraming(method, framing string) translate.GeminiFraming {
	switch {
	case method != translate.GeminiStream:
		return translate.GeminiJSON
	case framing == "array":
		return translate.GeminiArray
	}
	return translate.GeminiSSE
}

// unservedGemini is the 400 for a backend that cannot serve a Gemini
// client's embedding method (one without embeddings: Anthropic).
func unservedGemini(method string, be *config.RBackend) *apierr.Error {
	return apierr.New(http.StatusBadRequest, apierr.TypeInvalidRequest, "unsupported_endpoint",
		"models.%s is not supported by backend %q (schema %s): it has no embeddings API (llmproc serves embeddings on %s backends).",
		method, be.Name, be.Schema, strings.Join(translate.EndpointSchemas(translate.EndpointEmbeddings), ", "))
}

// geminiRequest fills what llmproc reads of a request from a Gemini
// client's validated body and path: the model, whether it streams, the
// output cap (generationConfig.maxOutputTokens).
func (r *router) geminiRequest(req *chatRequest, body []byte) {
	req.model = gjson.Result{Type: gjson.String, Str: r.geminiModel}
	if r.geminiMethod == translate.GeminiStream {
		req.stream = gjson.Result{Type: gjson.True}
	}
	gjson.GetBytes(body, "@this").ForEach(func(k, v gjson.Result) bool {
		if k.Str == "generationConfig" || k.Str == "generation_config" {
			v.ForEach(func(k, v gjson.Result) bool {
				if k.Str == "maxOutputTokens" || k.Str == "max_output_tokens" {
					req.maxTokens = v
				}
				return true
			})
		}
		return true
	})
}

// geminiSampling is a Gemini body's generationConfig temperature and seed
// as top-level members, which the cache's deterministic mode reads.
func geminiSampling(body []byte) []byte {
	out := []byte{'{'}
	gjson.GetBytes(body, "@this").ForEach(func(k, v gjson.Result) bool {
		if k.Str != "generationConfig" && k.Str != "generation_config" {
			return true
		}
		v.ForEach(func(k, v gjson.Result) bool {
			if k.Str == "temperature" || k.Str == "seed" {
				if len(out) > 1 {
					out = append(out, ',')
				}
				out = strconv.AppendQuote(out, k.Str)
				out = append(out, ':')
				out = append(out, v.Raw...)
			}
			return true
		})
		return true
	})
	return append(out, '}')
}
