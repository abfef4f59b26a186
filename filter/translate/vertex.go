package translate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/creds"
)

// vertex speaks Gemini on Vertex AI: the same bodies as gemini, a path with
// the project and region, and a bearer token made from a service-account
// key or given as is. Claude models on Vertex (claude…, publisher
// anthropic) get the anthropic translator's body, sent to rawPredict as
// anthropic_cloud.go describes, and its reading of the answer.
type vertex struct {
	tokens *tokenCache // tokens per backend; a Set keeps it for the server's lifetime
	now    func() time.Time
}

func (v vertex) Request(r *Request) (*Upstream, error) {
	if vertexClaude(r.Model) {
		return v.claudeRequest(r)
	}
	body, err := geminiRequestBody(r)
	if err != nil {
		return nil, err
	}
	b := r.Backend
	token, err := v.tokens.Token(b)
	if err != nil {
		return nil, err
	}
	model := strings.TrimPrefix(strings.TrimPrefix(r.Model, "models/"), "publishers/google/models/")
	return vertexUpstream(b, "google", url.PathEscape(model)+geminiMethod(r.Stream), body, token), nil
}

// vertexUpstream is a POST of body to a publisher's model method,
// {model}:{method} (escaped), with the bearer token.
func vertexUpstream(b *config.RBackend, publisher, modelMethod string, body []byte, token string) *Upstream {
	up := &Upstream{
		Path: b.BasePath + "/v1/projects/" + url.PathEscape(b.Vertex.Project) + "/locations/" + url.PathEscape(b.Vertex.Region) +
			"/publishers/" + publisher + "/models/" + modelMethod,
		Body: body,
	}
	if token != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"authorization", "Bearer " + token})
	}
	return up
}

func (v vertex) Response(r *Response) Answer {
	if !vertexClaude(r.Model) {
		return geminiAnswer(r, v.now)
	}
	if r.Status < 200 || r.Status >= 300 {
		return vertexClaudeError(r.Status)
	}
	return anthropic{now: v.now}.Response(r)
}

// claudeRequest translates an OpenAI chat request for Claude on Vertex: as
// for Anthropic, then without model and with Vertex's anthropic_version,
// to rawPredict (streamRawPredict).
func (v vertex) claudeRequest(r *Request) (*Upstream, error) {
	up, err := anthropic{}.Request(r)
	if err != nil {
		return nil, err
	}
	rr := *r
	rr.Body = up.Body
	rr.Backend = &config.RBackend{Name: r.Backend.Name, Schema: r.Backend.Schema} // drop_params were OpenAI's, applied
	body, err := cloudBody(&rr, vertexAnthropicVersion, "", false)
	if err != nil {
		return nil, err
	}
	token, err := v.tokens.Token(r.Backend)
	if err != nil {
		return nil, err
	}
	method := ":rawPredict"
	if r.Stream {
		method = ":streamRawPredict"
	}
	return vertexUpstream(r.Backend, "anthropic", url.PathEscape(vertexClaudeModel(r.Model))+method, body, token), nil
}

// Headers: the access token goes in authorization; anthropic-beta for
// Claude (anthropic_cloud.go).
func (vertex) Headers() []string {
	return []string{"anthropic-beta", "authorization", "x-goog-api-key"}
}

// vertexScope is the OAuth scope Vertex AI accepts.
const vertexScope = "https://www.googleapis.com/auth/cloud-platform"

// tokenCache hands out Vertex access tokens. A backend whose credential is
// a service-account key (JSON) has its token fetched from the key's
// token_uri in the background (creds), at start (Set.Prepare) and ahead of
// each expiry; any other credential is an access token used as is.
type tokenCache struct {
	cache *creds.Cache[string]
	// client fetches tokens (tests point it at a fake endpoint's TLS); nil
	// means a client with a 10 s timeout.
	client *http.Client
}

// vertexKey names a backend's token in the cache: the backend and its key,
// so a rotated key is a new entry.
func vertexKey(name, cred string) string {
	sum := sha256.Sum256([]byte(cred))
	return name + "\x00" + hex.EncodeToString(sum[:])
}

// vertexKeys are the cache keys of b's Credential and CredentialNext, ""
// for one that is not a service-account key.
func vertexKeys(b *config.RBackend) [2]string {
	var out [2]string
	for i, cred := range []string{b.Credential, b.CredentialNext} {
		if cred = strings.TrimSpace(cred); serviceAccount(cred) {
			out[i] = vertexKey(b.Name, cred)
		}
	}
	return out
}

// serviceAccount reports whether a Vertex credential is a service-account
// key rather than an access token.
func serviceAccount(cred string) bool { return strings.HasPrefix(cred, "{") }

// Token returns the bearer token for b ("" when b has no credential).
func (c *tokenCache) Token(b *config.RBackend) (string, error) {
	cred := strings.TrimSpace(b.Credential)
	if !serviceAccount(cred) {
		return cred, nil
	}
	keys := vertexKeys(b)
	key := keys[0]
	if t, ok := c.cache.Get(key); ok {
		return t, nil
	}
	if err := c.keep(b.Name, key, keys[1], cred); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), creds.DefaultTimeout)
	defer cancel()
	t, err := c.cache.Wait(ctx, key)
	if err != nil {
		return "", apierr.New(http.StatusBadGateway, apierr.TypeUpstream, "backend_auth_failed",
			"Could not get an access token for backend %q: %v", b.Name, err)
	}
	return t, nil
}

// keep starts keeping the backend's token fresh, dropping the tokens of its
// previous keys but other's, its other key during a rotation ("" when none).
func (c *tokenCache) keep(name, key, other, cred string) error {
	if c.cache.Has(key) {
		return nil
	}
	conf, err := google.JWTConfigFromJSON([]byte(cred), vertexScope)
	if err != nil {
		return apierr.New(http.StatusInternalServerError, apierr.TypeServer, "backend_credential_invalid",
			"The credential of backend %q is not a usable service-account key: %v", name, err)
	}
	client := c.client
	if client == nil {
		client = &http.Client{Timeout: creds.DefaultTimeout}
	}
	// Keep key itself: a concurrent first request may have just started it,
	// and dropping it would cancel that fetch and fail its request.
	c.cache.Retain(func(k string) bool { return k == key || k == other || !strings.HasPrefix(k, name+"\x00") })
	c.cache.Ensure(key, func(ctx context.Context) (string, time.Time, error) {
		// A new source each time: jwt's own would hand back its cached token.
		t, err := conf.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, client)).Token()
		if err != nil {
			return "", time.Time{}, err
		}
		return t.AccessToken, t.Expiry, nil
	})
	return nil
}
