package translate

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// Embeddings on Bedrock: POST {base}/model/{modelId}/invoke, SigV4-signed
// as Converse is, with the model family's own body.
//
// Amazon Titan (amazon.titan-embed-*): one input a call, {inputText,
// dimensions} (the multimodal model: embeddingConfig.outputEmbeddingLength;
// Titan Text v1 takes no dimensions); the answer's embedding and
// inputTextTokenCount.
//
// Cohere (cohere.embed-*): up to 96 texts, {texts, input_type:
// "search_document"} — OpenAI's API has no input type, and documents are
// what most embeddings calls embed —, Embed v4 also output_dimension and
// embedding_types ["float"]; the answer's embeddings (an array, or by type
// under "float"), the token count from the x-amzn-bedrock-input-token-count
// header or meta.billed_units.input_tokens.

const cohereMaxTexts = 96

func (b bedrock) embed(r *Request, req embedRequest) (embedKind, *Upstream, error) {
	be := r.Backend
	id := strings.ToLower(r.Model)
	var kind embedKind
	var body []byte
	var err error
	switch {
	case strings.Contains(id, "titan-embed"):
		kind = embedTitan
		body, err = titanBody(be, r.Model, id, req)
	case strings.Contains(id, "cohere.embed"):
		kind = embedCohere
		body, err = cohereBody(be, r.Model, id, req)
	default:
		err = &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "unsupported_model", Param: "model",
			Message: fmt.Sprintf("Model %q on backend %q (schema bedrock) is not an embedding model llmproc translates to: use an Amazon Titan (amazon.titan-embed-*) or Cohere (cohere.embed-*) model.", r.Model, be.Name)}
	}
	if err != nil {
		return kind, nil, err
	}
	path := be.BasePath + "/model/" + awsEscape(r.Model) + "/invoke"
	creds, err := b.credentials(be)
	if err != nil {
		return kind, nil, err
	}
	signed, err := b.sign(be, path, body, creds)
	if err != nil {
		return kind, nil, err
	}
	up := &Upstream{Path: path, Body: body, SetHeaders: make([][2]string, 0, 4)}
	up.SetHeaders = append(up.SetHeaders, [2]string{"accept", "application/json"})
	up.SetHeaders = append(up.SetHeaders, signed...)
	return kind, up, nil
}

func titanBody(be *config.RBackend, model, id string, req embedRequest) ([]byte, error) {
	if err := req.maxInputs(be, model, 1); err != nil {
		return nil, err
	}
	out := make([]byte, 0, req.textBytes+64)
	out = append(out, `{"inputText":`...)
	out = appendJSONString(out, req.texts[0])
	if req.dims > 0 {
		switch {
		case strings.Contains(id, "titan-embed-text-v1"):
			if err := Unsupported(be, "dimensions"); err != nil {
				return nil, err
			}
		case strings.Contains(id, "titan-embed-image"):
			out = append(out, `,"embeddingConfig":{"outputEmbeddingLength":`...)
			out = strconv.AppendInt(out, req.dims, 10)
			out = append(out, '}')
		default:
			out = append(out, `,"dimensions":`...)
			out = strconv.AppendInt(out, req.dims, 10)
		}
	}
	return append(out, '}'), nil
}

func cohereBody(be *config.RBackend, model, id string, req embedRequest) ([]byte, error) {
	if err := req.maxInputs(be, model, cohereMaxTexts); err != nil {
		return nil, err
	}
	v4 := strings.Contains(id, "embed-v4")
	if req.dims > 0 && !v4 {
		if err := Unsupported(be, "dimensions"); err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, req.textBytes+len(req.texts)*4+96)
	out = append(out, `{"texts":[`...)
	for i, text := range req.texts {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, text)
	}
	out = append(out, `],"input_type":"search_document"`...)
	if v4 {
		out = append(out, `,"embedding_types":["float"]`...)
		if req.dims > 0 {
			out = append(out, `,"output_dimension":`...)
			out = strconv.AppendInt(out, req.dims, 10)
		}
	}
	return append(out, '}'), nil
}

// bedrockInputTokens reads the x-amzn-bedrock-input-token-count header.
func bedrockInputTokens(header func(string) string) (int64, bool) {
	if header == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(header("x-amzn-bedrock-input-token-count")), 10, 64)
	return max(n, 0), err == nil
}

// titanVectors reads a Titan embeddings answer: embedding (or
// embeddingsByType.float) and inputTextTokenCount (else the header).
func titanVectors(v gjson.Result, header func(string) string) embedVectors {
	var ev embedVectors
	vec := v.Get("embedding")
	if !vec.IsArray() {
		vec = v.Get("embeddingsByType.float")
	}
	if vec.Exists() {
		ev.vectors = []gjson.Result{vec}
	}
	if n := v.Get("inputTextTokenCount"); n.Type == gjson.Number {
		ev.tokens, ev.known = max(n.Int(), 0), true
	} else {
		ev.tokens, ev.known = bedrockInputTokens(header)
	}
	return ev
}

// cohereVectors reads a Cohere embed answer: embeddings as an array of
// vectors (embeddings_floats) or under "float" (embeddings_by_type).
func cohereVectors(v gjson.Result, header func(string) string) embedVectors {
	var ev embedVectors
	list := v.Get("embeddings")
	if !list.IsArray() {
		list = list.Get("float")
	}
	list.ForEach(func(_, e gjson.Result) bool {
		ev.vectors = append(ev.vectors, e)
		return true
	})
	ev.tokens, ev.known = bedrockInputTokens(header)
	if n := v.Get("meta.billed_units.input_tokens"); !ev.known && n.Type == gjson.Number {
		ev.tokens, ev.known = max(n.Int(), 0), true
	}
	return ev
}
