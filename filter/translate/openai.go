package translate

import (
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// openAI speaks OpenAI's own API and the many servers that copy it (whose
// errors may come in their own shape; Response normalizes them).
type openAI struct{}

const chatPath = "/v1/chat/completions"

func (o openAI) Request(r *Request) (*Upstream, error) {
	up := &Upstream{Path: r.Backend.BasePath + chatPath}
	body := r.Body
	changed := false
	if r.Model != "" && r.ClientModel != r.Model {
		b, err := sjson.SetBytes(body, "model", r.Model)
		if err != nil {
			return nil, apierr.Internal(err)
		}
		body, changed = b, true
	}
	if r.Stream && !r.UsageRequested {
		b, err := sjson.SetBytes(body, "stream_options.include_usage", true)
		if err != nil {
			return nil, apierr.Internal(err)
		}
		body, changed = b, true
	}
	if changed {
		up.Body = body
	}
	if r.Backend.Credential != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"authorization", "Bearer " + r.Backend.Credential})
	}
	return up, nil
}

func (o openAI) Response(r *Response) Answer {
	if r.Status >= 200 && r.Status < 300 {
		return Answer{Body: passBody{}}
	}
	return Answer{Body: &errorBody{status: r.Status}, ContentType: "application/json"}
}

// passBody lets every chunk through unchanged.
type passBody struct{}

func (passBody) Chunk([]byte, bool) ([]byte, bool) { return nil, true }

// maxErrorBody bounds how much of a provider error is buffered for rewriting.
const maxErrorBody = 1 << 20

// errorBody buffers a non-2xx answer and emits it at the end as OpenAI error
// JSON: unchanged if it already is one, wrapped otherwise.
type errorBody struct {
	status int
	buf    []byte
}

func (e *errorBody) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if len(e.buf)+len(chunk) <= maxErrorBody {
		e.buf = append(e.buf, chunk...)
	}
	if !eos {
		return nil, false
	}
	return NormalizeError(e.status, e.buf), false
}

// NormalizeError returns body if it is already an OpenAI error object, else an
// OpenAI error JSON carrying the provider's message (or the status text).
func NormalizeError(status int, body []byte) []byte {
	if gjson.ValidBytes(body) && gjson.GetBytes(body, "error.message").Type == gjson.String {
		return body
	}
	msg := strings.TrimSpace(string(body))
	if gjson.ValidBytes(body) {
		for _, path := range []string{"error", "message", "detail", "error.msg"} {
			if v := gjson.GetBytes(body, path); v.Type == gjson.String && v.Str != "" {
				msg = v.Str
				break
			}
		}
	}
	if msg == "" || len(msg) > 2048 {
		msg = "upstream returned " + http.StatusText(status)
	}
	e := apierr.New(status, apierr.TypeForStatus(status), "upstream_error", "%s", msg)
	return e.JSON()
}
