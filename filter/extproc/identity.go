package extproc

import (
	"net/http"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/identity"
)

// caller is who a request comes from, as the identity source says.
type caller struct {
	// credential headers, read only under client_keys
	authorization, xAPIKey, googAPIKey string
	keyID                              string // the key's public id ("" for header)
	keyModels                          []string
}

// credentialHeader records a client credential header.
func (c *caller) credentialHeader(k, v string) {
	switch k {
	case "authorization":
		c.authorization = v
	case "x-api-key":
		c.xAPIKey = v
	case "x-goog-api-key":
		c.googAPIKey = v
	}
}

// authenticate sets the router's tenant from the identity source before
// anything is routed, cached or budgeted: under client_keys from the key
// (the tenant header is never read), refusing a missing, unknown, expired or
// revoked key with 401 in the client's shape. Keys are never logged, only ids.
func (r *router) authenticate() *apierr.Error {
	if !r.rt.ClientKeys {
		r.s.authCounted(config.SourceHeader, identity.ResultOK)
		return nil
	}
	c := &r.caller
	key, id, result := r.lookupKey(identity.Credential(c.authorization, c.xAPIKey, c.googAPIKey))
	r.s.authCounted(config.SourceClientKeys, result)
	if result == resultUnavailable {
		r.s.log.Warn("client key refused: the shared key store has not been read yet", "request_id", r.id, "key_id", id)
		return r.s.reject(&apierr.Error{Status: http.StatusServiceUnavailable, Type: apierr.TypeServer, Code: "key_store_unavailable",
			Message: "The API key cannot be checked right now; try again shortly."})
	}
	if key == nil {
		if id != "" {
			// Debug: any client can send made-up ids; the refusal is counted.
			r.s.log.Debug("client key refused", "request_id", r.id, "key_id", id, "result", result)
		}
		return r.s.reject(keyError(result))
	}
	r.tenant, c.keyID, c.keyModels = key.Tenant, key.ID, key.Models
	return nil
}

// resultUnavailable: the shared key store has not been read since start,
// and the key is not in the keys file.
const resultUnavailable = "unavailable"

// lookupKey authenticates a presented key against the keys file, then (for
// an id the file does not know) the shared store's copy.
func (r *router) lookupKey(presented string) (*identity.Key, string, string) {
	now := r.s.now()
	key, id, result := r.rt.Keys.Authenticate(presented, now)
	if result != identity.ResultUnknown || r.s.shared == nil || r.rt.Source.Identity.Redis == nil {
		return key, id, result
	}
	if r.rt.Keys.Has(id) {
		return key, id, result // the file's entry decides: its hash differs
	}
	shared := r.s.shared.Keys()
	if shared == nil {
		return nil, id, resultUnavailable
	}
	return shared.Authenticate(presented, now)
}

// mayUse reports whether the caller's allow-lists admit model.
func (r *router) mayUse(model string) bool {
	return r.rt.ModelAllowed(r.tenant, r.caller.keyModels, model)
}

// allowModel refuses, with 403 naming it, a model outside the tenant's and
// the key's allow-lists.
func (r *router) allowModel(model string) *apierr.Error {
	if r.mayUse(model) {
		return nil
	}
	source := config.SourceHeader
	if r.rt.ClientKeys {
		source = config.SourceClientKeys
	}
	r.s.authCounted(source, identity.ResultForbidden)
	return r.s.reject(&apierr.Error{Status: http.StatusForbidden, Type: apierr.TypeInvalidRequest, Code: "model_not_allowed", Param: "model",
		Message: "The model `" + model + "` is not allowed for tenant `" + r.tenant + "`."})
}

func keyError(result string) *apierr.Error {
	msg := map[string]string{
		identity.ResultMissing: "No API key provided: send an llmproc key in Authorization: Bearer, x-api-key or x-goog-api-key.",
		identity.ResultExpired: "The API key has expired.",
		identity.ResultRevoked: "The API key has been revoked.",
	}[result]
	if msg == "" {
		msg = "Incorrect API key provided."
	}
	return &apierr.Error{Status: http.StatusUnauthorized, Type: apierr.TypeAuthentication, Code: result + "_api_key", Message: msg}
}

func (s *Server) authCounted(source, result string) {
	if s.metrics != nil {
		s.metrics.Auth(source, result)
	}
}
