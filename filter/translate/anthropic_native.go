package translate

import (
	"slices"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// AnthropicNative prepares the request of a client that speaks Anthropic's
// Messages API for an Anthropic backend: the body goes as the client sent it
// (thinking, cache_control, context_management, documents, server tools and
// whatever Anthropic adds next), changed only where the config says: the
// model name when the pool member or a routing rule sends another, and the
// top-level fields the backend's drop_params lists, removed. Body is nil
// when nothing changes.
//
// version and beta are the client's anthropic-version and anthropic-beta
// headers ("" when it sent none): the version defaults to the backend's
// configured one, the beta list goes on as it is.
//
// The answer is Anthropic's own and reaches the client unchanged; the
// upstream role reads it for usage and the cache through the anthropic
// translator's Response, as it reads a translated answer.
func AnthropicNative(r *Request, version, beta string) (*Upstream, error) {
	be := r.Backend
	body := r.Body
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, apierr.BadRequest("invalid_json", "The request body must be a JSON object.")
	}
	var err error
	changed := false
	if r.Model != "" && root.Get("model").Str != r.Model {
		if body, err = sjson.SetBytes(slices.Clip(body), "model", r.Model); err != nil {
			return nil, apierr.Internal(err)
		}
		changed = true
	}
	for _, p := range be.DropParams {
		if gjson.GetBytes(body, gjsonKey(p)).Exists() {
			if body, err = sjson.DeleteBytes(slices.Clip(body), gjsonKey(p)); err != nil {
				return nil, apierr.Internal(err)
			}
			changed = true
		}
	}
	up := &Upstream{Path: be.BasePath + anthropicMessagesPath}
	if changed {
		up.Body = body
	}
	if version == "" {
		version = anthropicVersion(be)
	}
	up.SetHeaders = append(up.SetHeaders, [2]string{"anthropic-version", version})
	if beta != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"anthropic-beta", beta})
	}
	if be.Credential != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"x-api-key", be.Credential})
	}
	return up, nil
}

// gjsonKey escapes a top-level member name for a gjson/sjson path.
func gjsonKey(name string) string {
	var b []byte
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '.', '*', '?', '|', '#', '@', '\\', '!', '=', '<', '>', '%', '(', ')', '[', ']', '{', '}', '"', ',', ':':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
