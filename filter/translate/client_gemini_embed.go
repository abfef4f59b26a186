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

// A Gemini client's embedding methods on a backend that does not speak
// Gemini's API: the request becomes an OpenAI embeddings body
// (GeminiEmbedToOpenAI), which goes on as POST /v1/embeddings does (as it
// is to OpenAI, Azure and compatible servers, translated for Vertex AI and
// Bedrock), and OpenAI's answer becomes Gemini's (GeminiEmbedResponse).
//
//   - embedContent {content:{parts:[{text}…]}, outputDimensionality?,
//     taskType?, title?} → {model, input: "text", dimensions?}.
//   - batchEmbedContents {requests:[{model, content, outputDimensionality?}…]}
//     → {model, input: ["text"…], dimensions?}; the requests must agree on
//     outputDimensionality (OpenAI's dimensions is one for the call).
//
// A content's text parts are joined with "\n". taskType and title have no
// OpenAI equivalent and are dropped; the requests' own model names are
// replaced by the path's (as Gemini requires them to match it). A part
// other than text is refused (400) naming the backend.

// GeminiEmbedToOpenAI converts a Gemini client's embedContent or
// batchEmbedContents body (method) for backend be: model is the name the
// client's path gave.
func GeminiEmbedToOpenAI(body []byte, method, model string, be *config.RBackend) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, apierr.BadRequest("invalid_json", "The request body is not valid JSON.")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, apierr.BadRequest("invalid_json", "The request body must be a JSON object.")
	}
	var reqs []gjson.Result
	batch := method == GeminiBatchEmbed
	if batch {
		rs := root.Get("requests")
		if !rs.IsArray() || len(rs.Array()) == 0 {
			return nil, apierr.BadRequest("invalid_value", "* BatchEmbedContentsRequest.requests: must hold at least one EmbedContentRequest.")
		}
		reqs = rs.Array()
	} else {
		reqs = []gjson.Result{root}
	}
	texts := make([]string, 0, len(reqs))
	var dims string // the raw outputDimensionality all requests share; "" none
	for i, r := range reqs {
		where := "EmbedContentRequest"
		if batch {
			where = "BatchEmbedContentsRequest.requests[" + strconv.Itoa(i) + "]"
		}
		if !r.IsObject() {
			return nil, apierr.BadRequest("invalid_value", "* %s: must be an object.", where)
		}
		text, err := geminiEmbedText(r.Get("content"), where, be)
		if err != nil {
			return nil, err
		}
		texts = append(texts, text)
		d := r.Get("outputDimensionality")
		if !d.Exists() {
			d = r.Get("output_dimensionality")
		}
		raw := ""
		if d.Exists() && d.Type != gjson.Null {
			if n, err := strconv.ParseInt(d.Raw, 10, 64); d.Type != gjson.Number || err != nil || n < 1 {
				return nil, apierr.BadRequest("invalid_value", "* %s.outputDimensionality: must be a positive integer.", where)
			}
			raw = d.Raw
		}
		if i > 0 && raw != dims {
			return nil, apierr.BadRequest("invalid_value",
				"* %s.outputDimensionality: backend %q (schema %s) embeds a batch at one dimensionality; every request must ask for the same one.",
				where, be.Name, be.Schema)
		}
		dims = raw
	}
	out := make([]byte, 0, len(body)+64)
	out = append(out, `{"model":`...)
	out = appendJSONString(out, model)
	out = append(out, `,"input":`...)
	if batch {
		out = append(out, '[')
		for i, s := range texts {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendJSONString(out, s)
		}
		out = append(out, ']')
	} else {
		out = appendJSONString(out, texts[0])
	}
	if dims != "" {
		out = append(out, `,"dimensions":`...)
		out = append(out, dims...)
	}
	return append(out, '}'), nil
}

