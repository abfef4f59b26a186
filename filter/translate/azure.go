package translate

import (
	"net/http"
	"net/url"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// azure speaks Azure OpenAI's deployment API: the body and the answers are
// OpenAI's, the path names the deployment (the pool member's model name) and
// the api-version, and the key goes in api-key (or an Entra ID token in
// Authorization).
//
// The body's "model" is left as the client sent it: Azure takes the
// deployment from the path and ignores the field (OpenAI's own SDKs send it
// to Azure), so most requests pass without a rewrite.
type azure struct{}

// azureStreamOptionsSince is the first api-version that takes
// stream_options (2024-08-01-preview; GA in 2024-10-21); older ones reject
// the field.
const azureStreamOptionsSince = "2024-08-01"

func (azure) Request(r *Request) (*Upstream, error) {
	be := r.Backend
	body, err := rewriteOpenAI(r, "", streamOptionsAllowed(be) && azureStreamOptions(be.Azure.APIVersion))
	if err != nil {
		return nil, err
	}
	return withCredential(&Upstream{Path: azurePath(r), Body: body}, be.Schema, be.Azure.Auth, be.Credential), nil
}

// azurePath names the deployment (the model sent) and the api-version.
func azurePath(r *Request) string {
	be := r.Backend
	return be.BasePath + "/openai/deployments/" + url.PathEscape(r.Model) +
		"/chat/completions?api-version=" + url.QueryEscape(be.Azure.APIVersion)
}

// Headers: an API key in api-key or an Entra ID token in authorization.
func (azure) Headers() []string { return []string{"api-key", "authorization"} }

// azureStreamOptions reports whether an api-version takes stream_options.
// Versions are dates, optionally with a suffix ("2024-10-01-preview"); any
// other name ("preview", "latest") is taken to be recent.
func azureStreamOptions(version string) bool {
	if len(version) < len(azureStreamOptionsSince) || version[0] < '0' || version[0] > '9' {
		return true
	}
	return version[:len(azureStreamOptionsSince)] >= azureStreamOptionsSince
}

// Response passes successful answers through: they are OpenAI's, with
// Azure's additions (prompt_filter_results, content_filter_results, a first
// stream chunk with empty choices) that OpenAI clients ignore, and
// finish_reason "content_filter" as OpenAI spells it. Errors are rewritten
// by AzureError. A 429's retry-after and retry-after-ms headers reach the
// client unchanged.
func (azure) Response(r *Response) Answer {
	if r.Status >= 200 && r.Status < 300 {
		return Answer{Body: passBody{}}
	}
	return Answer{Body: &errorBody{status: r.Status, norm: AzureError}, ContentType: "application/json"}
}

// AzureError turns an Azure OpenAI error body into OpenAI error JSON with
// the same status. Azure's errors are OpenAI-shaped but often lack
// error.type and carry a numeric-string code ({"error":{"code":"429",
// "message":"..."}}); the type is filled from the status, a 429's code
// becomes rate_limit_exceeded, a content-filter refusal keeps code
// content_filter (with param "prompt" when Azure names none) and everything
// else Azure sent (innererror with content_filter_result, status) is kept.
// Bodies of other shapes go through NormalizeError.
func AzureError(status int, body []byte) []byte {
	if !gjson.ValidBytes(body) || gjson.GetBytes(body, "error.message").Type != gjson.String {
		body = NormalizeError(status, body)
		if status != http.StatusTooManyRequests {
			return body
		}
	}
	e := gjson.GetBytes(body, "error")
	var typ, code, param string // raw JSON to set; "" leaves the member alone
	if t := e.Get("type"); t.Type != gjson.String || t.Str == "" {
		typ = jsonString(apierr.TypeForStatus(status))
	}
	c, p := e.Get("code"), e.Get("param")
	switch {
	case status == http.StatusTooManyRequests:
		if c.Type != gjson.String || c.Str != "rate_limit_exceeded" {
			code = `"rate_limit_exceeded"`
		}
	case c.Type == gjson.String && c.Str == "content_filter":
		if p.Type != gjson.String || p.Str == "" {
			param = `"prompt"`
		}
	case c.Type == gjson.Number:
		code = jsonString(c.Raw)
	}
	if typ == "" && code == "" && param == "" {
		return body
	}
	if code == "" && !c.Exists() {
		code = "null"
	}
	if param == "" && !p.Exists() {
		param = "null"
	}
	for _, kv := range [...][2]string{{"error.type", typ}, {"error.param", param}, {"error.code", code}} {
		if kv[1] == "" {
			continue
		}
		b, err := sjson.SetRawBytes(body, kv[0], []byte(kv[1]))
		if err != nil {
			return NormalizeError(status, body)
		}
		body = b
	}
	return body
}

func jsonString(s string) string { return string(appendJSONString(nil, s)) }
