package fakeopenai

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
)

// TestEmbeddings: one fake.Vector per input — strings, one token array, or
// several — dimensions long when asked, as base64 float32s when asked.
func TestEmbeddings(t *testing.T) {
	s := New(Options{Default: Behaviour{Usage: Usage{Prompt: 3}}})
	defer s.Close()
	for _, c := range []struct {
		body  string
		texts []string
		dims  int
		b64   bool
	}{
		{`{"model":"e","input":"hello"}`, []string{"hello"}, 0, false},
		{`{"model":"e","input":["a","b"],"dimensions":6,"encoding_format":"base64"}`, []string{"a", "b"}, 6, true},
		{`{"model":"e","input":[1,2,3]}`, []string{"[1,2,3]"}, 0, false},
		{`{"model":"e","input":[[1,2],[3]],"encoding_format":"float"}`, []string{"[1,2]", "[3]"}, 0, false},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/v1/embeddings", strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer sk-test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		data := gjson.GetBytes(b, "data").Array()
		if resp.StatusCode != 200 || len(data) != len(c.texts) || gjson.GetBytes(b, "usage.prompt_tokens").Int() != 3 {
			t.Fatalf("%s: %d %s", c.body, resp.StatusCode, b)
		}
		for i, text := range c.texts {
			want := fake.Vector(text, c.dims)
			e := data[i].Get("embedding")
			if c.b64 {
				if e.Str != fake.Base64Vector(want) {
					t.Errorf("%s [%d]: %s", c.body, i, e.Raw)
				}
				continue
			}
			for j, x := range e.Array() {
				if x.Float() != want[j] || len(e.Array()) != len(want) {
					t.Errorf("%s [%d]: %s, want %v", c.body, i, e.Raw, want)
					break
				}
			}
		}
	}
}
