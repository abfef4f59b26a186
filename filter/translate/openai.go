package translate

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// openAI speaks OpenAI's own API and the many servers that copy it (whose
// errors may come in their own shape; Response normalizes them).
type openAI struct{}

const chatPath = "/v1/chat/completions"

func (o openAI) Request(r *Request) (*Upstream, error) {
	body, err := rewriteOpenAI(r, r.Model, streamOptionsAllowed(r.Backend))
	if err != nil {
		return nil, err
	}
	be := r.Backend
	return withCredential(&Upstream{Path: be.BasePath + chatPath, Body: body}, be.Schema, be.Azure.Auth, be.Credential), nil
}

// Headers: the backend's key goes in authorization.
func (openAI) Headers() []string { return []string{"authorization"} }

// structuralParams are never dropped, whatever drop_params says: without
// them the request is no chat completion, or the answer's shape (JSON or
// SSE) would differ from the one the client and llmproc expect.
var structuralParams = []string{"model", "messages", "stream"}

// rewriteOpenAI applies the rewrites every OpenAI-shaped backend shares and
// returns the body to send, or nil when the client's body goes unchanged:
//   - drop_params: each listed top-level parameter is removed;
//   - compat.max_tokens_field: max_tokens / max_completion_tokens is renamed
//     to the field the server understands (an explicit value of that field
//     wins over the other);
//   - thinking_blocks (the hub's signed thinking) removed from messages;
//   - model: set when not empty and different from the client's;
//   - stream_options.include_usage: added to streams the client sent without
//     it when streamOptions is true; when false, stream_options is removed
//     (the server rejects it), so the answer may carry no usage and llmproc
//     records the attempt's usage as unknown.
//
// The client's body is never modified in place.
func rewriteOpenAI(r *Request, model string, streamOptions bool) ([]byte, error) {
	body, changed := r.Body, false
	del := func(key string) error {
		if !gjson.GetBytes(body, key).Exists() {
			return nil
		}
		b, err := sjson.DeleteBytes(body, key)
		if err != nil {
			return apierr.Internal(err)
		}
		body, changed = b, true
		return nil
	}
	be := r.Backend
	for _, p := range be.DropParams {
		if p == "" || slices.Contains(structuralParams, p) {
			continue
		}
		if err := del(jsonKey(p)); err != nil {
			return nil, err
		}
	}
	if field := be.Compat.MaxTokensField; field != "" {
		other := "max_completion_tokens"
		if field == other {
			other = "max_tokens"
		}
		if v := gjson.GetBytes(body, other); v.Exists() {
			if !gjson.GetBytes(body, field).Exists() {
				b, err := sjson.SetRawBytes(body, field, []byte(v.Raw))
				if err != nil {
					return nil, apierr.Internal(err)
				}
				body, changed = b, true
			}
			if err := del(other); err != nil {
				return nil, err
			}
		}
	}
	if bytes.Contains(body, []byte(`"thinking_blocks"`)) {
		// The hub's signed thinking (reasoning.go) is for Anthropic and
		// Bedrock; OpenAI refuses unknown message fields.
		i := 0
		var err error
		gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
			if m.Get("thinking_blocks").Exists() {
				err = del("messages." + strconv.Itoa(i) + ".thinking_blocks")
			}
			i++
			return err == nil
		})
		if err != nil {
			return nil, err
		}
	}
	if model != "" && r.ClientModel != model {
		b, err := sjson.SetBytes(body, "model", model)
		if err != nil {
			return nil, apierr.Internal(err)
		}
		body, changed = b, true
	}
	switch {
	case !streamOptions:
		if err := del("stream_options"); err != nil {
			return nil, err
		}
	case r.Stream && !r.UsageRequested:
		b, err := sjson.SetBytes(body, "stream_options.include_usage", true)
		if err != nil {
			return nil, apierr.Internal(err)
		}
		body, changed = b, true
	}
	if !changed {
		return nil, nil
	}
	return body, nil
}

// streamOptionsAllowed reports whether the backend takes stream_options:
// not when compat.stream_options is false or drop_params lists it.
func streamOptionsAllowed(b *config.RBackend) bool {
	if b.Compat.StreamOptions != nil && !*b.Compat.StreamOptions {
		return false
	}
	return !slices.Contains(b.DropParams, "stream_options")
}

// jsonKey escapes a top-level member name for a gjson/sjson path, so a
// parameter name is never read as a path or pattern.
func jsonKey(name string) string {
	if !strings.ContainsAny(name, `.*?|#@\!=<>%`) {
		return name
	}
	var sb strings.Builder
	for _, c := range name {
		if strings.ContainsRune(`.*?|#@\!=<>%`, c) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(c)
	}
	return sb.String()
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

// errorBody buffers a non-2xx answer (up to maxErrorBody) and emits it at the
// end rewritten by norm: each provider's error dialect to OpenAI's (or, for
// Anthropic clients, OpenAI's to Anthropic's). Without norm, NormalizeError:
// unchanged if it already is OpenAI error JSON, wrapped otherwise.
type errorBody struct {
	status int
	buf    []byte
	norm   func(status int, body []byte) []byte
}

func (e *errorBody) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if len(e.buf)+len(chunk) <= maxErrorBody {
		e.buf = append(e.buf, chunk...)
	}
	if !eos {
		return nil, false
	}
	if e.norm != nil {
		return e.norm(e.status, e.buf), false
	}
	return NormalizeError(e.status, e.buf), false
}

