package harness

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"github.com/go-jose/go-jose/v4"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// jwtAuthn plays Envoy's envoy.filters.http.jwt_authn for what llmproc
// renders: one provider, required on every path (a rule with prefix "/"
// and requires.provider_name). Every step follows Envoy's source,
// source/extensions/filters/http/jwt_authn/ (authenticator.cc,
// filter.cc, extractor.cc) and its verification library
// (google/jwt_verify_lib: src/jwt.cc, src/verify.cc, src/status.cc):
//
//   - The token is taken from Authorization: Bearer, else the access_token
//     query parameter (the default locations, extractor.cc). None: 401
//     "Jwt is missing" (Status::JwtMissed).
//   - Parsed (Jwt::parseFromString): three base64url parts, the header JSON
//     with a string alg Envoy implements, the payload JSON.
//   - iss must be the provider's issuer: else "Jwt issuer is not configured"
//     (AuthenticatorImpl::startVerify checks isIssuerAllowed first).
//   - Time (Jwt::verifyTimeConstraint, clock_skew_seconds default 60):
//     now + skew < nbf is "Jwt not yet valid", exp set and now > exp + skew
//     "Jwt is expired".
//   - Audiences, when the provider lists any: one of the token's aud must
//     be among them, else "Audiences in Jwt are not allowed", answered 403
//     (Filter::onComplete picks Forbidden for JwtAudienceNotAllowed only).
//   - The signature, against the JWKS keys whose kid (when the token has
//     one) and alg match: none match "Jwks doesn't have key to match kid or
//     alg from Jwt", none verifies "Jwt verification fails".
//
// A refusal is a local reply whose body is that status string, with
// WWW-Authenticate: Bearer realm="<uri>" (plus , error="invalid_token"
// unless the token was missing) and response code details
// jwt_authn_access_denied{<status with spaces as _>} (filter.cc). Success
// stores the payload under payload_in_metadata in the dynamic metadata
// namespace envoy.filters.http.jwt_authn (Filter::setExtractedData) and,
// unless forward is set, removes the token's header
// (AuthenticatorImpl::handleGoodJwt).
type jwtAuthn struct {
	issuer     string
	audiences  []string
	forward    bool
	payloadKey string
	skew       time.Duration
	now        func() time.Time

	local *jose.JSONWebKeySet // local_jwks
	// remote_jwks: fetched through the named cluster, kept cache_duration.
	remoteURI, remoteAddr string
	cacheFor              time.Duration
	mu                    sync.Mutex
	remote                *jose.JSONWebKeySet
	fetched               time.Time
}

// jwtNamespace is jwt_authn's dynamic metadata namespace.
const jwtNamespace = "envoy.filters.http.jwt_authn"

