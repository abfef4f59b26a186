package translate

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Embeddings on Google's APIs.
//
// Gemini (AI Studio): POST /v1beta/models/{model}:batchEmbedContents with
// one EmbedContentRequest per input ({model: "models/{model}", content:
// {parts: [{text}]}, outputDimensionality}); the answer's embeddings[].values
// in order, and usageMetadata.promptTokenCount when the API reports it.
//
// Vertex AI: POST .../publishers/google/models/{model}:predict with one
// instance per input ({content}) and parameters {autoTruncate: false,
// outputDimensionality}: OpenAI refuses an input over the model's limit
// rather than embedding part of it, and so does llmproc. The answer's
// predictions[].embeddings.values, and the sum of their
// statistics.token_count. Vertex's gemini-embedding models take one
// instance a request.

func geminiEmbed(r *Request, req embedRequest) (*Upstream, error) {
	model := strings.TrimPrefix(r.Model, "models/")
	out := make([]byte, 0, req.textBytes+len(req.texts)*(len(model)+64)+16)
	out = append(out, `{"requests":[`...)
	for i, text := range req.texts {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"model":`...)
		out = appendJSONString(out, "models/"+model)
		out = append(out, `,"content":{"parts":[{"text":`...)
		out = appendJSONString(out, text)
		out = append(out, `}]}`...)
		if req.dims > 0 {
			out = append(out, `,"outputDimensionality":`...)
			out = strconv.AppendInt(out, req.dims, 10)
		}
		out = append(out, '}')
	}
	out = append(out, "]}"...)
	up := &Upstream{Path: r.Backend.BasePath + "/v1beta/models/" + geminiModel(model) + ":batchEmbedContents", Body: out}
	if r.Backend.Credential != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"x-goog-api-key", r.Backend.Credential})
	}
	return up, nil
}

// geminiVectors reads a BatchEmbedContentsResponse.
func geminiVectors(v gjson.Result) embedVectors {
	var ev embedVectors
	v.Get("embeddings").ForEach(func(_, e gjson.Result) bool {
		ev.vectors = append(ev.vectors, e.Get("values"))
		return true
	})
	if n := v.Get("usageMetadata.promptTokenCount"); n.Type == gjson.Number {
		ev.tokens, ev.known = max(n.Int(), 0), true
	}
	return ev
}

func (v vertex) embed(r *Request, req embedRequest) (*Upstream, error) {
	b := r.Backend
	model := strings.TrimPrefix(strings.TrimPrefix(r.Model, "models/"), "publishers/google/models/")
	if strings.HasPrefix(model, "gemini-embedding") {
		if err := req.maxInputs(b, model, 1); err != nil {
			return nil, err
		}
	}
	token, err := v.tokens.Token(b)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, req.textBytes+len(req.texts)*16+96)
	out = append(out, `{"instances":[`...)
	for i, text := range req.texts {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"content":`...)
		out = appendJSONString(out, text)
		out = append(out, '}')
	}
	out = append(out, `],"parameters":{"autoTruncate":false`...)
	if req.dims > 0 {
		out = append(out, `,"outputDimensionality":`...)
		out = strconv.AppendInt(out, req.dims, 10)
	}
	out = append(out, "}}"...)
	up := &Upstream{
		Path: b.BasePath + "/v1/projects/" + url.PathEscape(b.Vertex.Project) + "/locations/" + url.PathEscape(b.Vertex.Region) +
			"/publishers/google/models/" + url.PathEscape(model) + ":predict",
		Body: out,
	}
	if token != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"authorization", "Bearer " + token})
	}
	return up, nil
}

// vertexVectors reads a text-embedding PredictResponse. Usage is known when
// every prediction reports its token count (token_count, as predict writes
// it, or tokenCount).
func vertexVectors(v gjson.Result) embedVectors {
	ev := embedVectors{known: true}
	v.Get("predictions").ForEach(func(_, p gjson.Result) bool {
		e := p.Get("embeddings")
		ev.vectors = append(ev.vectors, e.Get("values"))
		n := e.Get("statistics.token_count")
		if !n.Exists() {
			n = e.Get("statistics.tokenCount")
		}
		if n.Type == gjson.Number {
			ev.tokens += max(n.Int(), 0)
		} else {
			ev.known = false
		}
		return true
	})
	ev.known = ev.known && len(ev.vectors) > 0
	return ev
}
