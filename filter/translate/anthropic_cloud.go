package translate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// Claude on Amazon Bedrock and on Google Vertex AI speaks Anthropic's
// Messages API behind the provider's own endpoint, so an Anthropic client's
// request goes there as it was sent, as to Anthropic (AnthropicNative):
//
//   - Bedrock: POST /model/{modelId}/invoke (JSON) or
//     /invoke-with-response-stream (AWS event-stream frames whose chunk
//     events carry Anthropic's SSE event JSON, base64, in bytes), SigV4
//     signed. The body is the client's without model and stream, with
//     anthropic_version "bedrock-2023-05-31" and the anthropic-beta header's
//     values as the anthropic_beta array.
//   - Vertex: POST /v1/projects/{p}/locations/{l}/publishers/anthropic/
//     models/{model}:rawPredict (or :streamRawPredict), a bearer token. The
//     body is the client's without model, with anthropic_version
//     "vertex-2023-10-16"; the answer is Anthropic's JSON or SSE as is.
//
// The backend's drop_params then removes top-level fields, as for Anthropic
// (anthropic_beta too, for a Bedrock region that refuses a beta).

const (
	bedrockAnthropicVersion = "bedrock-2023-05-31"
	vertexAnthropicVersion  = "vertex-2023-10-16"
)

// AnthropicNativeServed reports whether an Anthropic Messages client's
// request to b for model goes to an Anthropic-native endpoint: always for
// Anthropic; on Bedrock as bedrock.anthropic_api says (auto: for a model id
// that names Claude); on Vertex for Claude models (publisher anthropic).
// Otherwise it is translated like an OpenAI client's.
func AnthropicNativeServed(b *config.RBackend, model string) bool {
	switch b.Schema {
	case "anthropic":
		return true
	case "bedrock":
		switch b.Bedrock.AnthropicAPI {
		case config.AnthropicAPINative:
			return true
		case config.AnthropicAPIConverse:
			return false
		}
		return bedrockClaude(model)
	case "vertex":
		return vertexClaude(model)
	}
	return false
}

// bedrockClaude reports whether a Bedrock model id (a foundation model, an
// inference profile or an ARN of either) names an Anthropic model.
func bedrockClaude(model string) bool {
	m := strings.ToLower(model)
	return strings.Contains(m, "anthropic.") || strings.Contains(m, "claude")
}

// vertexClaude reports whether a Vertex model is one of Anthropic's
// (claude-sonnet-4-5@20250929), served under publishers/anthropic.
func vertexClaude(model string) bool {
	return strings.HasPrefix(strings.TrimPrefix(model, "publishers/anthropic/models/"), "claude")
}

func vertexClaudeModel(model string) string {
	return strings.TrimPrefix(model, "publishers/anthropic/models/")
}

// AnthropicNativeRequest prepares an Anthropic client's request for b's
// Anthropic-native endpoint (AnthropicNativeServed). version and beta are
// the client's anthropic-version and anthropic-beta headers ("" when it
// sent none).
func (s *Set) AnthropicNativeRequest(r *Request, version, beta string) (*Upstream, error) {
	switch r.Backend.Schema {
	case "bedrock":
		body, err := cloudBody(r, bedrockAnthropicVersion, beta, true)
		if err != nil {
			return nil, err
		}
		op, accept := "/invoke", "application/json"
		if r.Stream {
			op, accept = "/invoke-with-response-stream", eventStreamType
		}
		return s.bedrock.signed(r.Backend, r.Backend.BasePath+"/model/"+awsEscape(r.Model)+op, body, accept)
	case "vertex":
		body, err := cloudBody(r, vertexAnthropicVersion, "", false)
		if err != nil {
			return nil, err
		}
		token, err := s.vertex.tokens.Token(r.Backend)
		if err != nil {
			return nil, err
		}
		method := ":rawPredict"
		if r.Stream {
			method = ":streamRawPredict"
		}
		up := vertexUpstream(r.Backend, "anthropic", url.PathEscape(vertexClaudeModel(r.Model))+method, body, token)
		if beta != "" {
			up.SetHeaders = append(up.SetHeaders, [2]string{"anthropic-beta", beta})
		}
		return up, nil
	}
	return AnthropicNative(r, version, beta)
}

// cloudBody is the client's Messages body for Bedrock or Vertex: without
// model (the path names it) and, for Bedrock, stream (the operation says
// it); with anthropic_version (unless the client set one) and, for Bedrock,
// the beta header's values as anthropic_beta; then without the fields the
// backend's drop_params lists.
func cloudBody(r *Request, version, beta string, bedrock bool) ([]byte, error) {
	root := gjson.ParseBytes(r.Body)
	if !root.IsObject() {
		return nil, apierr.BadRequest("invalid_json", "The request body must be a JSON object.")
	}
	body := slices.Clip(r.Body)
	var err error
	edit := func(f func([]byte) ([]byte, error)) {
		if err == nil {
			body, err = f(body)
		}
	}
	drop := func(key string) {
		if gjson.GetBytes(body, gjsonKey(key)).Exists() {
			edit(func(b []byte) ([]byte, error) { return sjson.DeleteBytes(b, gjsonKey(key)) })
		}
	}
	drop("model")
	if bedrock {
		drop("stream")
	}
	if !root.Get("anthropic_version").Exists() {
		edit(func(b []byte) ([]byte, error) { return sjson.SetBytes(b, "anthropic_version", version) })
	}
	if betas := splitBetas(beta); bedrock && len(betas) > 0 && !root.Get("anthropic_beta").Exists() {
		edit(func(b []byte) ([]byte, error) { return sjson.SetBytes(b, "anthropic_beta", betas) })
	}
	for _, p := range r.Backend.DropParams {
		drop(p)
	}
	if err != nil {
		return nil, apierr.Internal(err)
	}
	return body, nil
}

