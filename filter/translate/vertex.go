package translate

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// vertex speaks Gemini on Vertex AI: the same bodies as gemini, a path with
// the project and region, and a bearer token made from a service-account
// key or given as is.
type vertex struct {
	tokens *tokenCache // token sources per backend; a Set keeps it for the server's lifetime
	now    func() time.Time
}

func (v vertex) Request(r *Request) (*Upstream, error) {
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
	up := &Upstream{
		Path: b.BasePath + "/v1/projects/" + url.PathEscape(b.Vertex.Project) + "/locations/" + url.PathEscape(b.Vertex.Region) +
			"/publishers/google/models/" + url.PathEscape(model) + geminiMethod(r.Stream),
		Body:          body,
		RemoveHeaders: []string{"x-goog-api-key"},
	}
	if token != "" {
		up.SetHeaders = append(up.SetHeaders, [2]string{"authorization", "Bearer " + token})
	}
	return up, nil
}

func (v vertex) Response(r *Response) Answer { return geminiAnswer(r, v.now) }

// vertexScope is the OAuth scope Vertex AI accepts.
const vertexScope = "https://www.googleapis.com/auth/cloud-platform"

// tokenCache hands out Vertex access tokens. A backend whose credential is
// a service-account key (JSON) gets a token source per backend name and key,
// which fetches a token from the key's token_uri and refreshes it shortly
// before it expires; any other credential is an access token used as is.
// The zero value is ready to use and safe for concurrent use.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]*tokenEntry // by backend name
	// client, when set, fetches tokens (tests point it at a fake endpoint's
	// TLS); nil means a client with a 10 s timeout.
	client *http.Client
}

type tokenEntry struct {
	key [32]byte // sha256 of the credential
	src oauth2.TokenSource
}

// Token returns the bearer token for b ("" when b has no credential).
func (c *tokenCache) Token(b *config.RBackend) (string, error) {
	cred := strings.TrimSpace(b.Credential)
	if !strings.HasPrefix(cred, "{") {
		return cred, nil
	}
	src, err := c.source(b.Name, cred)
	if err != nil {
		return "", err
	}
	t, err := src.Token()
	if err != nil {
		return "", apierr.New(http.StatusBadGateway, apierr.TypeUpstream, "backend_auth_failed",
			"Could not get an access token for backend %q: %v", b.Name, err)
	}
	return t.AccessToken, nil
}

func (c *tokenCache) source(name, cred string) (oauth2.TokenSource, error) {
	key := sha256.Sum256([]byte(cred))
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[name]; ok && e.key == key {
		return e.src, nil
	}
	client := c.client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	// The context lives as long as the token source: it carries the HTTP
	// client for every refresh.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
	creds, err := google.CredentialsFromJSONWithType(ctx, []byte(cred), google.ServiceAccount, vertexScope)
	if err != nil {
		return nil, apierr.New(http.StatusInternalServerError, apierr.TypeServer, "backend_credential_invalid",
			"The credential of backend %q is not a usable service-account key: %v", name, err)
	}
	if c.m == nil {
		c.m = map[string]*tokenEntry{}
	}
	// One entry per backend: a rotated key replaces the old one.
	e := &tokenEntry{key: key, src: oauth2.ReuseTokenSource(nil, creds.TokenSource)}
	c.m[name] = e
	return e.src, nil
}
