package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"github.com/go-jose/go-jose/v4"
	"google.golang.org/protobuf/types/known/anypb"
)

// jwtFixture is an issuer with an RSA signing key ("k1") in its JWKS and a
// second RSA key the JWKS does not hold.
type jwtFixture struct {
	key, stranger *rsa.PrivateKey
	jwks          string
	now           time.Time
}

func newJWTFixture(t *testing.T) *jwtFixture {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := rsa.GenerateKey(rand.Reader, 2048)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	b, _ := json.Marshal(set)
	return &jwtFixture{key: k, stranger: s, jwks: string(b), now: time.Unix(1_800_000_000, 0)}
}

func (f *jwtFixture) sign(t *testing.T, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	alg := jose.RS256
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = jose.ES256
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := sg.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jwtConfig(jwks string, audiences []string, remote string) *jwtauthnv3.JwtAuthentication {
	p := &jwtauthnv3.JwtProvider{Issuer: "https://issuer.test", Audiences: audiences, PayloadInMetadata: "payload"}
	if remote != "" {
		p.JwksSourceSpecifier = &jwtauthnv3.JwtProvider_RemoteJwks{RemoteJwks: &jwtauthnv3.RemoteJwks{
			HttpUri: &corev3.HttpUri{Uri: remote, HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "jwks"}}}}
	} else {
		p.JwksSourceSpecifier = &jwtauthnv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{
			Specifier: &corev3.DataSource_InlineString{InlineString: jwks}}}
	}
	return &jwtauthnv3.JwtAuthentication{
		Providers: map[string]*jwtauthnv3.JwtProvider{"llmproc": p},
		Rules: []*jwtauthnv3.RequirementRule{{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			RequirementType: &jwtauthnv3.RequirementRule_Requires{Requires: &jwtauthnv3.JwtRequirement{
				RequiresType: &jwtauthnv3.JwtRequirement_ProviderName{ProviderName: "llmproc"}}},
		}},
	}
}