func (p *plan) compileJWT(a *anypb.Any, path string, now func() time.Time) (*jwtAuthn, error) {
	cfg := &jwtauthnv3.JwtAuthentication{}
	if err := a.UnmarshalTo(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkFields(cfg, path); err != nil {
		return nil, err
	}
	if len(cfg.GetProviders()) != 1 || len(cfg.GetRules()) != 1 {
		return nil, fmt.Errorf("%s: the harness plays one provider and one rule", path)
	}
	rule := cfg.GetRules()[0]
	var name string
	for n := range cfg.GetProviders() {
		name = n
	}
	if rule.GetMatch().GetPrefix() != "/" || rule.GetRequires().GetProviderName() != name {
		return nil, fmt.Errorf("%s.rules[0]: the harness plays only {match: {prefix: /}, requires: {provider_name: %s}}", path, name)
	}
	pr := cfg.GetProviders()[name]
	pp := fmt.Sprintf("%s.providers[%s]", path, name)
	if err := checkFields(pr, pp); err != nil {
		return nil, err
	}
	j := &jwtAuthn{
		issuer: pr.GetIssuer(), audiences: pr.GetAudiences(), forward: pr.GetForward(),
		payloadKey: pr.GetPayloadInMetadata(), skew: 60 * time.Second, now: now,
	}
	if s := pr.GetClockSkewSeconds(); s > 0 {
		j.skew = time.Duration(s) * time.Second
	}
	switch {
	case pr.GetLocalJwks() != nil:
		data, err := dataSource(pr.GetLocalJwks())
		if err != nil {
			return nil, fmt.Errorf("%s.local_jwks: %w", pp, err)
		}
		ks := &jose.JSONWebKeySet{}
		if err := json.Unmarshal([]byte(data), ks); err != nil {
			return nil, fmt.Errorf("%s.local_jwks: %w", pp, err)
		}
		j.local = ks
	case pr.GetRemoteJwks() != nil:
		hu := pr.GetRemoteJwks().GetHttpUri()
		cl, ok := p.clusters[hu.GetCluster()]
		if !ok || len(cl.hosts) == 0 {
			return nil, fmt.Errorf("%s.remote_jwks.http_uri.cluster: unknown cluster %q", pp, hu.GetCluster())
		}
		j.remoteURI, j.remoteAddr = hu.GetUri(), cl.hosts[0].addr
		j.cacheFor = dur(pr.GetRemoteJwks().GetCacheDuration(), 5*time.Minute)
	default:
		return nil, fmt.Errorf("%s: local_jwks or remote_jwks required", pp)
	}
	return j, nil
}

// jwtStatus is one of jwt_verify_lib's status strings (src/status.cc).
type jwtStatus string

const (
	jwtOK               jwtStatus = ""
	jwtMissed           jwtStatus = "Jwt is missing"
	jwtBadFormat        jwtStatus = "Jwt is not in the form of Header.Payload.Signature"
	jwtHeaderParseError jwtStatus = "Jwt header is an invalid Base64url input or an invalid JSON"
	jwtHeaderBadAlg     jwtStatus = "Jwt header [alg] field is not a string"
	jwtHeaderAlg        jwtStatus = "Jwt header [alg] field value is invalid"
	jwtPayloadError     jwtStatus = "Jwt payload is an invalid Base64 or an invalid JSON"
	jwtSignatureError   jwtStatus = "Jwt signature is an invalid Base64"
	jwtUnknownIssuer    jwtStatus = "Jwt issuer is not configured"
	jwtNotYetValid      jwtStatus = "Jwt not yet valid"
	jwtExpired          jwtStatus = "Jwt is expired"
	jwtAudience         jwtStatus = "Audiences in Jwt are not allowed"
	jwtVerificationFail jwtStatus = "Jwt verification fails"
	jwksKidAlgMismatch  jwtStatus = "Jwks doesn't have key to match kid or alg from Jwt"
	jwksFetchFail       jwtStatus = "Jwks remote fetch is failed"
)

// The algorithms jwt_verify_lib implements (Jwt::parseFromString).
var jwtAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.HS256, jose.HS384, jose.HS512, jose.EdDSA}

// decode runs the filter on the request headers: a local reply refusing
// the request, or nil with the payload in info's dynamic metadata.
func (j *jwtAuthn) decode(h *headerMap, info *streamInfo) *localReply {
	token, fromHeader := j.extract(h)
	payload, st := j.verify(token)
	if st != jwtOK {
		return j.refuse(h, st)
	}
	if !j.forward && fromHeader {
		h.del("authorization")
	}
	if j.payloadKey != "" {
		info.setMetadata(jwtNamespace, &structpb.Struct{Fields: map[string]*structpb.Value{j.payloadKey: structpb.NewStructValue(payload)}})
	}
	return nil
}

func (j *jwtAuthn) extract(h *headerMap) (token string, fromHeader bool) {
	if v, ok := h.get("authorization"); ok {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			return t, true
		}
	}
	if p, ok := h.get(":path"); ok {
		if _, q, found := strings.Cut(p, "?"); found {
			if vs, err := url.ParseQuery(q); err == nil && vs.Get("access_token") != "" {
				return vs.Get("access_token"), false
			}
		}
	}
	return "", false
}