// errorMessagePaths are where OpenAI-compatible servers put their error
// text, tried in order: Ollama {"error":"..."}, vLLM and Mistral
// {"object":"error","message":"..."}, FastAPI {"detail":"..."} and
// {"error":{"msg":"..."}}. FastAPI's validation list {"detail":[...]}, bare
// or inside Mistral's {"message":{"detail":[...]}}, is read by detailMessage.
var errorMessagePaths = []string{"error", "message", "detail", "error.msg"}

// NormalizeError returns body if it is already an OpenAI error object, else an
// OpenAI error JSON carrying the provider's message (or the status text). The
// type follows the status; code and param are the provider's top-level
// strings where it has them (Mistral's "unknown_model", "model"), else
// upstream_error and null. A 400 whose message says the context length was
// exceeded gets OpenAI's code context_length_exceeded, so clients can tell
// it from other bad requests.
func NormalizeError(status int, body []byte) []byte {
	if gjson.ValidBytes(body) && gjson.GetBytes(body, "error.message").Type == gjson.String {
		return body
	}
	msg := strings.TrimSpace(string(body))
	code, param := "upstream_error", ""
	if gjson.ValidBytes(body) {
		for _, path := range errorMessagePaths {
			if v := gjson.GetBytes(body, path); v.Type == gjson.String && v.Str != "" {
				msg = v.Str
				break
			}
		}
		for _, path := range []string{"detail", "message.detail"} {
			if m := detailMessage(gjson.GetBytes(body, path)); m != "" {
				msg = m
				break
			}
		}
		if c := gjson.GetBytes(body, "code"); c.Type == gjson.String && c.Str != "" && len(c.Str) <= 64 {
			code = c.Str
		}
		if p := gjson.GetBytes(body, "param"); p.Type == gjson.String && len(p.Str) <= 64 {
			param = p.Str
		}
	}
	if msg == "" || len(msg) > 2048 {
		msg = "upstream returned " + http.StatusText(status)
	}
	if status == http.StatusBadRequest && contextExceeded(msg) {
		code = "context_length_exceeded"
	}
	e := &apierr.Error{Status: status, Type: apierr.TypeForStatus(status), Code: code, Param: param, Message: msg}
	return e.JSON()
}

// detailMessage reads a FastAPI/pydantic validation list
// ([{"loc":["body","messages"],"msg":"Field required"}, ...]) as
// "body.messages: Field required; ...", or "" when v is no such list.
func detailMessage(v gjson.Result) string {
	if !v.IsArray() {
		return ""
	}
	var sb strings.Builder
	v.ForEach(func(_, d gjson.Result) bool {
		m := d.Get("msg")
		if m.Type != gjson.String {
			return true
		}
		if sb.Len() > 0 {
			sb.WriteString("; ")
		}
		var loc []string
		d.Get("loc").ForEach(func(_, l gjson.Result) bool {
			loc = append(loc, l.String())
			return true
		})
		if len(loc) > 0 {
			sb.WriteString(strings.Join(loc, "."))
			sb.WriteString(": ")
		}
		sb.WriteString(m.Str)
		return sb.Len() <= 2048
	})
	return sb.String()
}

// contextExceeded reports whether an error message says the prompt did not
// fit the model's context (vLLM: "maximum context length is 4096 tokens";
// Mistral: "too large for model with 32768 maximum context length").
func contextExceeded(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "context length") || strings.Contains(m, "context_length") || strings.Contains(m, "context window")
}

// eachToolCallDelta calls f for each entry of a chat delta's tool_calls
// with its index: the entry's "index", else its place in the array.
func eachToolCallDelta(v gjson.Result, f func(idx int, tc gjson.Result)) {
	n := 0
	v.ForEach(func(_, tc gjson.Result) bool {
		idx := n
		if i := tc.Get("index"); i.Type == gjson.Number {
			idx = int(i.Int())
		}
		n++
		f(idx, tc)
		return true
	})
}

// maxHubAnswer bounds a non-streamed hub answer a client API converter
// buffers.
const maxHubAnswer = 64 << 20

// hubAnswer gathers a non-streamed hub (chat.completion) answer for the
// client API converters.
type hubAnswer struct {
	buf      []byte
	overflow bool
}

// add buffers chunk. At the last chunk done is true and ok reports whether
// the answer fit in maxHubAnswer and is JSON; body is the whole answer.
func (h *hubAnswer) add(chunk []byte, eos bool) (body []byte, done, ok bool) {
	if len(h.buf)+len(chunk) <= maxHubAnswer {
		h.buf = append(h.buf, chunk...)
	} else {
		h.overflow = true
	}
	if !eos {
		return nil, false, false
	}
	return h.buf, true, !h.overflow && gjson.ValidBytes(h.buf)
}