// One case per rule of Envoy's jwt_authn (see jwtAuthn): the status, body,
// WWW-Authenticate and details of each refusal, and on success the payload
// in the envoy.filters.http.jwt_authn metadata and the token removed.
func TestJWTAuthnRules(t *testing.T) {
	f := newJWTFixture(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, _ := anypb.New(jwtConfig(f.jwks, []string{"llmproc"}, ""))
	p := &plan{clusters: map[string]*cluster{}}
	j, err := p.compileJWT(a, "jwt", func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	now := f.now.Unix()
	good := map[string]any{"iss": "https://issuer.test", "aud": "llmproc", "exp": now + 600, "tenant": "a"}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for k, v := range good {
			c[k] = v
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	valid := f.sign(t, f.key, "k1", good)
	parts := strings.Split(valid, ".")
	for _, tc := range []struct {
		name, auth, path string
		status           int
		body             string
	}{
		{"valid", "Bearer " + valid, "/v1/chat/completions", 0, ""},
		{"valid, aud a list", "Bearer " + f.sign(t, f.key, "k1", with("aud", []string{"other", "llmproc"})), "/v1/chat/completions", 0, ""},
		{"valid, no kid", "Bearer " + f.sign(t, f.key, "", good), "/v1/chat/completions", 0, ""},
		{"valid, within the clock skew", "Bearer " + f.sign(t, f.key, "k1", with("exp", now-30)), "/v1/chat/completions", 0, ""},
		{"valid, access_token parameter", "", "/v1/chat/completions?access_token=" + valid, 0, ""},
		{"missing", "", "/v1/chat/completions", 401, "Jwt is missing"},
		{"not a bearer token", "Basic " + valid, "/v1/chat/completions", 401, "Jwt is missing"},
		{"two parts", "Bearer " + parts[0] + "." + parts[1], "/", 401, "Jwt is not in the form of Header.Payload.Signature"},
		{"header not JSON", "Bearer " + base64.RawURLEncoding.EncodeToString([]byte("{")) + "." + parts[1] + "." + parts[2], "/", 401, "Jwt header is an invalid Base64url input or an invalid JSON"},
		{"alg none", "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".", "/", 401, "Jwt header [alg] field value is invalid"},
		{"payload not JSON", "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("[")) + "." + parts[2], "/", 401, "Jwt payload is an invalid Base64 or an invalid JSON"},
		{"bad signature", "Bearer " + parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte("forged")), "/", 401, "Jwt verification fails"},
		{"another key, same kid", "Bearer " + f.sign(t, f.stranger, "k1", good), "/", 401, "Jwt verification fails"},
		{"unknown kid", "Bearer " + f.sign(t, f.stranger, "k9", good), "/", 401, "Jwks doesn't have key to match kid or alg from Jwt"},
		{"alg the key is not for", "Bearer " + f.sign(t, ec, "", good), "/", 401, "Jwks doesn't have key to match kid or alg from Jwt"},
		{"other issuer", "Bearer " + f.sign(t, f.key, "k1", with("iss", "https://evil.test")), "/", 401, "Jwt issuer is not configured"},
		{"expired", "Bearer " + f.sign(t, f.key, "k1", with("exp", now-61)), "/", 401, "Jwt is expired"},
		{"not yet valid", "Bearer " + f.sign(t, f.key, "k1", with("nbf", now+61)), "/", 401, "Jwt not yet valid"},
		{"audience not allowed", "Bearer " + f.sign(t, f.key, "k1", with("aud", "other")), "/", 403, "Audiences in Jwt are not allowed"},
		{"no audience", "Bearer " + f.sign(t, f.key, "k1", with("aud", nil)), "/", 403, "Audiences in Jwt are not allowed"},
		// Issuer comes before time, time before audience, audience before
		// the signature (AuthenticatorImpl::startVerify).
		{"order: issuer before expiry", "Bearer " + f.sign(t, f.stranger, "k1", map[string]any{"iss": "x", "exp": now - 3600}), "/", 401, "Jwt issuer is not configured"},
		{"order: expiry before audience", "Bearer " + f.sign(t, f.stranger, "k1", map[string]any{"iss": "https://issuer.test", "exp": now - 3600, "aud": "x"}), "/", 401, "Jwt is expired"},
		{"order: audience before signature", "Bearer " + f.sign(t, f.stranger, "k1", with("aud", "x")), "/", 403, "Audiences in Jwt are not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &headerMap{}
			h.add(":authority", "llm.test")
			h.add(":path", tc.path)
			if tc.auth != "" {
				h.add("authorization", tc.auth)
			}
			info := newStreamInfo()
			lr := j.decode(h, info)
			if tc.status == 0 {
				if lr != nil {
					t.Fatalf("refused: %d %s", lr.status, lr.body)
				}
				payload := info.metadata()[jwtNamespace].GetFields()["payload"].GetStructValue()
				if payload.GetFields()["tenant"].GetStringValue() != "a" {
					t.Fatalf("metadata %v, want the payload under payload", info.metadata())
				}
				if _, ok := h.get("authorization"); ok {
					t.Error("the token was forwarded (forward: false removes it)")
				}
				return
			}
			if lr == nil {
				t.Fatal("accepted")
			}
			wantAuth := `Bearer realm="http://llm.test` + strings.Split(tc.path, "?")[0] + `"`
			if tc.body != "Jwt is missing" {
				wantAuth += `, error="invalid_token"`
			}
			if lr.status != tc.status || lr.body != tc.body || lr.headers.value("www-authenticate") != wantAuth ||
				lr.details != "jwt_authn_access_denied{"+strings.ReplaceAll(tc.body, " ", "_")+"}" {
				t.Fatalf("got %d %q %q %q, want %d %q %q", lr.status, lr.body, lr.headers.value("www-authenticate"), lr.details, tc.status, tc.body, wantAuth)
			}
			if len(info.metadata()) != 0 {
				t.Errorf("metadata on a refusal: %v", info.metadata())
			}
		})
	}
}

// remote_jwks is fetched through its cluster and cached; a fetch failure
// is Envoy's "Jwks remote fetch is failed".
func TestJWTAuthnRemoteJWKS(t *testing.T) {
	f := newJWTFixture(t)
	fetches := 0
	up := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up || r.URL.Path != "/keys" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fetches++
		w.Write([]byte(f.jwks))
	}))
	defer srv.Close()
	a, _ := anypb.New(jwtConfig("", nil, "https://issuer.test/keys"))
	p := &plan{clusters: map[string]*cluster{"jwks": {hosts: []*host{{addr: strings.TrimPrefix(srv.URL, "http://")}}}}}
	clock := f.now
	j, err := p.compileJWT(a, "jwt", func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	now := f.now.Unix()
	tok := f.sign(t, f.key, "k1", map[string]any{"iss": "https://issuer.test", "exp": now + 7200, "tenant": "a"})
	ask := func() *localReply {
		h := &headerMap{}
		h.add(":path", "/")
		h.add("authorization", "Bearer "+tok)
		return j.decode(h, newStreamInfo())
	}
	if lr := ask(); lr != nil || fetches != 1 {
		t.Fatalf("first: %v, %d fetches", lr, fetches)
	}
	up = false
	if lr := ask(); lr != nil || fetches != 1 {
		t.Fatalf("cached: %v, %d fetches", lr, fetches)
	}
	clock = clock.Add(6 * time.Minute) // past the default cache_duration of 5m
	if lr := ask(); lr == nil || lr.body != "Jwks remote fetch is failed" {
		t.Fatalf("with the JWKS server down: %+v", lr)
	}
}
