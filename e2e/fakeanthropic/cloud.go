package fakeanthropic

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Claude on the clouds: this file serves Claude on Vertex AI from the same
// behaviours, and renders answers for the Bedrock fake's InvokeModel.

// VertexAnthropicVersion is the anthropic_version Vertex wants in the body.
const VertexAnthropicVersion = "vertex-2023-10-16"

// Event is one event of a streamed answer.
type Event struct {
	Name string
	Data []byte // the event's JSON
}

// Render is the successful answer b scripts for a request for model: the
// message JSON, and the events of the same answer streamed. For fakes of
// the clouds that serve Claude in their own framing (fakebedrock).
func Render(b Behaviour, id, model string) (message []byte, events []Event) {
	a := newAnswer(b, id, model)
	message, _ = json.Marshal(a.message())
	for _, ev := range a.events() {
		data, _ := json.Marshal(ev.data)
		events = append(events, Event{Name: ev.name, Data: data})
	}
	return message, events
}

// vertex serves Claude on Vertex AI: POST /v1/projects/{p}/locations/{l}/
// publishers/anthropic/models/{model}:rawPredict (JSON) or
// :streamRawPredict (SSE), and models/count-tokens:rawPredict. Like Vertex
// it wants a bearer token (Options.VertexToken, when set), the model in the
// path and not in the body (count-tokens: in the body), anthropic_version
// vertex-2023-10-16 in the body and, for streamRawPredict, stream: true.
// Google's own errors (auth, unknown method) come in Google's shape.
func (s *Server) vertex(w http.ResponseWriter, r *http.Request, req Request) {
	p := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/projects/"), "/")
	if len(p) != 7 || p[1] != "locations" || p[3] != "publishers" || p[4] != "anthropic" || p[5] != "models" {
		googleError(w, http.StatusNotFound, "NOT_FOUND", "unknown path "+r.URL.Path)
		return
	}
	model, method, _ := strings.Cut(p[6], ":")
	auth, ok := strings.CutPrefix(r.Header.Get("authorization"), "Bearer ")
	if !ok || s.opts.VertexToken != "" && auth != s.opts.VertexToken {
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		return
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(req.Body, &body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid JSON body: "+err.Error())
		return
	}
	if v := string(body["anthropic_version"]); v != `"`+VertexAnthropicVersion+`"` {
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("anthropic_version: %s is not %s", v, VertexAnthropicVersion))
		return
	}
	switch {
	case model == "count-tokens" && method == "rawPredict":
		if _, ok := body["model"]; !ok {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "model: Field required")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"input_tokens":%d}`, CountTokens(req.Body))
	case method == "rawPredict" || method == "streamRawPredict":
		if _, ok := body["model"]; ok {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "model: Extra inputs are not permitted")
			return
		}
		var mr messagesRequest
		_ = json.Unmarshal(req.Body, &mr)
		if mr.Stream != (method == "streamRawPredict") {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "stream must be true for streamRawPredict, and only then")
			return
		}
		mr.Model = model
		s.reply(w, r, req, mr)
	default:
		googleError(w, http.StatusNotFound, "NOT_FOUND", "unknown method "+method)
	}
}

func googleError(w http.ResponseWriter, code int, status, msg string) {
	data, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(data) //nolint:errcheck
}