func (j *jwtAuthn) verify(token string) (*structpb.Struct, jwtStatus) {
	if token == "" {
		return nil, jwtMissed
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, jwtBadFormat
	}
	var header map[string]any
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(b, &header) != nil {
		return nil, jwtHeaderParseError
	}
	alg, ok := header["alg"].(string)
	if !ok {
		return nil, jwtHeaderBadAlg
	}
	if !slices.Contains(jwtAlgs, jose.SignatureAlgorithm(alg)) {
		return nil, jwtHeaderAlg
	}
	kid, _ := header["kid"].(string)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	payload := &structpb.Struct{}
	if err != nil || payload.UnmarshalJSON(raw) != nil {
		return nil, jwtPayloadError
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return nil, jwtSignatureError
	}
	f := payload.GetFields()
	if j.issuer != "" && f["iss"].GetStringValue() != j.issuer {
		return nil, jwtUnknownIssuer
	}
	now := j.now()
	if nbf := f["nbf"].GetNumberValue(); nbf > 0 && now.Add(j.skew).Before(time.Unix(int64(nbf), 0)) {
		return nil, jwtNotYetValid
	}
	if exp := f["exp"].GetNumberValue(); exp > 0 && now.After(time.Unix(int64(exp), 0).Add(j.skew)) {
		return nil, jwtExpired
	}
	if len(j.audiences) > 0 && !audienceAllowed(j.audiences, f["aud"]) {
		return nil, jwtAudience
	}
	keys, st := j.keys()
	if st != jwtOK {
		return nil, st
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		return nil, jwtVerificationFail
	}
	matched := false
	for _, k := range keys.Keys {
		if (kid != "" && k.KeyID != kid) || (k.Algorithm != "" && k.Algorithm != alg) {
			continue
		}
		matched = true
		if _, err := jws.Verify(k.Key); err == nil {
			return payload, jwtOK
		}
	}
	if !matched {
		return nil, jwksKidAlgMismatch
	}
	return nil, jwtVerificationFail
}

// audienceAllowed: aud is a string or a list of strings (Jwt::parseFromString
// reads either); one of them must be allowed (CheckAudience).
func audienceAllowed(allowed []string, aud *structpb.Value) bool {
	var got []string
	if s := aud.GetStringValue(); s != "" {
		got = []string{s}
	}
	for _, v := range aud.GetListValue().GetValues() {
		got = append(got, v.GetStringValue())
	}
	for _, a := range got {
		if slices.Contains(allowed, a) {
			return true
		}
	}
	return false
}

// keys is the JWKS: local, or the remote one fetched at most every
// cache_duration (JwksCache).
func (j *jwtAuthn) keys() (*jose.JSONWebKeySet, jwtStatus) {
	if j.local != nil {
		return j.local, jwtOK
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.remote != nil && j.now().Sub(j.fetched) < j.cacheFor {
		return j.remote, jwtOK
	}
	u, err := url.Parse(j.remoteURI)
	if err != nil {
		return nil, jwksFetchFail
	}
	// Through the cluster's endpoint, as Envoy's JwksFetcher does.
	u.Scheme, u.Host = "http", j.remoteAddr
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u.String())
	if err != nil {
		return nil, jwksFetchFail
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	ks := &jose.JSONWebKeySet{}
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(data, ks) != nil {
		return nil, jwksFetchFail
	}
	j.remote, j.fetched = ks, j.now()
	return ks, jwtOK
}

func (j *jwtAuthn) refuse(h *headerMap, st jwtStatus) *localReply {
	code := http.StatusUnauthorized
	if st == jwtAudience {
		code = http.StatusForbidden
	}
	host, _ := h.get(":authority")
	p, _ := h.get(":path")
	p, _, _ = strings.Cut(p, "?")
	uri := "http://" + host + p
	if len(uri) > 256 { // MaximumUriLength in filter.cc
		uri = uri[:256]
	}
	v := `Bearer realm="` + uri + `"`
	if st != jwtMissed {
		v += `, error="invalid_token"`
	}
	hdrs := &headerMap{}
	hdrs.set("www-authenticate", v)
	return &localReply{status: code, body: string(st), headers: hdrs,
		details: "jwt_authn_access_denied{" + strings.ReplaceAll(string(st), " ", "_") + "}"}
}
