package extproc

import (
	"net/http"
	"slices"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/budget"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/identity"
	"github.com/llmproc/llmproc/filter/translate"
)

// What a caller may use: its tenant's identity.tenants[] entry, narrowed by
// its client key's own lists (models, apis, tools, max_request_bytes); a
// refusal says which of the two refused. A key's budget and rate limit are
// charged in addition to the tenant's (keyLimits).

// mayUse reports whether the caller's allow-lists admit model.
func (r *router) mayUse(model string) bool {
	return r.rt.ModelAllowed(r.tenant, r.keyList(func(k *identity.Key) []string { return k.Models }), model)
}

// keyList is a list of the caller's key record; nil without a key.
func (r *router) keyList(f func(*identity.Key) []string) []string {
	if r.caller.key == nil {
		return nil
	}
	return f(r.caller.key)
}

// whose names the allow-list that refused: the tenant's, or the key's own.
func (r *router) whose(byKey bool) string {
	if byKey {
		return "API key `" + r.caller.keyID + "` (the key's own limit)"
	}
	return "tenant `" + r.tenant + "`"
}

// forbidden counts and returns a 403 naming what was refused.
func (r *router) forbidden(code, param, msg string) *apierr.Error {
	r.s.authCounted(r.rt.IdentitySource, identity.ResultForbidden)
	return r.s.reject(&apierr.Error{Status: http.StatusForbidden, Type: apierr.TypeInvalidRequest, Code: code, Param: param, Message: msg})
}

// allowModel refuses, with 403 naming it, a model outside the tenant's or
// the key's allow-list.
func (r *router) allowModel(model string) *apierr.Error {
	if !r.rt.TenantModelAllowed(r.tenant, model) {
		return r.forbidden("model_not_allowed", "model", "The model `"+model+"` is not allowed for "+r.whose(false)+".")
	}
	if !r.rt.ModelIn(r.keyList(func(k *identity.Key) []string { return k.Models }), model) {
		return r.forbidden("model_not_allowed", "model", "The model `"+model+"` is not allowed for "+r.whose(true)+".")
	}
	return nil
}

// allowTools refuses, with 403 naming it, a tool outside the tenant's
// identity.tenants[].tools or the key's tools: the names of what the
// request offers the model, in every client API's shape (OpenAI
// tools[].function.name and functions[].name, Responses and Anthropic
// tools[].name, Gemini tools[].functionDeclarations[].name; a built-in tool
// without a name by its type, or by its key for Gemini, e.g. googleSearch).
func (r *router) allowTools(body []byte) *apierr.Error {
	keyTools := r.keyList(func(k *identity.Key) []string { return k.Tools })
	if !r.rt.RestrictsTools() && len(keyTools) == 0 {
		return nil
	}
	var refused string
	var byKey bool
	check := func(name string) bool {
		switch {
		case name == "":
		case !r.rt.ToolAllowed(r.tenant, name):
			refused = name
		case len(keyTools) > 0 && !config.MatchAny(keyTools, name):
			refused, byKey = name, true
		}
		return refused == ""
	}
	root := gjson.ParseBytes(body)
	root.Get("tools").ForEach(func(_, t gjson.Result) bool {
		if fd := t.Get("functionDeclarations"); fd.IsArray() {
			ok := true
			fd.ForEach(func(_, f gjson.Result) bool { ok = check(f.Get("name").String()); return ok })
			return ok
		}
		name := t.Get("function.name").String()
		if name == "" {
			name = t.Get("name").String()
		}
		if name == "" {
			name = t.Get("type").String()
		}
		if name == "" && t.IsObject() { // Gemini's built-ins: {"googleSearch": {}}
			t.ForEach(func(k, _ gjson.Result) bool { name = k.String(); return false })
		}
		return check(name)
	})
	if refused == "" {
		root.Get("functions").ForEach(func(_, f gjson.Result) bool { return check(f.Get("name").String()) })
	}
	if refused == "" {
		return nil
	}
	return r.forbidden("tool_not_allowed", "tools", "The tool `"+refused+"` is not allowed for "+r.whose(byKey)+".")
}

// clientAPI is the request's API as identity.tenants[].apis names it.
func (r *router) clientAPI() string {
	switch {
	case r.endpoint == translate.EndpointInputTokens:
		return translate.EndpointResponses
	case r.endpoint != "":
		return r.endpoint
	case r.client == clientAnthropic:
		return "messages"
	case r.client == clientGemini:
		return clientGemini
	}
	return "chat"
}

// allowAPI refuses, with 403 naming it, a client API outside the tenant's
// identity.tenants[].apis or the key's apis.
func (r *router) allowAPI() *apierr.Error {
	api := r.clientAPI()
	if !r.rt.APIAllowed(r.tenant, api) {
		return r.forbidden("api_not_allowed", "", "The "+api+" API is not allowed for "+r.whose(false)+".")
	}
	if apis := r.keyList(func(k *identity.Key) []string { return k.APIs }); len(apis) > 0 && !slices.Contains(apis, api) {
		return r.forbidden("api_not_allowed", "", "The "+api+" API is not allowed for "+r.whose(true)+".")
	}
	return nil
}

// maxBytes is the caller's body limit: identity.tenants[].max_request_bytes
// (else limits.max_request_bytes), or the key's when smaller; byKey says
// the key's binds.
func (r *router) maxBytes() (limit int64, byKey bool) {
	return r.caller.key.MaxBytes(r.rt.MaxRequestBytes(r.tenant))
}

// tooLargeFor is the 413 of a body over the caller's limit.
func (r *router) tooLargeFor(got int64) *apierr.Error {
	limit, byKey := r.maxBytes()
	if !byKey {
		return tooLarge(got, limit)
	}
	return apierr.New(http.StatusRequestEntityTooLarge, apierr.TypeInvalidRequest, "request_too_large",
		"The request body is %d bytes; the limit of API key `%s` (the key's own limit) is %d bytes.", got, r.caller.keyID, limit)
}

// keyLimits are the caller's key's own budget and rate limit for the budget
// engine; nil when it has none.
func (r *router) keyLimits() *budget.KeyLimits {
	k := r.caller.key
	if k == nil || k.Budget == nil && k.RateLimit == nil {
		return nil
	}
	l := &budget.KeyLimits{ID: k.ID}
	if b := k.Budget; b != nil {
		w, err := budget.ParseWindow(b.WindowName())
		if err != nil { // the key store validated it
			w = budget.Month
		}
		l.Window, l.Budget = w, budget.Limit{Pico: b.LimitPico(), Tokens: b.LimitTokens}
	}
	if rl := k.RateLimit; rl != nil {
		l.RateLimit = budget.Limit{Tokens: rl.TPM, Requests: rl.RPM}
	}
	return l
}
