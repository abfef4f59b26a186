package fakegemini

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

const body = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`

func post(t *testing.T, url, path string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestServer(t *testing.T) {
	s := New(Options{Key: "k"})
	defer s.Close()
	s.Enqueue(
		Behaviour{Text: "a b", Usage: Usage{Prompt: 3, Candidates: 2, Thoughts: 1}},
		Behaviour{Text: "a b c", Thought: "hm", Calls: []FunctionCall{{Name: "f"}}, Usage: Usage{Prompt: 3, Candidates: 2}},
		Behaviour{Status: 429},
		Behaviour{Text: "x y", StreamError: "UNAVAILABLE"},
	)
	tests := []struct {
		name, path string
		hdr        []string
		status     int
		check      func(string) bool
	}{
		{"bad key", "/v1beta/models/m:generateContent", []string{"x-goog-api-key", "no"}, 400,
			func(b string) bool { return strings.Contains(b, "API_KEY_INVALID") }},
		{"json", "/v1beta/models/m:generateContent", []string{"x-goog-api-key", "k"}, 200, func(b string) bool {
			return gjson.Get(b, "candidates.0.content.parts.0.text").Str == "a b" && gjson.Get(b, "usageMetadata.totalTokenCount").Int() == 6 &&
				gjson.Get(b, "candidates.0.finishReason").Str == "STOP"
		}},
		{"stream", "/v1beta/models/m:streamGenerateContent?alt=sse", []string{"x-goog-api-key", "k"}, 200, func(b string) bool {
			ev := strings.Split(strings.TrimSpace(b), "\r\n\r\n")
			return len(ev) == 5 && strings.Contains(ev[0], `"thought":true`) && strings.Contains(ev[4], `"functionCall"`) && strings.Contains(ev[4], `"STOP"`)
		}},
		{"quota", "/v1beta/models/m:generateContent", []string{"x-goog-api-key", "k"}, 429,
			func(b string) bool { return gjson.Get(b, "error.status").Str == "RESOURCE_EXHAUSTED" }},
		{"stream error", "/v1beta/models/m:streamGenerateContent?alt=sse", []string{"x-goog-api-key", "k"}, 200, func(b string) bool {
			ev := strings.Split(strings.TrimSpace(b), "\r\n\r\n")
			return len(ev) == 2 && strings.Contains(ev[1], `"UNAVAILABLE"`)
		}},
		{"stream without alt", "/v1beta/models/m:streamGenerateContent", []string{"x-goog-api-key", "k"}, 400, func(string) bool { return true }},
		{"unknown path", "/v1/chat/completions", nil, 404, func(string) bool { return true }},
	}
	for _, tt := range tests {
		status, b, _ := post(t, s.URL(), tt.path, tt.hdr...)
		if status != tt.status || !tt.check(b) {
			t.Errorf("%s: status %d body %s", tt.name, status, b)
		}
	}
	if n := len(s.Requests()); n != len(tests) {
		t.Errorf("%d requests recorded, want %d", n, len(tests))
	}
}

func TestVertexPath(t *testing.T) {
	s := New(Options{Bearer: "tok"})
	defer s.Close()
	path := "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
	if status, b, _ := post(t, s.URL(), path); status != 401 {
		t.Errorf("without token: %d %s", status, b)
	}
	if status, b, _ := post(t, s.URL(), path, "authorization", "Bearer tok"); status != 200 {
		t.Errorf("with token: %d %s", status, b)
	}
	r := s.Requests()[1]
	if r.Project != "p1" || r.Location != "us-central1" || r.Model != "gemini-2.5-pro" || r.Action != "generateContent" {
		t.Errorf("parsed %+v", r)
	}
}

func TestCut(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	s.Enqueue(Behaviour{Text: "a b c d", CutAfter: 2})
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/v1beta/models/m:streamGenerateContent?alt=sse", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil || strings.Contains(string(b), "STOP") {
		t.Errorf("cut stream read %q, err %v", b, err)
	}
}