// splitBetas splits an anthropic-beta header (comma-separated) into its
// values.
func splitBetas(h string) []string {
	var out []string
	for _, v := range strings.Split(h, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// AnthropicNativeResponse is how the answer to a request
// AnthropicNativeRequest prepared reaches the client. wire, when not nil,
// turns the provider's framing into Anthropic's (Bedrock's event stream into
// SSE): its output is what the client gets. a reads that Anthropic answer in
// OpenAI form, for usage and the cache, or normalizes the provider's error
// into OpenAI error JSON (which the caller renders in Anthropic's shape).
func (s *Set) AnthropicNativeResponse(schema string, r *Response) (wire Body, a Answer) {
	ok := r.Status >= 200 && r.Status < 300
	switch {
	case schema == "bedrock" && !ok:
		return nil, s.bedrock.Response(r)
	case schema == "bedrock" && r.Stream:
		rr := *r
		rr.ContentType = "text/event-stream"
		return &invokeStream{}, anthropic{}.Response(&rr)
	case schema == "vertex" && !ok:
		return nil, vertexClaudeError(r.Status)
	}
	return nil, anthropic{}.Response(r)
}

// vertexClaudeError reads a Vertex error for Claude; Anthropic's 529
// overloaded is a 503, as from Anthropic.
func vertexClaudeError(status int) Answer {
	a := Answer{Body: &errorBody{status: status, norm: vertexClaudeErrorJSON}, ContentType: "application/json"}
	if status == 529 {
		a.Status = http.StatusServiceUnavailable
		a.Body = &errorBody{status: a.Status, norm: vertexClaudeErrorJSON}
	}
	return a
}

// vertexClaudeErrorJSON normalizes a Vertex error for Claude: Anthropic's
// own error object when the model answered, else Google's.
func vertexClaudeErrorJSON(status int, body []byte) []byte {
	if gjson.GetBytes(body, "error.type").Type == gjson.String {
		return anthropicErrorJSON(status, body)
	}
	return geminiErrorJSON(status, body)
}

// invokeStream turns InvokeModelWithResponseStream's event stream into
// Anthropic SSE: each chunk event's bytes (base64 of one Anthropic event's
// JSON) becomes "event: {type}\ndata: {json}\n\n", carried over chunk
// boundaries frame by frame; an exception frame becomes Anthropic's error
// event and ends the stream.
type invokeStream struct {
	fr    frames
	raw   []byte
	buf   []byte // the output, reused from chunk to chunk (Body)
	ended bool
}

func (s *invokeStream) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if s.ended {
		return nil, false
	}
	out := reuse(s.buf)
	err := s.fr.feed(chunk, func(m esMessage) bool {
		out = s.frame(out, m)
		return !s.ended
	})
	if err != nil {
		out = s.fail(out, "The Bedrock event stream could not be decoded: "+err.Error())
	}
	s.buf = out
	return out, false
}

func (s *invokeStream) fail(out []byte, msg string) []byte {
	s.ended = true
	return appendAnthropicErrorEvent(out, ProviderError(http.StatusBadGateway, "upstream_error", msg))
}

func (s *invokeStream) frame(out []byte, m esMessage) []byte {
	event, perr := frameKind(m)
	if perr != nil {
		s.ended = true
		return appendAnthropicErrorEvent(out, perr)
	}
	if !event {
		return out
	}
	if string(m.header(":event-type")) != "chunk" {
		return out
	}
	b64 := gjson.GetBytes(m.Payload, "bytes")
	if b64.Type != gjson.String {
		return s.fail(out, "A Bedrock chunk event carries no bytes.")
	}
	n := base64.StdEncoding.DecodedLen(len(b64.Str))
	s.raw = slices.Grow(s.raw[:0], n)[:n]
	n, err := base64.StdEncoding.Decode(s.raw, []byte(b64.Str))
	if err != nil {
		return s.fail(out, "A Bedrock chunk event's bytes are not base64: "+err.Error())
	}
	js := s.raw[:n]
	typ := gjson.GetBytes(js, "type")
	if typ.Type != gjson.String || typ.Str == "" || !gjson.ValidBytes(js) {
		return s.fail(out, "A Bedrock chunk event is not an Anthropic event.")
	}
	if bytes.ContainsAny(js, "\r\n") { // one data line per event
		var c bytes.Buffer
		if json.Compact(&c, js) == nil {
			js = c.Bytes()
		}
	}
	out = append(out, "event: "...)
	out = append(out, typ.Str...)
	out = append(out, "\ndata: "...)
	out = append(out, js...)
	return append(out, "\n\n"...)
}

// appendAnthropicErrorEvent appends e as the error event of an Anthropic stream.
func appendAnthropicErrorEvent(out []byte, e *apierr.Error) []byte {
	out = append(out, "event: error\ndata: "...)
	out = append(out, AnthropicError(e)...)
	return append(out, "\n\n"...)
}
