package translate

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/creds"
)

func vertexBackend(cred string) *config.RBackend {
	return &config.RBackend{Name: "vx", Schema: "vertex", BasePath: "", Credential: cred,
		Vertex: config.VertexOptions{Project: "my-proj", Region: "europe-west4"}}
}

func TestVertexRequest(t *testing.T) {
	body := readFile(t, filepath.Join("testdata", "gemini", "tools_parallel.in.json"))
	tests := []struct {
		name, model string
		stream      bool
		cred        string
		wantPath    string
		wantSet     [][2]string
	}{
		{"json", "gemini-2.5-flash", false, "ya29.token", "/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent",
			[][2]string{{"authorization", "Bearer ya29.token"}}},
		{"stream, token with newline", "publishers/google/models/gemini-2.5-pro", true, "ya29.file\n", "/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
			[][2]string{{"authorization", "Bearer ya29.file"}}},
		{"no credential", "gemini-2.0-flash", false, "", "/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.0-flash:generateContent", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := vertex{tokens: newTokenCache(t)}.Request(&Request{Body: body, Backend: vertexBackend(tt.cred), Model: tt.model, Stream: tt.stream})
			if err != nil {
				t.Fatal(err)
			}
			if up.Path != tt.wantPath {
				t.Errorf("path %q, want %q", up.Path, tt.wantPath)
			}
			if diff := cmp.Diff(tt.wantSet, up.SetHeaders); diff != "" {
				t.Errorf("set headers (-want +got):\n%s", diff)
			}
			// The body is Gemini's, byte for byte.
			gup, err := gemini{}.Request(&Request{Body: body, Backend: &config.RBackend{Name: "g", Schema: "gemini"}, Model: tt.model, Stream: tt.stream})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(up.Body, gup.Body) {
				t.Errorf("vertex body differs from gemini's:\n%s\n%s", up.Body, gup.Body)
			}
		})
	}
}

// TestVertexResponseGolden runs Vertex-shaped answers (createTime,
// trafficType, token details) through the shared response code.
func TestVertexResponseGolden(t *testing.T) {
	for _, in := range geminiResponseCases(t, "vertex") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			stream := strings.HasSuffix(in, ".sse")
			newBody := func() Body {
				return vertex{now: geminiClock}.Response(&Response{Status: 200, Stream: stream, Model: "gemini-2.5-flash", Reasoning: true}).Body
			}
			out := splitEverywhere(t, readFile(t, in), newBody)
			golden(t, goldenOut(in), out)
			checkOpenAIAnswer(t, out, stream)
		})
	}
}

// fakeTokenServer is an OAuth token endpoint for the JWT bearer grant. It
// checks the assertion's signature with pub and answers with tokens
// "tok-1", "tok-2", … valid for expiresIn seconds.
type fakeTokenServer struct {
	*httptest.Server
	pub       *rsa.PublicKey
	expiresIn int
	calls     atomic.Int32
	mu        sync.Mutex
	errs      []string
	// hook, when set, runs first for each token request (the n-th); it may
	// block, and a status it returns other than 0 is the answer.
	hook func(n int32) int
}

