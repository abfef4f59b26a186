package translate

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// POST /v1/embeddings for the backends that do not speak OpenAI's
// embeddings API: Gemini (batchEmbedContents), Vertex AI (predict) and
// Bedrock (InvokeModel on Titan and Cohere embed models). The request is
// read once (readEmbeddings), written in the provider's shape
// (embeddings_google.go, embeddings_bedrock.go), and the provider's answer
// is written back in OpenAI's shape by an embedAnswer: object "list",
// data[].embedding as floats or, when the client asked, base64 of the
// little-endian float32 values (as OpenAI sends them), the served model,
// and usage.prompt_tokens = total_tokens.
//
// Usage is the provider's count where it reports one (Vertex's per-input
// token_count, Titan's inputTextTokenCount, Bedrock's
// x-amzn-bedrock-input-token-count header, Gemini's usageMetadata);
// otherwise it is estimated from the input text (four bytes a token) and
// EmbeddingsCall.UsageEstimated says so.

// embeddingsSchemas are the schemas whose embeddings are translated.
var embeddingsSchemas = []string{"gemini", "vertex", "bedrock"}

// embedRequest is an OpenAI embeddings request as the translators read it.
type embedRequest struct {
	texts     []string
	tokens    bool  // input holds token arrays (or token ids), not text
	dims      int64 // dimensions; 0 when not asked
	base64    bool  // encoding_format "base64"
	textBytes int   // the input texts' length, for the usage estimate
}

// readEmbeddings reads an OpenAI embeddings body. input is a string, an
// array of strings, or token arrays (tokens set; texts then holds the
// strings among them, if any).
func readEmbeddings(body []byte) (embedRequest, error) {
	var req embedRequest
	if !gjson.ValidBytes(body) {
		return req, apierr.BadRequest("invalid_json", "The request body is not valid JSON.")
	}
	v := gjson.ParseBytes(body)
	if !v.IsObject() {
		return req, apierr.BadRequest("invalid_json", "The request body must be a JSON object.")
	}
	in := v.Get("input")
	switch {
	case in.Type == gjson.String:
		req.texts = []string{in.Str}
	case in.IsArray():
		in.ForEach(func(_, el gjson.Result) bool {
			if el.Type == gjson.String {
				req.texts = append(req.texts, el.Str)
			} else {
				req.tokens = true
			}
			return true
		})
	default:
		return req, embedParamError("input", "invalid_type", "'input' must be a string, an array of strings or an array of token arrays.")
	}
	if len(req.texts) == 0 && !req.tokens {
		return req, embedParamError("input", "invalid_value", "'input' must not be empty.")
	}
	for _, s := range req.texts {
		req.textBytes += len(s)
	}
	if d := v.Get("dimensions"); d.Exists() && d.Type != gjson.Null {
		n, err := strconv.ParseInt(d.Raw, 10, 64)
		if d.Type != gjson.Number || err != nil || n < 1 {
			return req, embedParamError("dimensions", "invalid_value", "'dimensions' must be a positive integer.")
		}
		req.dims = n
	}
	switch f := v.Get("encoding_format"); {
	case !f.Exists() || f.Type == gjson.Null || f.Str == "float":
	case f.Str == "base64":
		req.base64 = true
	default:
		return req, embedParamError("encoding_format", "invalid_value", "'encoding_format' must be \"float\" or \"base64\".")
	}
	return req, nil
}

func embedParamError(param, code, msg string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: code, Param: param, Message: msg}
}

// textOnly refuses token arrays for a backend that embeds text only.
func (r embedRequest) textOnly(be *config.RBackend) error {
	if !r.tokens {
		return nil
	}
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "unsupported_input", Param: "input",
		Message: fmt.Sprintf("Backend %q (schema %s) embeds text only: send 'input' as a string or an array of strings, not token arrays.", be.Name, be.Schema)}
}

