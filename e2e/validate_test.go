package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// TestHostileRequestsNeverReachProvider: every request of the validator's
// hostile corpus is refused with a 400 before routing; none reaches a
// provider.
func TestHostileRequestsNeverReachProvider(t *testing.T) {
	e := start(t)
	files, _ := filepath.Glob("../filter/validate/testdata/chat/bad_*.json")
	if len(files) < 50 {
		t.Fatalf("%d corpus files", len(files))
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if r := e.post(t, string(body)); r.status != 400 {
			t.Errorf("%s: status %d %s", filepath.Base(f), r.status, r.body)
		}
	}
	if n := len(e.primary.Requests()) + len(e.secondary.Requests()); n != 0 {
		t.Errorf("%d hostile requests reached a provider", n)
	}
}

// TestCompressedRequest: a gzip request body is decoded by the router; every
// attempt (here a failover from primary to secondary) receives the decoded
// body, with no content-encoding and a content-length that matches it.
func TestCompressedRequest(t *testing.T) {
	e := start(t)
	plain := chat("gpt-4o-mini", false, `"temperature":0.5,`)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(plain))
	w.Close()

	e.primary.Enqueue(fakeopenai.Behaviour{Status: 503})
	e.secondary.Enqueue(fakeopenai.Behaviour{Content: "Hello", Usage: fakeopenai.Usage{Prompt: 5, Completion: 1}})
	req, _ := http.NewRequest(http.MethodPost, e.URL()+"/v1/chat/completions", bytes.NewReader(gz.Bytes()))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("content-encoding", "gzip")
	if r := do(t, req); r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	got := append(e.primary.Requests(), e.secondary.Requests()...)
	if len(got) != 2 {
		t.Fatalf("%d provider requests, want 2 (primary, then secondary)", len(got))
	}
	for i, pr := range got {
		if !strings.Contains(string(pr.Body), `"temperature":0.5`) || !strings.Contains(string(pr.Body), "Say hello") {
			t.Errorf("attempt %d got body %q, want the decoded request", i+1, pr.Body)
		}
		if ce := pr.Header.Get("content-encoding"); ce != "" {
			t.Errorf("attempt %d: content-encoding %q reached the provider", i+1, ce)
		}
		if cl := pr.Header.Get("content-length"); cl != strconv.Itoa(len(pr.Body)) {
			t.Errorf("attempt %d: content-length %s for a %d-byte body", i+1, cl, len(pr.Body))
		}
	}

	// A body that claims gzip but is plain never reaches a provider.
	req, _ = http.NewRequest(http.MethodPost, e.URL()+"/v1/chat/completions", strings.NewReader(plain))
	req.Header.Set("content-encoding", "gzip")
	wantOpenAIError(t, do(t, req), 400, "invalid_content_encoding")
	req, _ = http.NewRequest(http.MethodPost, e.URL()+"/v1/chat/completions", strings.NewReader(plain))
	req.Header.Set("content-encoding", "compress")
	wantOpenAIError(t, do(t, req), 415, "unsupported_content_encoding")
	if n := len(e.primary.Requests()) + len(e.secondary.Requests()); n != 2 {
		t.Errorf("%d provider requests, want still 2", n)
	}
}
