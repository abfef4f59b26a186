package fakebedrock

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/llmproc/llmproc/e2e/fake"
)

// embedModel reports whether a model ID (escaped or not) names an Amazon
// Titan or Cohere embedding model, which fakebedrock serves on /invoke.
func embedModel(id string) bool {
	return strings.Contains(id, "titan-embed") || strings.Contains(id, "cohere.embed")
}

// embed answers InvokeModel on an embedding model. Titan: {inputText,
// dimensions} → {embedding, inputTextTokenCount, embeddingsByType}; Cohere:
// {texts, input_type, output_dimension, embedding_types} → embeddings as an
// array (embeddings_floats) or, with embedding_types, under "float"
// (embeddings_by_type). Each vector is fake.Vector of its text; the token
// count (the behaviour's Usage.Input, else the words of the input) is also
// in the x-amzn-bedrock-input-token-count header. A behaviour Status of 400
// or more answers an AWS error.
func (s *Server) embed(w http.ResponseWriter, req Request) {
	var in struct {
		InputText       *string  `json:"inputText"`
		Dimensions      int      `json:"dimensions"`
		Texts           []string `json:"texts"`
		InputType       string   `json:"input_type"`
		OutputDimension int      `json:"output_dimension"`
		EmbeddingTypes  []string `json:"embedding_types"`
	}
	titan := strings.Contains(req.ModelID, "titan-embed")
	err := json.Unmarshal(req.Body, &in)
	switch {
	case err != nil:
	case titan && in.InputText == nil:
		err = errors.New("inputText is required")
	case !titan && (len(in.Texts) == 0 || in.InputType == ""):
		err = errors.New("texts and input_type are required")
	}
	if err != nil {
		awsError(w, http.StatusBadRequest, "ValidationException", "Malformed input request: "+err.Error())
		return
	}
	b, _ := s.Next(req)
	if b.Status >= 400 {
		msg := b.ErrorMessage
		if msg == "" {
			msg = http.StatusText(b.Status)
		}
		awsError(w, b.Status, b.ErrorType, msg)
		return
	}
	texts := in.Texts
	if titan {
		texts = []string{*in.InputText}
	}
	tokens := b.Usage.Input
	if tokens == 0 {
		for _, t := range texts {
			tokens += len(strings.Fields(t))
		}
	}
	var answer map[string]any
	if titan {
		vec := fake.Vector(texts[0], in.Dimensions)
		answer = map[string]any{"embedding": vec, "inputTextTokenCount": tokens, "embeddingsByType": map[string]any{"float": vec}}
	} else {
		vecs := make([]any, len(texts))
		for i, t := range texts {
			vecs[i] = fake.Vector(t, in.OutputDimension)
		}
		answer = map[string]any{"id": "fake-embed", "texts": texts, "response_type": "embeddings_floats", "embeddings": vecs}
		if len(in.EmbeddingTypes) > 0 {
			answer["response_type"], answer["embeddings"] = "embeddings_by_type", map[string]any{"float": vecs}
		}
	}
	w.Header().Set("content-type", "application/json")
	w.Header().Set("x-amzn-bedrock-input-token-count", strconv.Itoa(tokens))
	json.NewEncoder(w).Encode(answer) //nolint:errcheck
}
