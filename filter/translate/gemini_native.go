package translate

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// The methods of Google's Gemini API that llmproc serves to Gemini clients
// (POST /v1beta/models/{model}:{method}).
const (
	GeminiGenerate    = "generateContent"
	GeminiStream      = "streamGenerateContent"
	GeminiCountTokens = "countTokens"
	GeminiEmbed       = "embedContent"
	GeminiBatchEmbed  = "batchEmbedContents"
)

// GeminiMethods lists them.
var GeminiMethods = []string{GeminiGenerate, GeminiStream, GeminiCountTokens, GeminiEmbed, GeminiBatchEmbed}

// geminiNativeMethods lists, per schema, the methods it serves natively.
var geminiNativeMethods = map[string][]string{
	"gemini": GeminiMethods,
	"vertex": {GeminiGenerate, GeminiStream, GeminiCountTokens},
}

// GeminiServed reports whether a backend of schema serves a Gemini client's
// method natively.
func GeminiServed(method, schema string) bool {
	return slices.Contains(geminiNativeMethods[schema], method)
}

// GeminiNativeTranslator is implemented by the translators of the backends
// that speak Gemini's API (gemini, vertex).
type GeminiNativeTranslator interface {
	// GeminiNative prepares a Gemini client's request of method for the
	// backend: the body goes as the client sent it, changed only where the
	// config says (the top-level fields drop_params lists, removed) and
	// where the body names the model (countTokens' generateContentRequest,
	// the embedding requests), which becomes r.Model. A stream is asked
	// for as SSE (alt=sse) whatever the client asked. Body is nil when
	// nothing changes.
	GeminiNative(r *Request, method string) (*Upstream, error)
}

func (g gemini) GeminiNative(r *Request, method string) (*Upstream, error) {
	body, err := geminiNativeBody(r, method, false)
	if err != nil {
		return nil, err
	}
	up := &Upstream{Path: r.Backend.BasePath + "/v1beta/models/" + geminiModel(r.Model) + ":" + method, Body: body}
	if method == GeminiStream {
		up.Path += "?alt=sse"
	}
	if r.Backend.Credential != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"x-goog-api-key", r.Backend.Credential})
	}
	return up, nil
}

func (v vertex) GeminiNative(r *Request, method string) (*Upstream, error) {
	body, err := geminiNativeBody(r, method, true)
	if err != nil {
		return nil, err
	}
	b := r.Backend
	token, err := v.tokens.Token(b)
	if err != nil {
		return nil, err
	}
	model := strings.TrimPrefix(strings.TrimPrefix(r.Model, "models/"), "publishers/google/models/")
	up := &Upstream{
		Path: b.BasePath + "/v1/projects/" + url.PathEscape(b.Vertex.Project) + "/locations/" + url.PathEscape(b.Vertex.Region) +
			"/publishers/google/models/" + url.PathEscape(model) + ":" + method,
		Body: body,
	}
	if method == GeminiStream {
		up.Path += "?alt=sse"
	}
	if token != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"authorization", "Bearer " + token})
	}
	return up, nil
}

// geminiNativeBody applies drop_params and the model to a Gemini client's
// body; nil when nothing changes. Vertex's countTokens takes the request's
// members at its top level, not in generateContentRequest.
func geminiNativeBody(r *Request, method string, vertex bool) ([]byte, error) {
	body := r.Body
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, apierr.BadRequest("invalid_json", "The request body must be a JSON object.")
	}
	changed := false
	set := func(path string, v any) error {
		out, err := sjson.SetBytes(slices.Clip(body), path, v)
		if err != nil {
			return apierr.Internal(err)
		}
		body, changed = out, true
		return nil
	}
	for _, p := range r.Backend.DropParams {
		if root.Get(gjsonKey(p)).Exists() {
			out, err := sjson.DeleteBytes(slices.Clip(body), gjsonKey(p))
			if err != nil {
				return nil, apierr.Internal(err)
			}
			body, changed = out, true
		}
	}
	name := "models/" + strings.TrimPrefix(r.Model, "models/")
	key := func(v gjson.Result, camel, snake string) string {
		if v.Get(snake).Exists() && !v.Get(camel).Exists() {
			return snake
		}
		return camel
	}
	switch method {
	case GeminiCountTokens:
		k := key(root, "generateContentRequest", "generate_content_request")
		gcr := root.Get(k)
		switch {
		case !gcr.IsObject():
		case vertex:
			var err error
			if body, err = sjson.DeleteBytes(slices.Clip(body), k); err != nil {
				return nil, apierr.Internal(err)
			}
			changed = true
			gcr.ForEach(func(m, v gjson.Result) bool {
				if geminiKey(m.Str) != "model" {
					var out []byte
					if out, err = sjson.SetRawBytes(slices.Clip(body), gjsonKey(m.Str), []byte(v.Raw)); err == nil {
						body = out
					}
				}
				return err == nil
			})
			if err != nil {
				return nil, err
			}
		case gcr.Get("model").Str != name:
			if err := set(k+".model", name); err != nil {
				return nil, err
			}
		}
	case GeminiEmbed:
		if m := root.Get("model"); m.Exists() && m.Str != name {
			if err := set("model", name); err != nil {
				return nil, err
			}
		}
	case GeminiBatchEmbed:
		var err error
		root.Get("requests").ForEach(func(i, req gjson.Result) bool {
			if req.Get("model").Str != name {
				err = set("requests."+strconv.Itoa(int(i.Int()))+".model", name)
			}
			return err == nil
		})
		if err != nil {
			return nil, err
		}
	}
	if !changed {
		return nil, nil
	}
	return body, nil
}

// GeminiEmbedUsage reads a Gemini embedding answer (embedContent,
// batchEmbedContents), which the client gets as it is, for the usage
// tracker: its whole body becomes OpenAI's usage object, prompt_tokens from
// usageMetadata.promptTokenCount, or the body as it is when it reports none
// (the usage is then estimated).
func GeminiEmbedUsage() Body { return &geminiEmbedUsage{} }

type geminiEmbedUsage struct {
	buf  []byte
	over bool
}

func (g *geminiEmbedUsage) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if len(g.buf)+len(chunk) > maxAnswerBody {
		g.over, g.buf = true, nil
	} else if !g.over {
		g.buf = append(g.buf, chunk...)
	}
	if !eos {
		return nil, false
	}
	n := gjson.GetBytes(g.buf, "usageMetadata.promptTokenCount")
	if g.over || n.Type != gjson.Number {
		return g.buf, false
	}
	b := strconv.AppendInt([]byte(`{"object":"list","data":[],"usage":{"prompt_tokens":`), n.Int(), 10)
	b = append(b, `,"completion_tokens":0,"total_tokens":`...)
	b = strconv.AppendInt(b, n.Int(), 10)
	return append(b, "}}"...), false
}
