package extproc

import (
	"net/http"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/identity"
)

// caller is who a request comes from, as the identity source says.
type caller struct {
	// credential headers, read only under client_keys
	authorization, xAPIKey, googAPIKey string
	keyID                              string        // the key's public id ("" for header)
	key                                *identity.Key // the client key's record (immutable), nil for other sources
	// team and tier, for routing rules: the key's team, the JWT's team and
	// tier claims, or the mesh principal's entry.
	team, tier string
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
func (r *router) authenticate(req *extprocv3.ProcessingRequest) *apierr.Error {
	switch r.rt.IdentitySource {
	case config.SourceJWT:
		return r.authenticateJWT(req)
	case config.SourceMesh:
		return r.authenticateMesh(req)
	case config.SourceClientKeys:
	default:
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
	r.tenant, c.keyID, c.key, c.team = key.Tenant, key.ID, key, key.Team
	return nil
}

// Names on the wire of the jwt and mesh sources.
const (
	// JWTNamespace is the dynamic metadata namespace Envoy's jwt_authn
	// filter writes (Filter::setExtractedData in
	// source/extensions/filters/http/jwt_authn/filter.cc); the router
	// filter forwards it to llmproc (metadata_options.forwarding_namespaces).
	JWTNamespace = "envoy.filters.http.jwt_authn"
	// JWTPayloadKey is the provider's payload_in_metadata: the verified
	// payload's key in JWTNamespace. Istio's RequestAuthentication uses the
	// same key (EnvoyJwtFilterPayload in istio's pilot/pkg/xds/filters), so
	// one rule reads both renderings.
	JWTPayloadKey = "payload"
	// AttrPeerURISAN is the Envoy attribute with the URI SAN of the
	// client's certificate: in a mesh, the caller's SPIFFE id.
	AttrPeerURISAN = "connection.uri_san_peer_certificate"
	// AttrSourcePrincipal is Istio's name for the caller's principal; read
	// when Envoy sends it (llmproc asks only for AttrPeerURISAN).
	AttrSourcePrincipal = "source.principal"
)

// Results of the jwt and mesh sources beyond identity.Result*.
const (
	resultNoClaim   = "no_claim"   // a verified JWT without the tenant claim
	resultNoMapping = "unmapped"   // a principal no identity.principals entry matches
	resultBadIssuer = "bad_issuer" // a payload of another issuer (a misconfigured Envoy)
)

// authenticateJWT takes the tenant from the payload jwt_authn verified and
// stored in its dynamic metadata. No payload means Envoy did not verify a
// token (a rendering that allows missing tokens, as Istio's
// RequestAuthentication does without an AuthorizationPolicy): 401.
func (r *router) authenticateJWT(req *extprocv3.ProcessingRequest) *apierr.Error {
	j := r.rt.Source.Identity.JWT
	payload := req.GetMetadataContext().GetFilterMetadata()[JWTNamespace].GetFields()[JWTPayloadKey].GetStructValue()
	refuse := func(result, code, msg string) *apierr.Error {
		r.s.authCounted(config.SourceJWT, result)
		return r.s.reject(&apierr.Error{Status: http.StatusUnauthorized, Type: apierr.TypeAuthentication, Code: code, Message: msg})
	}
	if payload == nil {
		return refuse(identity.ResultMissing, "missing_jwt", "No verified JWT: send a bearer token issued by "+j.Issuer+".")
	}
	if iss := payload.GetFields()["iss"].GetStringValue(); iss != j.Issuer {
		return refuse(resultBadIssuer, "invalid_jwt", "The verified JWT is not from the configured issuer.")
	}
	tenant := claim(payload, j.TenantClaimPath())
	if tenant == "" {
		return refuse(resultNoClaim, "invalid_jwt", "The JWT has no string claim `"+j.TenantClaimPath()+"` naming the tenant.")
	}
	r.s.authCounted(config.SourceJWT, identity.ResultOK)
	r.tenant = tenant
	r.caller.team, r.caller.tier = claim(payload, j.TeamClaim), claim(payload, j.TierClaim)
	return nil
}

// claim is the string at a "."-separated path of the payload; "" when
// absent, empty or not a string.
func claim(payload *structpb.Struct, path string) string {
	if path == "" {
		return ""
	}
	v := structpb.NewStructValue(payload)
	for part := range strings.SplitSeq(path, ".") {
		v = v.GetStructValue().GetFields()[part]
	}
	return v.GetStringValue()
}

// authenticateMesh maps the caller's workload identity, from the request
// attributes the router filter asks for, to a tenant.
func (r *router) authenticateMesh(req *extprocv3.ProcessingRequest) *apierr.Error {
	attrs := req.GetAttributes()["envoy.filters.http.ext_proc"].GetFields()
	id := attrs[AttrSourcePrincipal].GetStringValue()
	if id == "" {
		id = attrs[AttrPeerURISAN].GetStringValue()
	}
	if id == "" {
		r.s.authCounted(config.SourceMesh, identity.ResultMissing)
		return r.s.reject(&apierr.Error{Status: http.StatusUnauthorized, Type: apierr.TypeAuthentication, Code: "missing_peer_identity",
			Message: "The caller presented no workload identity (mTLS peer certificate)."})
	}
	p := r.rt.MeshPrincipal(id)
	if p == nil {
		r.s.authCounted(config.SourceMesh, resultNoMapping)
		return r.s.reject(&apierr.Error{Status: http.StatusForbidden, Type: apierr.TypeInvalidRequest, Code: "principal_not_allowed",
			Message: "The workload `" + id + "` is not mapped to a tenant."})
	}
	r.s.authCounted(config.SourceMesh, identity.ResultOK)
	r.tenant, r.caller.team, r.caller.tier = p.Tenant, p.Team, p.Tier
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
