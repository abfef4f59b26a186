package fakeanthropic

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestVertex: Claude on Vertex's paths, with Vertex's refusals.
func TestVertex(t *testing.T) {
	s := New(Options{VertexToken: "tok"})
	defer s.Close()
	const base = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/"
	post := func(path, auth, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(body))
		req.Header.Set("authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const msg = `"anthropic_version":"vertex-2023-10-16","max_tokens":10,"messages":[{"role":"user","content":"hi"}]`
	for _, tt := range []struct {
		path, auth, body string
		status           int
		check            func(string) bool
	}{
		{base + "claude-x@1:rawPredict", "Bearer tok", "{" + msg + "}", 200, func(b string) bool { return gjson.Get(b, "model").Str == "claude-x@1" }},
		{base + "claude-x@1:streamRawPredict", "Bearer tok", `{"stream":true,` + msg + "}", 200, func(b string) bool { return strings.HasPrefix(b, "event: message_start") }},
		{base + "count-tokens:rawPredict", "Bearer tok", `{"model":"claude-x@1",` + msg + "}", 200, func(b string) bool { return gjson.Get(b, "input_tokens").Int() > 0 }},
		{base + "claude-x@1:rawPredict", "Bearer nope", "{" + msg + "}", 401, func(b string) bool { return gjson.Get(b, "error.status").Str == "UNAUTHENTICATED" }},
		{base + "claude-x@1:rawPredict", "Bearer tok", `{"model":"claude-x@1",` + msg + "}", 400, func(b string) bool { return strings.Contains(b, "Extra inputs") }},
		{base + "claude-x@1:rawPredict", "Bearer tok", `{"max_tokens":10,"messages":[]}`, 400, func(b string) bool { return strings.Contains(b, "anthropic_version") }},
		{base + "claude-x@1:streamRawPredict", "Bearer tok", "{" + msg + "}", 400, func(b string) bool { return strings.Contains(b, "stream") }},
	} {
		status, body := post(tt.path, tt.auth, tt.body)
		if status != tt.status || !tt.check(body) {
			t.Errorf("%s %s: %d %s", tt.path, tt.body, status, body)
		}
	}
}