// geminiEmbedText is a Content's text: its text parts joined with "\n".
func geminiEmbedText(content gjson.Result, where string, be *config.RBackend) (string, error) {
	if !content.IsObject() {
		return "", apierr.BadRequest("invalid_value", "* %s.content: is required.", where)
	}
	var texts []string
	var err error
	content.Get("parts").ForEach(func(i, p gjson.Result) bool {
		t := p.Get("text")
		if t.Type != gjson.String {
			kind := "a non-object"
			if p.IsObject() {
				kind = "no text"
				p.ForEach(func(k, _ gjson.Result) bool {
					kind = k.Str
					return false
				})
			}
			err = &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "unsupported_input",
				Message: fmt.Sprintf("* %s.content.parts[%d]: backend %q (schema %s) embeds text only; this part is %s.",
					where, i.Int(), be.Name, be.Schema, kind)}
			return false
		}
		texts = append(texts, t.Str)
		return true
	})
	if err != nil {
		return "", err
	}
	if len(texts) == 0 {
		return "", apierr.BadRequest("invalid_value", "* %s.content.parts: must hold at least one text part.", where)
	}
	return strings.Join(texts, "\n"), nil
}

// GeminiEmbedResponse converts OpenAI's embeddings answer (status) into
// Gemini's for method: {"embedding":{"values":[…]}} for embedContent,
// {"embeddings":[{"values":[…]}…]} for batchEmbedContents, with
// usageMetadata {promptTokenCount, totalTokenCount} from usage.prompt_tokens
// when the answer has it. Vectors in base64 never reach it (the converted
// request asks for floats). A non-2xx answer becomes Google's error.
func GeminiEmbedResponse(method string, status int) Body {
	if status < 200 || status >= 300 {
		return GeminiResponse(GeminiJSON, status, "")
	}
	return &gcEmbed{batch: method == GeminiBatchEmbed}
}

type gcEmbed struct {
	batch bool
	buf   []byte
	over  bool
}

func (g *gcEmbed) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if !g.over {
		if len(g.buf)+len(chunk) > maxAnswerBody {
			g.over, g.buf = true, nil
		} else {
			g.buf = append(g.buf, chunk...)
		}
	}
	if !eos {
		return nil, false
	}
	if g.over {
		return GeminiError(ProviderError(http.StatusBadGateway, "response_too_large", "The backend's answer is too large to translate.")), false
	}
	out, err := g.convert()
	if err != nil {
		return GeminiError(err), false
	}
	return out, false
}

func (g *gcEmbed) convert() ([]byte, *apierr.Error) {
	if !gjson.ValidBytes(g.buf) {
		return nil, ProviderError(http.StatusBadGateway, "upstream_error", "The backend's embeddings answer is not valid JSON.")
	}
	v := gjson.ParseBytes(g.buf)
	data := v.Get("data").Array()
	if !g.batch && len(data) != 1 {
		return nil, ProviderError(http.StatusBadGateway, "upstream_error",
			fmt.Sprintf("The backend answered %d embeddings for one input.", len(data)))
	}
	// OpenAI orders data by index; put each where its index says.
	vecs := make([]gjson.Result, len(data))
	for i, d := range data {
		j := i
		if ix := d.Get("index"); ix.Type == gjson.Number {
			j = int(ix.Int())
		}
		if j < 0 || j >= len(vecs) || vecs[j].Exists() {
			return nil, ProviderError(http.StatusBadGateway, "upstream_error", "The backend's embeddings answer has a bad index.")
		}
		vecs[j] = d.Get("embedding")
	}
	out := make([]byte, 0, len(g.buf)+64)
	if g.batch {
		out = append(out, `{"embeddings":[`...)
	} else {
		out = append(out, `{"embedding":`...)
	}
	for i, vec := range vecs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"values":`...)
		var ok bool
		if out, ok = appendFloatVector(out, vec); !ok {
			return nil, ProviderError(http.StatusBadGateway, "upstream_error",
				fmt.Sprintf("The backend's embedding %d is not an array of numbers.", i))
		}
		out = append(out, '}')
	}
	if g.batch {
		out = append(out, ']')
	}
	if n := v.Get("usage.prompt_tokens"); n.Type == gjson.Number {
		out = append(out, `,"usageMetadata":{"promptTokenCount":`...)
		out = strconv.AppendInt(out, n.Int(), 10)
		out = append(out, `,"totalTokenCount":`...)
		out = strconv.AppendInt(out, n.Int(), 10)
		out = append(out, '}')
	}
	return append(out, '}'), nil
}
