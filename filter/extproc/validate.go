package extproc

import (
	"errors"
	"net/http"
	"strconv"
	"unsafe"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/decode"
	"github.com/llmproc/llmproc/filter/validate"
)

// checkEncoding refuses, at the request headers, a content-encoding the
// router cannot decode: 415, before the body is buffered. An identity
// encoding is forgotten: the body is used as it is.
func (r *router) checkEncoding() *apierr.Error {
	codings, err := decode.Codings(r.encoding)
	if err != nil {
		return apierr.New(http.StatusUnsupportedMediaType, apierr.TypeInvalidRequest, "unsupported_content_encoding",
			"Content-Encoding %q is not supported; send the body uncompressed or as gzip, deflate, br or zstd.", r.encoding)
	}
	if len(codings) == 0 {
		r.encoding = ""
	}
	return nil
}

// checked is a request body that passed checkBody.
type checked struct {
	body    []byte // decoded
	decoded bool   // the body was decoded: the reply must carry it to Envoy
	req     chatRequest
}

// checkBody decodes the body by its content-encoding (bounded by
// limits.max_request_bytes) and validates it against the client API's
// request schema, reading the fields llmproc needs in the same pass.
func (r *router) checkBody(body []byte) (checked, *apierr.Error) {
	out, derr := r.decodeBody(body)
	if derr != nil {
		return checked{}, derr
	}
	var err error
	c := checked{body: out, decoded: r.encoding != ""}
	o := validate.Options{MaxDepth: r.rt.Source.Limits.MaxJSONDepth, Member: func(k string, v []byte) {
		c.req.set(k, gjson.Parse(unsafe.String(unsafe.SliceData(v), len(v))))
	}}
	switch {
	case r.client == clientGemini:
		if err = validate.Gemini(out, o, r.geminiMethod); err == nil {
			r.geminiRequest(&c.req, out)
		}
	case r.countTokens:
		err = validate.CountTokens(out, o)
	case r.endpoint != "":
		err = endpointValidators[r.endpoint](out, o)
	case r.client == clientAnthropic:
		err = validate.Messages(out, o)
	default:
		err = validate.Chat(out, o)
	}
	if err != nil {
		return checked{}, apierr.From(err)
	}
	return c, nil
}

// decodeBody undoes the body's content-encoding, bounded by
// limits.max_request_bytes.
func (r *router) decodeBody(body []byte) ([]byte, *apierr.Error) {
	limit, _ := r.maxBytes()
	out, err := decode.Body(r.encoding, body, limit)
	switch {
	case errors.Is(err, decode.ErrTooLarge):
		return nil, apierr.New(http.StatusRequestEntityTooLarge, apierr.TypeInvalidRequest, "request_too_large",
			"The request body decoded from Content-Encoding %q is larger than the limit of %d bytes.", r.encoding, limit)
	case err != nil:
		return nil, &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "invalid_content_encoding",
			Message: "The request body is not valid " + strconv.Quote(r.encoding) + " data, as its Content-Encoding says.", Err: err}
	}
	return out, nil
}

// decodedBody adds the decoded body to the router's reply: Envoy then
// buffers and forwards it (to every attempt) without its content-encoding,
// with its own length. Envoy applies a body reply's header mutation before
// it checks the new body against content-length
// (ext_proc/processor_state.cc, handleBufferedBodyCallback).
func decodedBody(c *extprocv3.CommonResponse, body []byte) {
	c.HeaderMutation.RemoveHeaders = append(c.HeaderMutation.RemoveHeaders, "content-encoding")
	c.HeaderMutation.SetHeaders = append(c.HeaderMutation.SetHeaders, header("content-length", strconv.Itoa(len(body))))
	c.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}}
}