func (f *fakeTokenServer) setHook(h func(n int32) int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

func (f *fakeTokenServer) fail(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeTokenServer) handle(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if status := hook(n); status != 0 {
			http.Error(w, `{"error":"temporarily_unavailable"}`, status)
			return
		}
	}
	if err := r.ParseForm(); err != nil {
		f.fail("form: %v", err)
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		f.fail("grant_type %q", g)
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		f.fail("assertion has %d parts", len(parts))
		http.Error(w, "bad assertion", http.StatusBadRequest)
		return
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(f.pub, 5, sum[:], sig); err != nil { // 5 = crypto.SHA256
		f.fail("signature: %v", err)
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if s := gjson.GetBytes(claims, "scope").Str; s != vertexScope {
		f.fail("scope %q", s)
	}
	if a := gjson.GetBytes(claims, "aud").Str; a != f.URL+"/token" {
		f.fail("aud %q", a)
	}
	if i := gjson.GetBytes(claims, "iss").Str; i != "llmproc@my-proj.iam.gserviceaccount.com" {
		f.fail("iss %q", i)
	}
	w.Header().Set("content-type", "application/json")
	fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":%d}`, n, f.expiresIn)
}

// serviceAccountKey makes a key file for a fresh RSA key whose token_uri
// points at a fake token server.
func serviceAccountKey(t *testing.T, expiresIn int) (string, *fakeTokenServer) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTokenServer{pub: &key.PublicKey, expiresIn: expiresIn}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.handle)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, e := range f.errs {
			t.Errorf("token endpoint: %s", e)
		}
	})
	js, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "my-proj",
		"private_key_id": "k1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "llmproc@my-proj.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      f.URL + "/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(js), f
}

func authHeader(t *testing.T, up *Upstream) string {
	t.Helper()
	for _, kv := range up.SetHeaders {
		if kv[0] == "authorization" {
			return kv[1]
		}
	}
	t.Fatal("no authorization header")
	return ""
}

func TestVertexServiceAccount(t *testing.T) {
	key, srv := serviceAccountKey(t, 3600)
	v := vertex{tokens: newTokenCache(t)}
	body := []byte(`{"messages":[{"role":"user","content":"hi"}]}`)
	req := &Request{Body: body, Backend: vertexBackend(key), Model: "gemini-2.5-flash"}
	// Concurrent attempts share one token source and one fetch.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			up, err := v.Request(req)
			if err != nil {
				t.Error(err)
				return
			}
			if got := authHeader(t, up); got != "Bearer tok-1" {
				t.Errorf("authorization %q", got)
			}
		})
	}
	wg.Wait()
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("%d token fetches for one valid token, want 1", n)
	}

	// Another backend with the same key has its own source.
	other := vertexBackend(key)
	other.Name = "vx2"
	up, err := v.Request(&Request{Body: body, Backend: other, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if got := authHeader(t, up); got != "Bearer tok-2" {
		t.Errorf("second backend: authorization %q", got)
	}

	// A rotated key replaces the backend's source.
	key2, srv2 := serviceAccountKey(t, 3600)
	up, err = v.Request(&Request{Body: body, Backend: vertexBackend(key2), Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if got := authHeader(t, up); got != "Bearer tok-1" || srv2.calls.Load() != 1 {
		t.Errorf("rotated key: authorization %q after %d fetches", got, srv2.calls.Load())
	}
	if v.tokens.cache.Has(vertexKey("vx", key)) {
		t.Error("the rotated-out key's token is still kept fresh")
	}
}

func newTokenCache(t *testing.T) *tokenCache {
	c := &tokenCache{cache: creds.New[string](creds.Options{})}
	t.Cleanup(c.cache.Close)
	return c
}

func TestVertexCredentialErrors(t *testing.T) {
	key, srv := serviceAccountKey(t, 3600)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
	})
	tests := []struct {
		name, cred string
		status     int
		code       string
	}{
		{"not a key", `{"type":"authorized_user","client_id":"x"}`, 500, "backend_credential_invalid"},
		{"broken JSON", `{"type":`, 500, "backend_credential_invalid"},
		{"token endpoint refuses", key, 502, "backend_auth_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vertex{tokens: newTokenCache(t)}.Request(&Request{Body: []byte(`{"messages":[]}`), Backend: vertexBackend(tt.cred), Model: "m"})
			var e *apierr.Error
			if !errors.As(err, &e) || e.Status != tt.status || e.Code != tt.code {
				t.Fatalf("error %v, want %d %s", err, tt.status, tt.code)
			}
			if strings.Contains(e.Message, "PRIVATE KEY") {
				t.Errorf("message leaks the key: %s", e.Message)
			}
		})
	}
}
