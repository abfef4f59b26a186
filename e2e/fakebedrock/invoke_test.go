package fakebedrock

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
)

// sendInvoke has llmproc's translator build and sign an Anthropic client's
// native request (body as given), and posts it to the fake.
func sendInvoke(t *testing.T, s *Server, body string, stream, count bool) *http.Response {
	t.Helper()
	host, port, _ := strings.Cut(s.Addr(), ":")
	var p uint32
	for _, c := range port {
		p = p*10 + uint32(c-'0')
	}
	be := &config.RBackend{Name: "b", Schema: "bedrock", Host: host, Port: p, Credential: "AKIDTEST:secret",
		Bedrock: config.BedrockOptions{Region: "us-east-1", AnthropicAPI: "auto"}}
	set := translate.NewSet(translate.SetOptions{})
	defer set.Close()
	r := &translate.Request{Body: []byte(body), Backend: be, Model: "anthropic.claude-haiku-4-5-20251001-v1:0", Stream: stream}
	var up *translate.Upstream
	var err error
	if count {
		up, err = set.CountTokensRequest(r, "", "")
	} else {
		up, err = set.AnthropicNativeRequest(r, "2023-06-01", "interleaved-thinking-2025-05-14")
	}
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
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const invokeBody = `{"model":"claude-haiku-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`

// TestInvoke: InvokeModel answers Anthropic's message; the stream answers
// chunk events each carrying one Anthropic event base64, the last with the
// invocation metrics; CountTokens counts the InvokeModel body.
func TestInvoke(t *testing.T) {
	s := New(Options{AccessKeyID: "AKIDTEST", Secret: "secret"})
	defer s.Close()
	s.Enqueue(Behaviour{Reasoning: "hmm", Content: "hi there", Usage: Usage{Input: 3, Output: 2, CacheRead: 10}},
		Behaviour{Tool: &ToolUse{ID: "toolu_1", Name: "f", Input: `{"a":1}`}, Usage: Usage{Input: 3, Output: 2}})
	resp := sendInvoke(t, s, strings.Replace(invokeBody, `"stream":true,`, "", 1), false, false)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || gjson.GetBytes(body, "content.0.type").Str != "thinking" || gjson.GetBytes(body, "content.1.text").Str != "hi there" ||
		gjson.GetBytes(body, "usage.cache_read_input_tokens").Int() != 10 {
		t.Fatalf("invoke: %d %s", resp.StatusCode, body)
	}
	if r := s.Requests()[0]; r.Op != "invoke" || r.ModelID != "anthropic.claude-haiku-4-5-20251001-v1:0" {
		t.Errorf("recorded %+v", r)
	}

	resp = sendInvoke(t, s, invokeBody, true, false)
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("content-type") != "application/vnd.amazon.eventstream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, raw)
	}
	dec := eventstream.NewDecoder()
	rd := bytes.NewReader(raw)
	var types []string
	var last gjson.Result
	for rd.Len() > 0 {
		m, err := dec.Decode(rd, nil)
		if err != nil {
			t.Fatal(err)
		}
		if h := m.Headers.Get(":event-type"); h == nil || h.String() != "chunk" {
			t.Fatalf("frame %v", m.Headers)
		}
		b, err := base64.StdEncoding.DecodeString(gjson.GetBytes(m.Payload, "bytes").Str)
		if err != nil {
			t.Fatal(err)
		}
		last = gjson.ParseBytes(b)
		types = append(types, last.Get("type").Str)
	}
	if len(types) < 6 || types[0] != "message_start" || last.Get("type").Str != "message_stop" ||
		!last.Get("amazon-bedrock-invocationMetrics.inputTokenCount").Exists() || !strings.Contains(strings.Join(types, ","), "content_block_delta") {
		t.Errorf("events %v, last %s", types, last.Raw)
	}

	resp = sendInvoke(t, s, `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"count me"}]}`, false, true)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || gjson.GetBytes(body, "inputTokens").Int() == 0 {
		t.Errorf("count: %d %s", resp.StatusCode, body)
	}
}

// TestInvokeRefusals: Bedrock's refusals of a body it does not take.
func TestInvokeRefusals(t *testing.T) {
	for _, body := range []string{`{"max_tokens":1,"messages":[]}`, `{"anthropic_version":"bedrock-2023-05-31","model":"x","max_tokens":1,"messages":[]}`,
		`{"anthropic_version":"bedrock-2023-05-31","stream":true,"max_tokens":1,"messages":[]}`, `{"anthropic_version":"bedrock-2023-05-31","messages":[]}`} {
		if msg := invokeError([]byte(body)); msg == "" {
			t.Errorf("%s was accepted", body)
		}
	}
	if msg := invokeError([]byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":1,"messages":[]}`)); msg != "" {
		t.Error(msg)
	}
}
