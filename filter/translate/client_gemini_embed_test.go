package translate

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// TestGeminiEmbedRequestGolden: each embed_*.in.json, a Gemini client's
// embedContent or batchEmbedContents body (batch when its name says so),
// becomes the OpenAI embeddings body in its .out.json, which the embeddings
// translators take; each embed_bad_*.in.json is refused with the Google
// error in its .out.json.
func TestGeminiEmbedRequestGolden(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join(gcDir, "embed_*.in.json"))
	if len(ins) == 0 {
		t.Fatal("no goldens")
	}
	be := &config.RBackend{Name: "oai", Schema: "openai"}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		if strings.HasPrefix(name, "embed_resp_") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			method := GeminiEmbed
			if strings.Contains(name, "batch") || strings.Contains(name, "dims") || strings.Contains(name, "empty") {
				method = GeminiBatchEmbed
			}
			out, err := GeminiEmbedToOpenAI(readFile(t, in), method, "text-embedding-3-small", be)
			if strings.HasPrefix(name, "embed_bad_") {
				if err == nil {
					t.Fatalf("accepted:\n%s", out)
				}
				if e := apierr.From(err); e.Status != 400 {
					t.Errorf("status %d", e.Status)
				}
				golden(t, filepath.Join(gcDir, name+".out.json"), indentJSON(t, GeminiError(apierr.From(err))))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(gcDir, name+".out.json"), indentJSON(t, out))
			if _, err := readEmbeddings(out); err != nil {
				t.Errorf("the embeddings translators refuse it: %v", err)
			}
		})
	}
}

// TestGeminiEmbedAnswerGolden: OpenAI embeddings answers (embed_resp_*),
// split at every byte, become embedContent's answer and, for the batch
// ones, batchEmbedContents'; an error answer Google's error.
func TestGeminiEmbedAnswerGolden(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join(gcDir, "embed_resp_*.in.json"))
	if len(ins) == 0 {
		t.Fatal("no goldens")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			status, method := 200, GeminiEmbed
			if strings.Contains(name, "err_429") {
				status = 429
			}
			if strings.Contains(name, "batch") {
				method = GeminiBatchEmbed
			}
			got := splitEverywhere(t, readFile(t, in), func() Body { return GeminiEmbedResponse(method, status) })
			golden(t, filepath.Join(gcDir, name+".out.json"), indentJSON(t, got))
		})
	}
}

// TestGeminiEmbedAnswerBad: answers that cannot be Gemini's are a 502 in
// Google's shape, never a silent success.
func TestGeminiEmbedAnswerBad(t *testing.T) {
	for name, c := range map[string]struct {
		method, body string
	}{
		"two for one": {GeminiEmbed, `{"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[2]}]}`},
		"none":        {GeminiEmbed, `{"data":[]}`},
		"bad index":   {GeminiBatchEmbed, `{"data":[{"index":3,"embedding":[1]}]}`},
		"dup index":   {GeminiBatchEmbed, `{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}`},
		"base64":      {GeminiEmbed, `{"data":[{"index":0,"embedding":"AACAPw=="}]}`},
		"not json":    {GeminiEmbed, `{"data":`},
	} {
		t.Run(name, func(t *testing.T) {
			got := feedBody(GeminiEmbedResponse(c.method, 200), []byte(c.body))
			if !strings.Contains(string(got), `"code":502`) || !strings.Contains(string(got), `"status":"UNAVAILABLE"`) {
				t.Errorf("got %s", got)
			}
		})
	}
}

// TestGeminiEmbedThroughBedrock: the converted body is what the Bedrock
// Titan translator embeds (one input a call), and its answer comes back
// through both conversions in Gemini's shape with Titan's token count.
func TestGeminiEmbedThroughBedrock(t *testing.T) {
	ob, err := GeminiEmbedToOpenAI([]byte(`{"content":{"parts":[{"text":"hello"}]},"outputDimensionality":256}`),
		GeminiEmbed, "titan", &config.RBackend{Name: "br", Schema: "bedrock"})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSet(SetOptions{})
	be := &config.RBackend{Name: "br", Schema: "bedrock", Credential: "AKID:secret", Host: "h", Port: 443, Bedrock: config.BedrockOptions{Region: "us-east-1"}}
	up, call, err := s.Embeddings(&Request{Body: ob, Backend: be, Model: "amazon.titan-embed-text-v2:0"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"inputText":"hello","dimensions":256}`; string(up.Body) != want {
		t.Errorf("Titan body %s, want %s", up.Body, want)
	}
	ans := call.Response(&Response{Status: 200, Model: "amazon.titan-embed-text-v2:0", Header: func(string) string { return "" }})
	hub := feedBody(ans.Body, []byte(`{"embedding":[0.5,0.25],"inputTextTokenCount":2}`))
	got := feedBody(GeminiEmbedResponse(GeminiEmbed, 200), hub)
	if want := `{"embedding":{"values":[0.5,0.25]},"usageMetadata":{"promptTokenCount":2,"totalTokenCount":2}}`; string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
