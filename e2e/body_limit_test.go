package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestChunkedBodiesAboveTheLimit: limits.max_request_bytes is 64 KiB, so
// Envoy buffers up to 128 KiB (the rendered buffer limit). A chunked body
// (no content-length) between the two reaches llmproc as one BUFFERED
// message and gets llmproc's 413; one above the buffer gets Envoy's own 413
// (details request_payload_too_large), which local_reply_config makes the
// same JSON, Anthropic-shaped on /v1/messages. Nothing reaches a provider.
func TestChunkedBodiesAboveTheLimit(t *testing.T) {
	e := start(t)
	for _, tt := range []struct {
		name, path string
		size       int
	}{
		{"between the limit and the buffer", "/v1/chat/completions", 100 << 10},
		{"above the buffer", "/v1/chat/completions", 200 << 10},
		{"above the buffer, Anthropic client", "/v1/messages", 200 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"` + strings.Repeat("a", tt.size) + `"}]}`
			// An io.Reader of unknown length: net/http sends it chunked.
			req, err := http.NewRequest(http.MethodPost, e.URL()+tt.path, io.MultiReader(strings.NewReader(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("content-type", "application/json")
			r := do(t, req)
			if tt.path == "/v1/messages" {
				wantAnthropicError(t, r, 413, "request_too_large")
				return
			}
			wantOpenAIError(t, r, 413, "request_too_large")
		})
	}
	if n := len(e.primary.Requests()) + len(e.secondary.Requests()); n != 0 {
		t.Errorf("providers saw %d requests", n)
	}
}