// maxInputs refuses more inputs than one call of the backend's model takes.
func (r embedRequest) maxInputs(be *config.RBackend, model string, n int) error {
	if len(r.texts) <= n {
		return nil
	}
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "too_many_inputs", Param: "input",
		Message: fmt.Sprintf("Model %q on backend %q (schema %s) embeds at most %d input(s) a request; this one has %d.", model, be.Name, be.Schema, n, len(r.texts))}
}

// estimate is the usage estimate: four bytes of text a token, rounded up,
// at least one token an input.
func (r embedRequest) estimate() int64 {
	return max(int64(r.textBytes+3)/4, int64(len(r.texts)))
}

// EmbeddingsTranslated reports whether llmproc translates POST
// /v1/embeddings for a backend of schema.
func EmbeddingsTranslated(schema string) bool {
	for _, s := range embeddingsSchemas {
		if s == schema {
			return true
		}
	}
	return false
}

// EmbeddingsCall is what translating an embeddings answer needs from its
// request. One serves one attempt.
type EmbeddingsCall struct {
	kind    embedKind
	req     embedRequest
	onError Translator // the backend's translator, whose error answers are reused
	answer  *embedAnswer
}

// embedKind names the provider API an embeddings request was written for.
type embedKind int

const (
	embedGemini embedKind = iota // AI Studio batchEmbedContents
	embedVertex                  // Vertex AI predict
	embedTitan                   // Bedrock InvokeModel, Amazon Titan
	embedCohere                  // Bedrock InvokeModel, Cohere embed
)

// Embeddings prepares POST /v1/embeddings for a backend whose schema
// EmbeddingsTranslated: the provider's request, and the call that
// translates its answer.
func (s *Set) Embeddings(r *Request) (*Upstream, *EmbeddingsCall, error) {
	req, err := readEmbeddings(r.Body)
	if err != nil {
		return nil, nil, err
	}
	if err := req.textOnly(r.Backend); err != nil {
		return nil, nil, err
	}
	c := &EmbeddingsCall{req: req}
	var up *Upstream
	switch r.Backend.Schema {
	case "gemini":
		c.kind, c.onError = embedGemini, gemini{}
		up, err = geminiEmbed(r, req)
	case "vertex":
		c.kind, c.onError = embedVertex, s.vertex
		up, err = s.vertex.embed(r, req)
	case "bedrock":
		c.onError = s.bedrock
		c.kind, up, err = s.bedrock.embed(r, req)
	default:
		err = apierr.Internal(fmt.Errorf("embeddings are not translated for schema %q", r.Backend.Schema))
	}
	if err != nil {
		return nil, nil, err
	}
	return up, c, nil
}

// Response translates the provider's answer: a 2xx into OpenAI's
// embeddings shape, an error as the backend's translator normalizes it.
func (c *EmbeddingsCall) Response(r *Response) Answer {
	if r.Status < 200 || r.Status >= 300 {
		return c.onError.Response(&Response{Status: r.Status, ContentType: r.ContentType, Model: r.Model, Header: r.Header})
	}
	c.answer = &embedAnswer{kind: c.kind, req: c.req, model: r.Model, header: r.Header}
	return Answer{Body: c.answer, ContentType: "application/json"}
}

// UsageEstimated reports whether the answer's usage is llmproc's estimate
// (the provider reported none); meaningful once the answer ended.
func (c *EmbeddingsCall) UsageEstimated() bool { return c.answer != nil && c.answer.estimated }

// embedAnswer buffers a provider's embeddings answer and writes it in
// OpenAI's shape at the end.
type embedAnswer struct {
	kind      embedKind
	req       embedRequest
	model     string
	header    func(string) string
	buf       []byte
	over      bool
	estimated bool
}

func (a *embedAnswer) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if !a.over {
		if len(a.buf)+len(chunk) > maxAnswerBody {
			a.over, a.buf = true, nil
		} else {
			a.buf = append(a.buf, chunk...)
		}
	}
	if !eos {
		return nil, false
	}
	if a.over {
		return ProviderError(http.StatusBadGateway, "response_too_large", "The backend's answer is too large to translate.").JSON(), false
	}
	out, err := a.translate()
	if err != nil {
		return err.JSON(), false
	}
	return out, false
}

