package fakeazure

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

func post(t *testing.T, url, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestServer(t *testing.T) {
	s := New(Options{Key: "k", BasePath: "/gw", Model: "gpt-4o-2024-11-20"})
	defer s.Close()
	const chat = "/gw/openai/deployments/prod/chat/completions?api-version=2024-10-21"
	tests := []struct {
		name   string
		path   string
		body   string
		hdr    []string
		status int
		check  func(t *testing.T, h http.Header, body string)
	}{
		{"json", chat, `{"messages":[]}`, []string{"api-key", "k"}, 200, func(t *testing.T, _ http.Header, body string) {
			if gjson.Get(body, "model").String() != "gpt-4o-2024-11-20" || gjson.Get(body, "choices.0.message.content").String() == "" {
				t.Errorf("body %s", body)
			}
		}},
		{"stream with bearer", chat, `{"stream":true,"stream_options":{"include_usage":true},"messages":[]}`, []string{"authorization", "Bearer k"}, 200, func(t *testing.T, h http.Header, body string) {
			first, _, _ := strings.Cut(body, "\n\n")
			if !strings.Contains(first, "prompt_filter_results") || !strings.Contains(first, `"choices":[]`) {
				t.Errorf("first event %q", first)
			}
			if !strings.HasSuffix(body, "data: [DONE]\n\n") || !strings.Contains(body, `"usage":{`) || strings.Contains(body, `"model":"prod"`) {
				t.Errorf("stream %s", body)
			}
		}},
		{"wrong key", chat, `{}`, []string{"api-key", "nope"}, 401, nil},
		{"no api-version", "/gw/openai/deployments/prod/chat/completions", `{}`, []string{"api-key", "k"}, 404, nil},
		{"openai path", "/v1/chat/completions?api-version=x", `{}`, []string{"api-key", "k"}, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := post(t, s.URL()+tt.path, tt.body, tt.hdr...)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if status >= 400 && !gjson.Get(body, "error.message").Exists() {
				t.Errorf("error body %s", body)
			}
			if tt.check != nil {
				tt.check(t, h, body)
			}
		})
	}
	reqs := s.Requests()
	if len(reqs) != len(tests) || reqs[0].Deployment != "prod" || reqs[0].APIVersion != "2024-10-21" || reqs[0].Path != chat {
		t.Errorf("requests %+v", reqs)
	}
}

func TestScriptedError(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	s.Enqueue(fakeopenai.Behaviour{Status: 429, Body: []byte(`{"error":{"code":"429","message":"slow down"}}`),
		Header: http.Header{"Retry-After-Ms": {"800"}}})
	status, h, body := post(t, s.URL()+"/openai/deployments/d/chat/completions?api-version=v", `{}`)
	if status != 429 || h.Get("retry-after-ms") != "800" || body != `{"error":{"code":"429","message":"slow down"}}` {
		t.Errorf("status %d retry-after-ms %q body %s", status, h.Get("retry-after-ms"), body)
	}
}
