package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// wantGeminiValues checks a Gemini embedding ({values}) is fake.Vector of
// text, dims numbers long.
func wantGeminiValues(t *testing.T, emb gjson.Result, text string, dims int) {
	t.Helper()
	want, got := fake.Vector(text, dims), emb.Get("values").Array()
	if len(got) != len(want) {
		t.Fatalf("values %s, want %v", emb.Raw, want)
	}
	for i := range want {
		if got[i].Float() != want[i] {
			t.Errorf("values[%d] = %v, want %v", i, got[i].Float(), want[i])
		}
	}
}

// TestGeminiClientEmbedTranslated: a Gemini client's embedContent and
// batchEmbedContents reach an OpenAI backend as POST /v1/embeddings and
// Bedrock Titan as InvokeModel, and come back in Gemini's shape with
// usageMetadata; usage is priced into the access log and /metrics as for
// OpenAI-form embeddings; a non-text part and a Titan batch of two are
// refused in Google's shape naming the backend.
func TestGeminiClientEmbedTranslated(t *testing.T) {
	e := startEmbeddings(t)
	e.openai.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 7}}
	})
	key := []string{"x-goog-api-key", "AIza-client"}

	r := e.postPath(t, "/v1beta/models/text-embedding-3-small:embedContent",
		`{"content":{"parts":[{"text":"hello"}]},"taskType":"RETRIEVAL_QUERY","outputDimensionality":8}`, key...)
	if r.status != 200 || r.header.Get("x-llmproc-backend") != "openai" || !strings.HasPrefix(r.header.Get("content-type"), "application/json") {
		t.Fatalf("%d %v %s", r.status, r.header, r.body)
	}
	wantGeminiValues(t, gjson.GetBytes(r.body, "embedding"), "hello", 8)
	if gjson.GetBytes(r.body, "usageMetadata.promptTokenCount").Int() != 7 {
		t.Errorf("usageMetadata: %s", r.body)
	}
	got := e.openai.Requests()[0]
	if got.Path != "/v1/embeddings" || string(got.Body) != `{"model":"text-embedding-3-small","input":"hello","dimensions":8}` ||
		got.Header.Get("authorization") != "Bearer sk-openai" || got.Header.Get("x-goog-api-key") != "" {
		t.Errorf("OpenAI got %s %s %v", got.Path, got.Body, got.Header)
	}
	line := gjson.Parse(accessLine(t, e.env, r.header.Get("x-llmproc-request-id")))
	if line.Get("prompt_tokens").Int() != 7 || line.Get("usage").Str != "known" || line.Get("client").Str != "gemini" || line.Get("cost_usd").Float() <= 0 {
		t.Errorf("access log %s", line.Raw)
	}

	r = e.postPath(t, "/v1beta/models/text-embedding-3-small:batchEmbedContents",
		`{"requests":[{"model":"models/text-embedding-3-small","content":{"parts":[{"text":"one"}]}},{"model":"models/text-embedding-3-small","content":{"parts":[{"text":"two"}]}}]}`, key...)
	if r.status != 200 || gjson.GetBytes(r.body, "embeddings.#").Int() != 2 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	wantGeminiValues(t, gjson.GetBytes(r.body, "embeddings.0"), "one", 0)
	wantGeminiValues(t, gjson.GetBytes(r.body, "embeddings.1"), "two", 0)

	r = e.postPath(t, "/v1beta/models/titan-embed:embedContent", `{"content":{"parts":[{"text":"titan text"}]},"outputDimensionality":256}`, key...)
	if r.status != 200 || r.header.Get("x-llmproc-backend") != "bedrock" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	wantGeminiValues(t, gjson.GetBytes(r.body, "embedding"), "titan text", 256)
	br := e.bedrock.Requests()[0]
	if br.Path != "/model/amazon.titan-embed-text-v2%3A0/invoke" || string(br.Body) != `{"inputText":"titan text","dimensions":256}` {
		t.Errorf("Bedrock got %s %s", br.Path, br.Body)
	}
	tokens := gjson.GetBytes(r.body, "usageMetadata.promptTokenCount").Int()
	line = gjson.Parse(accessLine(t, e.env, r.header.Get("x-llmproc-request-id")))
	if tokens <= 0 || line.Get("prompt_tokens").Int() != tokens || line.Get("usage").Str != "known" {
		t.Errorf("Titan usage %d; access log %s", tokens, line.Raw)
	}
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["gen_ai_client_token_usage"], map[string]string{"gen_ai_operation_name": "embeddings", "gen_ai_token_type": "input"}) == float64(7+7+tokens)
	})
	if got, want := sum(m["llmproc_cost_usd_total"], map[string]string{"backend": "bedrock"}), float64(tokens)*0.20/1e6; fmt.Sprintf("%.15f", got) != fmt.Sprintf("%.15f", want) {
		t.Errorf("Bedrock cost %v, want %v", got, want)
	}

	for _, c := range []struct{ path, body, backend string }{
		{"/v1beta/models/text-embedding-3-small:embedContent", `{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"AA=="}}]}}`, `backend "openai"`},
		{"/v1beta/models/titan-embed:batchEmbedContents", `{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]}}]}`, `backend "bedrock"`},
		{"/v1beta/models/titan-embed:batchEmbedContents", `{"requests":[{"content":{"parts":[{"text":"a"}]},"outputDimensionality":256},{"content":{"parts":[{"text":"b"}]}}]}`, `backend "bedrock"`},
	} {
		r := e.postPath(t, c.path, c.body, key...)
		if r.status != 400 || gjson.GetBytes(r.body, "error.status").Str != "INVALID_ARGUMENT" || gjson.GetBytes(r.body, "error.code").Int() != 400 ||
			!strings.Contains(gjson.GetBytes(r.body, "error.message").Str, c.backend) {
			t.Errorf("%s: %d %s", c.body, r.status, r.body)
		}
	}
	if n := len(e.bedrock.Requests()); n != 1 {
		t.Errorf("refused requests reached Bedrock: %d requests", n)
	}
}

// TestGenAISDKEmbedContent: @google/genai's embedContent (batchEmbedContents
// on the wire) against an OpenAI backend gets each text's vector back.
func TestGenAISDKEmbedContent(t *testing.T) {
	e := startEmbeddings(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := nodeScript(t, ctx, "genai_embed.mjs", e.URL(), "text-embedding-3-small", "AIza-llmproc-client", "8")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("genai_embed.mjs: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	r := gjson.ParseBytes(out)
	if r.Get("one.#").Int() != 1 || r.Get("two.#").Int() != 2 {
		t.Fatalf("%s", out)
	}
	wantGeminiValues(t, r.Get("one.0"), "hello from genai", 0)
	wantGeminiValues(t, r.Get("two.0"), "first text", 8)
	wantGeminiValues(t, r.Get("two.1"), "second text", 8)
	reqs := e.openai.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/v1/embeddings" || string(reqs[1].Body) != `{"model":"text-embedding-3-small","input":["first text","second text"],"dimensions":8}` {
		t.Errorf("OpenAI got %v", reqs)
	}
}
