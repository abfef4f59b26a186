package fakegemini

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
)

// TestEmbed: llmproc's batchEmbedContents (AI Studio) and predict (Vertex)
// requests are answered with fake.Vector of each text, outputDimensionality
// numbers long, AI Studio's usage only when the behaviour sets it and
// Vertex's token_count the words of each input; llmproc's translation reads
// the answers back into those vectors. A wrong per-request model is a 400.
func TestEmbed(t *testing.T) {
	s := New(Options{Key: "k"})
	defer s.Close()
	v := New(Options{Bearer: "tok"})
	defer v.Close()
	set := translate.NewSet(translate.SetOptions{})
	defer set.Close()
	s.Enqueue(Behaviour{Usage: Usage{Prompt: 9}}, Behaviour{})
	for _, c := range []struct {
		srv       *Server
		be        *config.RBackend
		model     string
		tokens    int64
		estimated bool
	}{
		{s, &config.RBackend{Name: "g", Schema: "gemini", Credential: "k"}, "gemini-embedding-001", 9, false},
		{s, &config.RBackend{Name: "g", Schema: "gemini", Credential: "k"}, "gemini-embedding-001", 5, true}, // 17 bytes of text
		{v, &config.RBackend{Name: "v", Schema: "vertex", Credential: "tok", Vertex: config.VertexOptions{Project: "p", Region: "r"}}, "text-embedding-005", 4, false},
	} {
		texts := []string{"one two three", "four"}
		up, call, err := set.Embeddings(&translate.Request{Body: []byte(`{"model":"m","input":["one two three","four"],"dimensions":5}`),
			Backend: c.be, Model: c.model})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, c.srv.URL()+up.Path, bytes.NewReader(up.Body))
		for _, kv := range up.SetHeaders {
			req.Header.Set(kv[0], kv[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.be.Schema, resp.StatusCode, body)
		}
		out, _ := call.Response(&translate.Response{Status: 200, Model: c.model}).Body.Chunk(body, true)
		data := gjson.GetBytes(out, "data").Array()
		for i, text := range texts {
			want := fake.Vector(text, 5)
			got := data[i].Get("embedding").Array()
			if len(got) != 5 {
				t.Fatalf("%s: %s", c.be.Schema, out)
			}
			for j := range want {
				if got[j].Float() != want[j] {
					t.Errorf("%s [%d][%d] = %v, want %v", c.be.Schema, i, j, got[j].Float(), want[j])
				}
			}
		}
		if gjson.GetBytes(out, "usage.prompt_tokens").Int() != c.tokens || call.UsageEstimated() != c.estimated {
			t.Errorf("%s usage: %s (estimated %v)", c.be.Schema, out, call.UsageEstimated())
		}
	}
	code, b, _ := postBody(t, s.URL(), "/v1beta/models/gemini-embedding-001:batchEmbedContents",
		`{"requests":[{"model":"models/other","content":{"parts":[{"text":"x"}]}}]}`, "x-goog-api-key", "k")
	if code != 400 || gjson.Get(b, "error.status").Str != "INVALID_ARGUMENT" {
		t.Errorf("wrong model: %d %s", code, b)
	}
}

func postBody(t *testing.T, url, path, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader([]byte(body)))
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
