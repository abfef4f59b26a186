package fakebedrock

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
)

// TestEmbed: llmproc's signed InvokeModel requests to Titan and Cohere
// (v3, and v4 with embedding_types) are answered with fake.Vector of each
// text and the word count as tokens, and llmproc's translation reads the
// answers back into those vectors; a malformed body and an error behaviour
// are AWS errors.
func TestEmbed(t *testing.T) {
	s := New(Options{AccessKeyID: "AKIDTEST", Secret: "secret", HostIsAddr: true})
	defer s.Close()
	host, port, _ := strings.Cut(s.Addr(), ":")
	var p uint32
	for _, c := range port {
		p = p*10 + uint32(c-'0')
	}
	be := &config.RBackend{Name: "b", Schema: "bedrock", Host: host, Port: p, Credential: "AKIDTEST:secret",
		Bedrock: config.BedrockOptions{Region: "us-east-1"}}
	set := translate.NewSet(translate.SetOptions{})
	defer set.Close()
	for _, c := range []struct {
		model, body string
		texts       []string
		dims        int
		tokens      string
	}{
		{"amazon.titan-embed-text-v2:0", `{"model":"m","input":"one two three","dimensions":8}`, []string{"one two three"}, 8, "3"},
		{"cohere.embed-english-v3", `{"model":"m","input":["a b","c"]}`, []string{"a b", "c"}, 0, "3"},
		{"cohere.embed-v4:0", `{"model":"m","input":["x y z"],"dimensions":6}`, []string{"x y z"}, 6, "3"},
	} {
		up, call, err := set.Embeddings(&translate.Request{Body: []byte(c.body), Backend: be, Model: c.model})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, s.URL()+up.Path, bytes.NewReader(up.Body))
		for _, kv := range up.SetHeaders {
			req.Header.Set(kv[0], kv[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("x-amzn-bedrock-input-token-count") != c.tokens {
			t.Fatalf("%s: %d %v %s", c.model, resp.StatusCode, resp.Header, body)
		}
		ans := call.Response(&translate.Response{Status: 200, Model: c.model, Header: func(n string) string { return resp.Header.Get(n) }})
		out, _ := ans.Body.Chunk(body, true)
		for i, text := range c.texts {
			want := fake.Vector(text, c.dims)
			got := gjson.GetBytes(out, "data."+string(rune('0'+i))+".embedding").Array()
			if len(got) != len(want) {
				t.Fatalf("%s: %s", c.model, out)
			}
			for j := range want {
				if got[j].Float() != want[j] {
					t.Errorf("%s [%d][%d] = %v, want %v", c.model, i, j, got[j].Float(), want[j])
				}
			}
		}
		if gjson.GetBytes(out, "usage.prompt_tokens").String() != c.tokens || call.UsageEstimated() {
			t.Errorf("%s usage: %s", c.model, out)
		}
	}
	if n := len(s.Requests()); n != 3 || !strings.HasSuffix(s.Requests()[0].Path, "/invoke") {
		t.Errorf("%d requests", n)
	}
}