// embedVectors is a provider answer as read: each input's vector (a JSON
// array of numbers) and the prompt tokens it reports (known false when it
// reports none).
type embedVectors struct {
	vectors []gjson.Result
	tokens  int64
	known   bool
}

func (a *embedAnswer) translate() ([]byte, *apierr.Error) {
	if !gjson.ValidBytes(a.buf) {
		return nil, ProviderError(http.StatusBadGateway, "upstream_error", "The backend's embeddings answer is not valid JSON.")
	}
	v := gjson.ParseBytes(a.buf)
	var ev embedVectors
	switch a.kind {
	case embedGemini:
		ev = geminiVectors(v)
	case embedVertex:
		ev = vertexVectors(v)
	case embedTitan:
		ev = titanVectors(v, a.header)
	case embedCohere:
		ev = cohereVectors(v, a.header)
	}
	if len(ev.vectors) != len(a.req.texts) {
		return nil, ProviderError(http.StatusBadGateway, "upstream_error",
			fmt.Sprintf("The backend answered %d embeddings for %d inputs.", len(ev.vectors), len(a.req.texts)))
	}
	if !ev.known {
		ev.tokens, a.estimated = a.req.estimate(), true
	}
	out := make([]byte, 0, len(a.buf)+128)
	out = append(out, `{"object":"list","data":[`...)
	for i, vec := range ev.vectors {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"object":"embedding","index":`...)
		out = strconv.AppendInt(out, int64(i), 10)
		out = append(out, `,"embedding":`...)
		var ok bool
		if a.req.base64 {
			out, ok = appendBase64Vector(out, vec)
		} else {
			out, ok = appendFloatVector(out, vec)
		}
		if !ok {
			return nil, ProviderError(http.StatusBadGateway, "upstream_error",
				fmt.Sprintf("The backend's embedding %d is not an array of numbers.", i))
		}
		out = append(out, '}')
	}
	out = append(out, `],"model":`...)
	out = appendJSONString(out, a.model)
	out = append(out, `,"usage":{"prompt_tokens":`...)
	out = strconv.AppendInt(out, ev.tokens, 10)
	out = append(out, `,"total_tokens":`...)
	out = strconv.AppendInt(out, ev.tokens, 10)
	return append(out, "}}"...), nil
}

// appendFloatVector appends a vector's numbers as the provider wrote them,
// without the whitespace between them.
func appendFloatVector(out []byte, vec gjson.Result) ([]byte, bool) {
	out = append(out, '[')
	n := 0
	ok := eachNumber(vec, func(num string) bool {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, num...)
		n++
		return true
	})
	return append(out, ']'), ok
}

// appendBase64Vector appends a vector as OpenAI's base64 encoding: the
// values as little-endian IEEE 754 float32, in standard base64 with padding.
// Each number is parsed straight to float32 (one rounding, as OpenAI's).
func appendBase64Vector(out []byte, vec gjson.Result) ([]byte, bool) {
	raw := make([]byte, 0, 4*1024)
	ok := eachNumber(vec, func(num string) bool {
		f, err := strconv.ParseFloat(num, 32)
		if err != nil {
			return false
		}
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(f)))
		return true
	})
	if !ok {
		return out, false
	}
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, raw)
	return append(out, '"'), true
}

// eachNumber calls fn with each element of vec, a JSON array from a valid
// document, as written, and reports whether vec is an array of numbers
// only (and fn never refused one). It scans the raw text rather than
// parsing every element: a vector is thousands of numbers.
func eachNumber(vec gjson.Result, fn func(num string) bool) bool {
	raw := vec.Raw
	if !vec.IsArray() || len(raw) < 2 {
		return false
	}
	start := -1
	for i := 1; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E':
			if start < 0 {
				start = i
			}
		case c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if start >= 0 {
				if !fn(raw[start:i]) {
					return false
				}
				start = -1
			}
			if c == ']' {
				return i == len(raw)-1
			}
		default: // a string, object, array, true, false or null
			return false
		}
	}
	return false
}
