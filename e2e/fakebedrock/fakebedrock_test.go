package fakebedrock

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
)

// send has llmproc's bedrock translator build and sign the request, and
// posts it to the fake.
func send(t *testing.T, s *Server, stream bool, credential string) *http.Response {
	t.Helper()
	host, port, _ := strings.Cut(s.Addr(), ":")
	var p uint32
	for _, c := range port {
		p = p*10 + uint32(c-'0')
	}
	be := &config.RBackend{Name: "b", Schema: "bedrock", Host: host, Port: p, Credential: credential,
		Bedrock: config.BedrockOptions{Region: "us-east-1"}}
	tr, err := translate.For("bedrock")
	if err != nil {
		t.Fatal(err)
	}
	up, err := tr.Request(&translate.Request{Body: []byte(`{"model":"x","messages":[{"role":"user","content":"hi"}]}`),
		Backend: be, Model: "anthropic.claude-3-haiku-20240307-v1:0", Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL()+up.Path, bytes.NewReader(up.Body))
	if err != nil {
		t.Fatal(err)
	}
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

func TestConverse(t *testing.T) {
	s := New(Options{AccessKeyID: "AKIDTEST", Secret: "secret"})
	defer s.Close()
	s.Enqueue(Behaviour{Content: "hi there", Usage: Usage{Input: 3, Output: 2, CacheRead: 10}})
	resp := send(t, s, false, "AKIDTEST:secret")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if got := gjson.GetBytes(body, "output.message.content.0.text").Str; got != "hi there" {
		t.Errorf("text %q in %s", got, body)
	}
	if got := gjson.GetBytes(body, "usage.cacheReadInputTokens").Int(); got != 10 {
		t.Errorf("usage %s", gjson.GetBytes(body, "usage").Raw)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].ModelID != "anthropic.claude-3-haiku-20240307-v1:0" || reqs[0].Stream {
		t.Errorf("requests %+v", reqs)
	}
}

func TestConverseStream(t *testing.T) {
	s := New(Options{Secret: "secret"})
	defer s.Close()
	s.Enqueue(Behaviour{Content: "a b", Tool: &ToolUse{ID: "t1", Name: "f", Input: `{"x":1}`}})
	resp := send(t, s, true, "AKIDTEST:secret")
	if ct := resp.Header.Get("content-type"); ct != "application/vnd.amazon.eventstream" {
		t.Fatalf("content-type %q", ct)
	}
	dec := eventstream.NewDecoder()
	var events []string
	for {
		m, err := dec.Decode(resp.Body, nil)
		if err != nil {
			break
		}
		events = append(events, m.Headers.Get(":event-type").String())
	}
	want := "messageStart contentBlockDelta contentBlockDelta contentBlockStop contentBlockStart contentBlockDelta contentBlockDelta contentBlockStop messageStop metadata"
	if got := strings.Join(events, " "); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
}

func TestSignatureChecked(t *testing.T) {
	s := New(Options{Secret: "right"})
	defer s.Close()
	resp := send(t, s, false, "AKIDTEST:wrong")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("x-amzn-ErrorType"), "InvalidSignatureException") {
		t.Errorf("status %d %s %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/model/m/converse", strings.NewReader(`{"messages":[]}`))
	req.Header.Set("authorization", "Bearer nope")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 403 {
		t.Errorf("unsigned request: status %d", resp2.StatusCode)
	}
}

func TestErrorBehaviour(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	s.Enqueue(Behaviour{Status: 429, ErrorMessage: "Too many requests"})
	resp := send(t, s, false, "AKIDTEST:secret")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || gjson.GetBytes(body, "message").Str != "Too many requests" ||
		!strings.HasPrefix(resp.Header.Get("x-amzn-ErrorType"), "ThrottlingException:") {
		t.Errorf("status %d %s %s", resp.StatusCode, resp.Header, body)
	}
}
