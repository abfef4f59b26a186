package fakegemini

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/llmproc/llmproc/e2e/fake"
)

// embedAction reports whether action is an embeddings method on req's API:
// batchEmbedContents on AI Studio, predict on Vertex.
func embedAction(req Request, action string) bool {
	if req.Project != "" {
		return action == "predict"
	}
	return action == "batchEmbedContents"
}

// embed answers batchEmbedContents (one embeddings[].values per request,
// usageMetadata.promptTokenCount when the behaviour's Usage.Prompt is set)
// or a Vertex predict (one prediction per instance, its token_count the
// number of words in its content). Each vector is fake.Vector of the text,
// outputDimensionality numbers long when asked. The behaviour's Status and
// Body answer as for generateContent.
func (s *Server) embed(w http.ResponseWriter, req Request) {
	var batch struct {
		Requests []struct {
			Model   string `json:"model"`
			Content struct {
				Parts []struct {
					Text string `json:"text"`
				} `json:"parts"`
			} `json:"content"`
			OutputDimensionality int `json:"outputDimensionality"`
		} `json:"requests"`
	}
	var predict struct {
		Instances []struct {
			Content string `json:"content"`
		} `json:"instances"`
		Parameters struct {
			OutputDimensionality int `json:"outputDimensionality"`
		} `json:"parameters"`
	}
	vertex := req.Project != ""
	var err error
	if vertex {
		err = json.Unmarshal(req.Body, &predict)
		if err == nil && len(predict.Instances) == 0 {
			err = errNoInputs
		}
	} else {
		err = json.Unmarshal(req.Body, &batch)
		if err == nil && len(batch.Requests) == 0 {
			err = errNoInputs
		}
		for _, r := range batch.Requests {
			if r.Model != "models/"+req.Model {
				writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "requests[].model must be models/"+req.Model, "")
				return
			}
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received: "+err.Error(), "")
		return
	}
	b, _ := s.Next(req)
	if b.Body != nil || b.Status >= 400 {
		status := b.Status
		if status == 0 {
			status = http.StatusOK
		}
		if b.Body != nil {
			w.Header().Set("content-type", "application/json; charset=UTF-8")
			w.WriteHeader(status)
			w.Write(b.Body) //nolint:errcheck
			return
		}
		msg := b.ErrorMessage
		if msg == "" {
			msg = http.StatusText(status)
		}
		writeError(w, status, b.ErrorStatus, msg, "")
		return
	}
	var answer map[string]any
	if vertex {
		preds := make([]any, len(predict.Instances))
		for i, in := range predict.Instances {
			preds[i] = map[string]any{"embeddings": map[string]any{
				"statistics": map[string]any{"truncated": false, "token_count": len(strings.Fields(in.Content))},
				"values":     fake.Vector(in.Content, predict.Parameters.OutputDimensionality)}}
		}
		answer = map[string]any{"predictions": preds, "metadata": map[string]any{"billableCharacterCount": 1}}
	} else {
		embs := make([]any, len(batch.Requests))
		for i, r := range batch.Requests {
			var text strings.Builder
			for _, p := range r.Content.Parts {
				text.WriteString(p.Text)
			}
			embs[i] = map[string]any{"values": fake.Vector(text.String(), r.OutputDimensionality)}
		}
		answer = map[string]any{"embeddings": embs}
		if b.Usage.Prompt > 0 {
			answer["usageMetadata"] = map[string]any{"promptTokenCount": b.Usage.Prompt}
		}
	}
	w.Header().Set("content-type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(answer) //nolint:errcheck
}

var errNoInputs = errors.New("no inputs to embed")
