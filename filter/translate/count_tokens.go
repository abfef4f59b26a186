package translate

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// Anthropic's POST /v1/messages/count_tokens, sent to the backends that
// count tokens themselves, each its own way:
//
//   - Anthropic: /v1/messages/count_tokens, the body as for Messages.
//   - Claude on Bedrock: CountTokens, POST /model/{modelId}/count-tokens
//     with {"input":{"invokeModel":{"body": base64 of the InvokeModel
//     body}}}, answered {"inputTokens": N}. It takes foundation-model ids
//     only, so a cross-region inference profile's geography prefix (us.,
//     eu., apac., global., …) is dropped.
//   - Claude on Vertex: POST …/publishers/anthropic/models/
//     count-tokens:rawPredict, the body with model and anthropic_version,
//     answered as Anthropic does.
//   - Gemini and Gemini on Vertex: countTokens, the request translated as
//     for generateContent (through OpenAI's form, like a Messages request to
//     Gemini), answered {"totalTokens": N}.
//
// Every answer reaches the client as Anthropic's {"input_tokens": N}.

// CountsTokens reports whether b counts the tokens of a request for model
// itself (CountTokensRequest); otherwise llmproc estimates them.
func CountsTokens(b *config.RBackend, model string) bool {
	switch b.Schema {
	case "anthropic", "gemini", "vertex":
		return true
	case "bedrock":
		return AnthropicNativeServed(b, model)
	}
	return false
}

// CountTokensRequest prepares a count_tokens request (an Anthropic
// Messages body without max_tokens) for a backend that CountsTokens.
func (s *Set) CountTokensRequest(r *Request, version, beta string) (*Upstream, error) {
	be := r.Backend
	switch {
	case be.Schema == "anthropic":
		up, err := AnthropicNative(r, version, beta)
		if err == nil {
			up.Path = be.BasePath + "/v1/messages/count_tokens"
		}
		return up, err
	case be.Schema == "bedrock":
		invoke, err := cloudBody(withMaxTokens(r), bedrockAnthropicVersion, beta, true)
		if err != nil {
			return nil, err
		}
		b := append([]byte(`{"input":{"invokeModel":{"body":"`), base64.StdEncoding.EncodeToString(invoke)...)
		b = append(b, `"}}}`...)
		return s.bedrock.signed(be, be.BasePath+"/model/"+awsEscape(foundationModel(r.Model))+"/count-tokens", b, "application/json")
	case be.Schema == "vertex" && vertexClaude(r.Model):
		// Unlike rawPredict, count-tokens names the model in the body.
		body, err := cloudBody(r, vertexAnthropicVersion, "", false)
		if err != nil {
			return nil, err
		}
		if body, err = sjson.SetBytes(body, "model", vertexClaudeModel(r.Model)); err != nil {
			return nil, apierr.Internal(err)
		}
		token, err := s.vertex.tokens.Token(be)
		if err != nil {
			return nil, err
		}
		up := vertexUpstream(be, "anthropic", "count-tokens:rawPredict", body, token)
		if beta != "" {
			up.SetHeaders = append(up.SetHeaders, [2]string{"anthropic-beta", beta})
		}
		return up, nil
	case be.Schema == "gemini" || be.Schema == "vertex":
		ob, err := AnthropicRequestToOpenAI(withMaxTokens(r).Body)
		if err != nil {
			return nil, err
		}
		rr := *r
		rr.Body, rr.Stream = ob, false
		gen, err := geminiRequestBody(&rr)
		if err != nil {
			return nil, err
		}
		if be.Schema == "vertex" {
			token, err := s.vertex.tokens.Token(be)
			if err != nil {
				return nil, err
			}
			model := strings.TrimPrefix(strings.TrimPrefix(r.Model, "models/"), "publishers/google/models/")
			return vertexUpstream(be, "google", url.PathEscape(model)+":countTokens", gen, token), nil
		}
		// The Gemini API counts a whole GenerateContentRequest, which then
		// names its model.
		b := append([]byte(`{"generateContentRequest":{"model":`), appendJSONString(nil, "models/"+strings.TrimPrefix(r.Model, "models/"))...)
		if len(gen) > 2 {
			b = append(b, ',')
		}
		b = append(b, gen[1:]...)
		b = append(b, '}')
		up := &Upstream{Path: be.BasePath + "/v1beta/models/" + geminiModel(r.Model) + ":countTokens", Body: b}
		if be.Credential != "" {
			up.SetHeaders = append(up.SetHeaders, [2]string{"x-goog-api-key", be.Credential})
		}
		return up, nil
	}
	return nil, apierr.New(http.StatusBadRequest, apierr.TypeInvalidRequest, "unsupported_endpoint",
		"Backend %q (schema %s) does not count tokens.", be.Name, be.Schema)
}

// withMaxTokens gives a count_tokens body the max_tokens a Messages body
// needs (count_tokens has none): above a thinking budget, which must stay
// below it.
func withMaxTokens(r *Request) *Request {
	if gjson.GetBytes(r.Body, "max_tokens").Exists() {
		return r
	}
	n := max(gjson.GetBytes(r.Body, "thinking.budget_tokens").Int()+1, 4096)
	b, err := sjson.SetBytes(append([]byte(nil), r.Body...), "max_tokens", n)
	if err != nil {
		return r
	}
	rr := *r
	rr.Body = b
	return &rr
}

// foundationModel drops a cross-region inference profile's geography from
// a Bedrock model id (us.anthropic.claude-… → anthropic.claude-…).
func foundationModel(id string) string {
	if i := strings.Index(id, ".anthropic."); i > 0 && !strings.Contains(id[:i], ":") && !strings.Contains(id[:i], "/") {
		return id[i+1:]
	}
	return id
}

// CountTokensResponse is how a count_tokens answer reaches the client: a
// 2xx answer as Anthropic's {"input_tokens": N} (Body nil when the backend
// answers so already), an error normalized into OpenAI error JSON (which
// the caller renders in Anthropic's shape).
func (s *Set) CountTokensResponse(b *config.RBackend, model string, r *Response) Answer {
	ok := r.Status >= 200 && r.Status < 300
	switch {
	case b.Schema == "anthropic" && ok, b.Schema == "vertex" && vertexClaude(model) && ok:
		return Answer{}
	case b.Schema == "anthropic":
		return anthropic{}.Response(r)
	case b.Schema == "bedrock" && ok:
		return Answer{Body: &countBody{field: "inputTokens"}, ContentType: "application/json"}
	case b.Schema == "bedrock":
		return s.bedrock.Response(r)
	case b.Schema == "vertex" && vertexClaude(model):
		return vertexClaudeError(r.Status)
	case ok:
		return Answer{Body: &countBody{field: "totalTokens"}, ContentType: "application/json"}
	}
	return geminiAnswer(r, nil)
}

// countBody buffers a provider's count and answers {"input_tokens": N}.
type countBody struct {
	field string
	buf   []byte
}

func (c *countBody) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if len(c.buf)+len(chunk) <= maxErrorBody {
		c.buf = append(c.buf, chunk...)
	}
	if !eos {
		return nil, false
	}
	n := gjson.GetBytes(c.buf, c.field)
	if n.Type != gjson.Number {
		return ProviderError(http.StatusBadGateway, "upstream_error", "The backend's token count could not be read.").JSON(), false
	}
	return append(strconv.AppendInt([]byte(`{"input_tokens":`), n.Int(), 10), '}'), false
}
