package translate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/creds"
	"github.com/llmproc/llmproc/filter/usage"
)

// bedrockAt is the signing clock of every golden test.
var bedrockAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testBedrock() bedrock {
	return bedrock{
		now:   func() time.Time { return bedrockAt },
		newID: func() string { return "chatcmpl-test" },
		chain: &awsChain{load: func(context.Context, string) (aws.CredentialsProvider, error) {
			return nil, errors.New("no default chain in tests")
		}, creds: creds.New[aws.Credentials](creds.Options{})},
		signer: v4.NewSigner(),
	}
}

func testBedrockBackend() *config.RBackend {
	return &config.RBackend{Name: "bedrock-east", Schema: "bedrock", TLS: true,
		Host: "bedrock-runtime.us-east-1.amazonaws.com", Port: 443,
		Credential: "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		Bedrock:    config.BedrockOptions{Region: "us-east-1"}}
}

// bedrockUpstream is what a request golden records besides the body.
type bedrockUpstream struct {
	Path       string      `json:"path"`
	SetHeaders [][2]string `json:"set_headers"`
}

// TestBedrockRequestGolden translates testdata/bedrock/req_<case>.in.json
// and compares the Converse body (indented) with req_<case>.out.json and the
// path and headers with req_<case>.upstream.json (-update rewrites both).
func TestBedrockRequestGolden(t *testing.T) {
	cases := map[string]func(r *Request){
		"basic":                func(r *Request) {},
		"multiturn":            func(r *Request) {},
		"image":                func(r *Request) {},
		"tools":                func(r *Request) { r.Stream = true },
		"tool_choice_required": func(r *Request) {},
		"tool_choice_named":    func(r *Request) {},
		"tool_choice_none":     func(r *Request) {},
		"model_arn": func(r *Request) {
			r.Stream = true
			r.Model = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0"
			r.Backend.BasePath = "/proxy"
			r.Backend.TLS, r.Backend.Host, r.Backend.Port = false, "10.0.0.7", 8080
			r.Backend.Bedrock.Region = "eu-west-1"
			r.Backend.Credential = "ASIAEXAMPLE:secret:FwoGZXIvYXdzEXAMPLETOKEN\n"
		},
		"drop_params":       func(r *Request) { r.Backend.DropParams = []string{"seed", "image_url", "response_format"} },
		"reasoning":         func(r *Request) {},
		"reasoning_history": func(r *Request) { r.Stream = true },
	}
	ins, _ := filepath.Glob(filepath.Join("testdata", "bedrock", "req_*.in.json"))
	if len(ins) != len(cases) {
		t.Errorf("%d request fixtures, %d cases", len(ins), len(cases))
	}
	for _, in := range ins {
		base := strings.TrimSuffix(in, ".in.json")
		name := strings.TrimPrefix(filepath.Base(base), "req_")
		t.Run(name, func(t *testing.T) {
			tweak, ok := cases[name]
			if !ok {
				t.Fatalf("no case for %s", in)
			}
			body := readFile(t, in)
			orig := bytes.Clone(body)
			r := &Request{Body: body, Backend: testBedrockBackend(), ClientModel: gjson.GetBytes(body, "model").Str,
				Model: "anthropic.claude-3-haiku-20240307-v1:0"}
			tweak(r)
			up, err := testBedrock().Request(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, orig) {
				t.Error("the client's body was modified in place")
			}
			if !json.Valid(up.Body) {
				t.Fatalf("invalid Converse body: %s", up.Body)
			}
			var ind bytes.Buffer
			if err := json.Indent(&ind, up.Body, "", "  "); err != nil {
				t.Fatal(err)
			}
			ind.WriteByte('\n')
			golden(t, base+".out.json", ind.Bytes())
			js, _ := json.MarshalIndent(bedrockUpstream{Path: up.Path, SetHeaders: up.SetHeaders}, "", "  ")
			golden(t, base+".upstream.json", append(js, '\n'))
			checkSigned(t, r, up)
		})
	}
}

// checkSigned states the signing rules directly, so -update cannot bless a
// wrong signature shape.
func checkSigned(t *testing.T, r *Request, up *Upstream) {
	t.Helper()
	h := map[string]string{}
	for _, kv := range up.SetHeaders {
		if _, dup := h[kv[0]]; dup {
			t.Errorf("header %s set twice", kv[0])
		}
		h[kv[0]] = kv[1]
	}
	op := "/converse"
	if r.Stream {
		op = "/converse-stream"
	}
	if want := r.Backend.BasePath + "/model/" + awsEscape(r.Model) + op; up.Path != want {
		t.Errorf("path %q, want %q", up.Path, want)
	}
	if strings.ContainsAny(strings.TrimPrefix(up.Path, r.Backend.BasePath+"/model/"), ":") {
		t.Errorf("model id not escaped in %q", up.Path)
	}
	akid, _, _ := strings.Cut(strings.TrimSpace(r.Backend.Credential), ":")
	scope := "Credential=" + akid + "/" + bedrockAt.Format("20060102") + "/" + r.Backend.Bedrock.Region + "/bedrock/aws4_request"
	auth := h["authorization"]
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 "+scope+", SignedHeaders=") || !strings.Contains(auth, ", Signature=") {
		t.Errorf("authorization %q, want AWS4-HMAC-SHA256 %s, SignedHeaders=…, Signature=…", auth, scope)
	}
	if h["x-amz-date"] != bedrockAt.Format("20060102T150405Z") {
		t.Errorf("x-amz-date %q", h["x-amz-date"])
	}
	parts := strings.SplitN(strings.TrimSpace(r.Backend.Credential), ":", 3)
	if len(parts) == 3 != (h["x-amz-security-token"] != "") {
		t.Errorf("x-amz-security-token %q for credential with %d parts", h["x-amz-security-token"], len(parts))
	}
	if _, ok := h["content-type"]; ok {
		t.Error("content-type set by the translator; the upstream role sets it for every schema")
	}
}

// TestBedrockSignatureVerifies re-derives the signature the way a server
// does, from what arrives on the wire: the method, the escaped path, the
// Host (the backend's authority) and the signed headers, and the body.
func TestBedrockSignatureVerifies(t *testing.T) {
	be := testBedrockBackend()
	be.TLS, be.Port = false, 8443
	r := &Request{Body: []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`), Backend: be, Model: "anthropic.claude-3-haiku-20240307-v1:0"}
	up, err := testBedrock().Request(r)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+be.Authority()+up.Path, bytes.NewReader(up.Body))
	if err != nil {
		t.Fatal(err)
	}
	var auth string
	for _, kv := range up.SetHeaders {
		req.Header.Set(kv[0], kv[1])
		if kv[0] == "authorization" {
			auth = kv[1]
		}
	}
	ok, err := verifySigV4(req, up.Body, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1")
	if err != nil || !ok {
		t.Fatalf("signature does not verify (%v): %s", err, auth)
	}
	tampered := bytes.Replace(up.Body, []byte("hi"), []byte("ho"), 1)
	if ok, _ := verifySigV4(req, tampered, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1"); ok {
		t.Error("signature verifies over a different body")
	}
}

func TestBedrockRequestErrors(t *testing.T) {
	user := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body string
		drop       []string
		status     int
		param      string
	}{
		{"seed", `{"seed":1,` + user + `}`, nil, 400, "seed"},
		{"n", `{"n":2,` + user + `}`, nil, 400, "n"},
		{"json_schema", `{"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}},` + user + `}`, nil, 400, "response_format"},
		{"json_object", `{"response_format":{"type":"json_object"},` + user + `}`, nil, 400, "response_format"},
		{"logprobs", `{"logprobs":true,` + user + `}`, nil, 400, "logprobs"},
		{"frequency_penalty", `{"frequency_penalty":0.5,` + user + `}`, nil, 400, "frequency_penalty"},
		{"parallel_tool_calls false", `{"parallel_tool_calls":false,` + user + `}`, nil, 400, "parallel_tool_calls"},
		{"http image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, nil, 400, "messages[0].content[0].image_url"},
		{"not base64 data url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, nil, 400, "messages[0].content[0].image_url"},
		{"bmp", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]}`, nil, 400, "messages[0].content[0].image_url"},
		{"audio", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}`, nil, 400, "input_audio"},
		{"tool_choice none with tool history", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"1"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}`, nil, 400, "tool_choice"},
		{"arguments not an object", `{"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, nil, 400, "messages[0].tool_calls[0].function.arguments"},
		{"unknown role", `{"messages":[{"role":"robot","content":"hi"}]}`, nil, 400, "messages[0].role"},
		{"bad max_tokens", `{"max_tokens":-1,` + user + `}`, nil, 400, "max_tokens"},
		{"bad stop", `{"stop":[1],` + user + `}`, nil, 400, "stop"},
		{"non-function tool", `{"tools":[{"type":"web_search"}],` + user + `}`, nil, 400, "tools[0].type"},
		{"invalid json", `{"messages":`, nil, 400, ""},
		{"dropped seed and n", `{"seed":1,"n":3,` + user + `}`, []string{"seed", "n"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := testBedrockBackend()
			be.DropParams = tt.drop
			_, err := testBedrock().Request(&Request{Body: []byte(tt.body), Backend: be, Model: "m"})
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var e *apierr.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want an *apierr.Error", err)
			}
			if e.Status != tt.status || e.Param != tt.param {
				t.Errorf("status %d param %q, want %d %q (%s)", e.Status, e.Param, tt.status, tt.param, e.Message)
			}
		})
	}
}

func TestBedrockCredentials(t *testing.T) {
	t.Run("bad static credential", func(t *testing.T) {
		be := testBedrockBackend()
		be.Credential = "only-a-key"
		_, err := testBedrock().Request(&Request{Body: []byte(`{"messages":[]}`), Backend: be, Model: "m"})
		if e := apierr.From(err); err == nil || e.Status != 500 {
			t.Fatalf("error %v, want a 500", err)
		}
	})
	t.Run("default chain loaded once per backend", func(t *testing.T) {
		loads := 0
		b := testBedrock()
		b.chain = &awsChain{creds: creds.New[aws.Credentials](creds.Options{}), load: func(_ context.Context, region string) (aws.CredentialsProvider, error) {
			loads++ // in the refresh goroutine, before the request's Wait returns
			return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "AKIDCHAIN", SecretAccessKey: "s", CanExpire: true, Expires: time.Now().Add(time.Hour)}, nil
			}), nil
		}}
		t.Cleanup(b.chain.creds.Close)
		be := testBedrockBackend()
		be.Credential = ""
		for range 3 {
			up, err := b.Request(&Request{Body: []byte(`{"messages":[]}`), Backend: be, Model: "m"})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(up.SetHeaders[1][1], "Credential=AKIDCHAIN/") {
				t.Errorf("authorization %q", up.SetHeaders[1][1])
			}
		}
		other := testBedrockBackend()
		other.Name, other.Credential = "other", ""
		if _, err := b.Request(&Request{Body: []byte(`{"messages":[]}`), Backend: other, Model: "m"}); err != nil {
			t.Fatal(err)
		}
		if loads != 2 {
			t.Errorf("default chain loaded %d times, want once per backend (2)", loads)
		}
	})
	t.Run("real default chain from the environment", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
		t.Setenv("AWS_SESSION_TOKEN", "tok")
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		b := testBedrock()
		b.chain = &awsChain{load: loadDefaultChain, creds: creds.New[aws.Credentials](creds.Options{})}
		t.Cleanup(b.chain.creds.Close)
		be := testBedrockBackend()
		be.Credential = ""
		up, err := b.Request(&Request{Body: []byte(`{"messages":[]}`), Backend: be, Model: "m"})
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]string{}
		for _, kv := range up.SetHeaders {
			h[kv[0]] = kv[1]
		}
		if !strings.Contains(h["authorization"], "Credential=AKIDENV/") || h["x-amz-security-token"] != "tok" {
			t.Errorf("headers %v", h)
		}
	})
}

// TestBedrockResponseJSON turns testdata/bedrock/resp_<case>.in.json into
// resp_<case>.out.json, fed whole and split at every byte.
func TestBedrockResponseJSON(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "bedrock", "resp_*.in.json"))
	if len(ins) == 0 {
		t.Fatal("no fixtures")
	}
	for _, in := range ins {
		base := strings.TrimSuffix(in, ".in.json")
		t.Run(filepath.Base(base), func(t *testing.T) {
			tr := testBedrock()
			newBody := func() Body {
				a := tr.Response(&Response{Status: 200, ContentType: "application/json", Model: "anthropic.claude-3-haiku-20240307-v1:0", Reasoning: true})
				if a.Status != 0 || a.ContentType != "application/json" {
					t.Fatalf("answer %+v", a)
				}
				return a.Body
			}
			out := splitEverywhere(t, readFile(t, in), newBody)
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
			golden(t, base+".out.json", append(out, '\n'))
			// The usage llmproc reads back must be Bedrock's, exactly.
			u, ok := usage.FromOpenAI(gjson.GetBytes(out, "usage"))
			in := gjson.GetBytes(readFile(t, in), "usage")
			cr, cw := in.Get("cacheReadInputTokens").Int(), in.Get("cacheWriteInputTokens").Int()
			want := usage.Usage{Input: in.Get("inputTokens").Int() + cr + cw, Output: in.Get("outputTokens").Int(), CachedInput: cr, CacheWrite: cw}
			if !ok || u != want {
				t.Errorf("usage %+v, want %+v", u, want)
			}
		})
	}
}

// encodeFrames builds a binary event stream from a .jsonl description: one
// frame per line ({"event":…,"payload":…} or {"exception":…,"payload":…}),
// or {"cut":n} (drop the last n bytes) or {"flip":n} (corrupt the byte n
// from the end).
func encodeFrames(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Event, Exception string
			Payload          json.RawMessage
			Cut, Flip        int
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch {
		case line.Cut > 0:
			buf.Truncate(buf.Len() - line.Cut)
			continue
		case line.Flip > 0:
			buf.Bytes()[buf.Len()-line.Flip] ^= 0xff
			continue
		}
		var m eventstream.Message
		m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		if line.Exception != "" {
			m.Headers.Set(":message-type", eventstream.StringValue("exception"))
			m.Headers.Set(":exception-type", eventstream.StringValue(line.Exception))
		} else {
			m.Headers.Set(":message-type", eventstream.StringValue("event"))
			m.Headers.Set(":event-type", eventstream.StringValue(line.Event))
		}
		m.Payload = line.Payload
		if err := enc.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestBedrockStreamGolden turns testdata/bedrock/stream_<case>.in.jsonl
// (encoded to event-stream frames) into stream_<case>.out.sse, identically
// for every split of the input into two chunks.
func TestBedrockStreamGolden(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "bedrock", "stream_*.in.jsonl"))
	if len(ins) == 0 {
		t.Fatal("no fixtures")
	}
	for _, in := range ins {
		base := strings.TrimSuffix(in, ".in.jsonl")
		t.Run(filepath.Base(base), func(t *testing.T) {
			tr := testBedrock()
			newBody := func() Body {
				a := tr.Response(&Response{Status: 200, ContentType: eventStreamType, Stream: true, Model: "anthropic.claude-3-haiku-20240307-v1:0", Reasoning: true})
				if a.ContentType != "text/event-stream" || a.Status != 0 {
					t.Fatalf("answer %+v", a)
				}
				return a.Body
			}
			out := splitEverywhere(t, encodeFrames(t, in), newBody)
			golden(t, base+".out.sse", out)
			checkStream(t, out)
		})
	}
}

// checkStream states the OpenAI stream rules: every event is data: JSON or
// [DONE]; the role chunk comes first; [DONE] only after a finish chunk and
// the usage chunk; an error event is last and never followed by [DONE].
func checkStream(t *testing.T, out []byte) {
	t.Helper()
	events := strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n")
	if len(out) == 0 {
		return
	}
	finish, usageSeen := false, false
	for i, ev := range events {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok {
			t.Fatalf("event %d is not a data line: %q", i, ev)
		}
		last := i == len(events)-1
		if data == "[DONE]" {
			if !last || !finish || !usageSeen {
				t.Errorf("[DONE] at %d (last %v) after finish %v usage %v", i, last, finish, usageSeen)
			}
			continue
		}
		v := gjson.Parse(data)
		if !gjson.Valid(data) {
			t.Fatalf("event %d is not JSON: %s", i, data)
		}
		if v.Get("error").Exists() {
			if !last {
				t.Errorf("error event %d is not last", i)
			}
			continue
		}
		if i == 0 && v.Get("choices.0.delta.role").Str != "assistant" {
			t.Errorf("first chunk is not the role chunk: %s", data)
		}
		if v.Get("choices.0.finish_reason").Type == gjson.String {
			finish = true
		}
		if v.Get("usage").IsObject() {
			usageSeen = true
		}
	}
}

func TestBedrockErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int // the client's status
		code, msg  string
	}{
		{"throttling", 429, `{"message":"Too many requests, please wait before trying again."}`, 429, "rate_limit_exceeded", "Too many requests, please wait before trying again."},
		{"throttling typed", 429, `{"__type":"com.amazon.bedrock#ThrottlingException","message":"slow down"}`, 429, "rate_limit_exceeded", "slow down"},
		{"service unavailable", 503, `{"message":"Service unavailable"}`, 503, "service_unavailable", "Service unavailable"},
		{"model not ready", 503, `{"__type":"ModelNotReadyException","message":"Model is not ready"}`, 503, "model_not_ready", "Model is not ready"},
		{"validation", 400, `{"message":"Malformed input request: extraneous key [foo] is not permitted"}`, 400, "invalid_request", "Malformed input request: extraneous key [foo] is not permitted"},
		{"context length", 400, `{"message":"Input is too long for requested model."}`, 400, "context_length_exceeded", "Input is too long for requested model."},
		{"context length prompt", 400, `{"__type":"ValidationException","message":"The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum"}`, 400, "context_length_exceeded", ""},
		{"access denied", 403, `{"Message":"User: arn:aws:iam::1:user/x is not authorized to perform: bedrock:InvokeModel"}`, 403, "access_denied", ""},
		{"bad signature", 403, `{"__type":"InvalidSignatureException","message":"The request signature we calculated does not match"}`, 403, "invalid_credentials", ""},
		{"not found", 404, `{"message":"Could not resolve the foundation model from the provided model identifier."}`, 404, "model_not_found", ""},
		{"model timeout 408", 408, `{"message":"Model has timed out in processing the request."}`, 504, "timeout", ""},
		{"model error 424", 424, `{"__type":"ModelErrorException","message":"The model failed"}`, 502, "upstream_error", ""},
		{"internal", 500, `{"message":"Internal server error"}`, 500, "upstream_error", ""},
		{"not json", 502, "<html>bad gateway</html>", 502, "upstream_error", "<html>bad gateway</html>"},
		{"empty", 503, "", 503, "service_unavailable", "upstream returned Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testBedrock().Response(&Response{Status: tt.status, ContentType: "application/json", Stream: true})
			wantRewrite := 0
			if tt.wantStatus != tt.status {
				wantRewrite = tt.wantStatus
			}
			if a.Status != wantRewrite || a.ContentType != "application/json" {
				t.Errorf("answer status %d content-type %q, want %d application/json", a.Status, a.ContentType, wantRewrite)
			}
			body := []byte(tt.body)
			out := feedBody(a.Body, body[:len(body)/2], body[len(body)/2:])
			e := decodeError(t, out)
			if e.Error.Code == nil || *e.Error.Code != tt.code {
				t.Errorf("code %v, want %q: %s", e.Error.Code, tt.code, out)
			}
			if want := apierr.TypeForStatus(tt.wantStatus); *e.Error.Type != want {
				t.Errorf("type %q, want %q", *e.Error.Type, want)
			}
			if tt.msg != "" && *e.Error.Message != tt.msg {
				t.Errorf("message %q, want %q", *e.Error.Message, tt.msg)
			}
		})
	}
}

func TestBedrockStreamExceptions(t *testing.T) {
	tests := []struct {
		typ    string
		status int
		code   string
	}{
		{"throttlingException", 429, "rate_limit_exceeded"},
		{"serviceUnavailableException", 503, "service_unavailable"},
		{"modelStreamErrorException", 502, "upstream_error"},
		{"validationException", 400, "invalid_request"},
		{"internalServerException", 500, "upstream_error"},
	}
	enc := eventstream.NewEncoder()
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			var buf bytes.Buffer
			var m eventstream.Message
			m.Headers.Set(":message-type", eventstream.StringValue("exception"))
			m.Headers.Set(":exception-type", eventstream.StringValue(tt.typ))
			m.Payload = []byte(`{"message":"bad"}`)
			if err := enc.Encode(&buf, m); err != nil {
				t.Fatal(err)
			}
			out := feedBody(testBedrock().Response(&Response{Status: 200, Stream: true}).Body, buf.Bytes())
			data, ok := bytes.CutPrefix(bytes.TrimSpace(out), []byte("data: "))
			if !ok {
				t.Fatalf("not an SSE event: %q", out)
			}
			e := decodeError(t, data)
			if *e.Error.Code != tt.code || *e.Error.Type != apierr.TypeForStatus(tt.status) {
				t.Errorf("error %s, want code %s type %s", data, tt.code, apierr.TypeForStatus(tt.status))
			}
		})
	}
}

func TestBedrockStreamAfterEnd(t *testing.T) {
	frames := encodeFrames(t, filepath.Join("testdata", "bedrock", "stream_text.in.jsonl"))
	b := testBedrock().Response(&Response{Status: 200, Stream: true}).Body
	first := feedBody(b, frames[:len(frames):len(frames)])
	if !bytes.HasSuffix(first, []byte("data: [DONE]\n\n")) {
		t.Fatalf("no [DONE]: %s", first)
	}
	if out, pass := b.Chunk(frames, true); pass || len(out) != 0 {
		t.Errorf("frames after the end produced %q, %v", out, pass)
	}
}

func FuzzBedrockStream(f *testing.F) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "bedrock", "stream_*.in.jsonl"))
	for _, in := range ins {
		f.Add(encodeFrames(f, in), 7)
	}
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 3)
	f.Add([]byte{0, 0, 0, 16, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		tr := testBedrock()
		b := tr.Response(&Response{Status: 200, Stream: true}).Body
		out := feedBody(b, data[:split:split], data[split:])
		checkStream(t, out)
		if whole := feedBody(tr.Response(&Response{Status: 200, Stream: true}).Body, data); !bytes.Equal(whole, out) {
			t.Fatalf("split at %d differs:\n%s\nvs whole\n%s", split, out, whole)
		}
	})
}

// verifySigV4 recomputes req's SigV4 signature with the
// secret and compares it with its authorization header.
func verifySigV4(req *http.Request, body []byte, secret, region string) (bool, error) {
	auth := req.Header.Get("authorization")
	_, rest, _ := strings.Cut(auth, "Credential=")
	akid, _, _ := strings.Cut(rest, "/")
	at, err := time.Parse("20060102T150405Z", req.Header.Get("x-amz-date"))
	if err != nil {
		return false, err
	}
	tr := testBedrock()
	tr.now = func() time.Time { return at }
	cred := akid + ":" + secret
	if tok := req.Header.Get("x-amz-security-token"); tok != "" {
		cred += ":" + tok
	}
	host, port := req.Host, uint32(80)
	if h, p, ok := strings.Cut(req.Host, ":"); ok {
		host = h
		fmt.Sscan(p, &port)
	}
	be := &config.RBackend{Host: host, Port: port, Credential: cred, Bedrock: config.BedrockOptions{Region: region}}
	creds, err := tr.credentials(be)
	if err != nil {
		return false, err
	}
	hs, err := tr.sign(be, req.URL.EscapedPath(), body, creds)
	if err != nil {
		return false, err
	}
	return hs[0][1] == auth, nil
}

// The benchmarks below translate requests of 2 KB and 64 KB with tools, and
// one stream frame at a time. Compare runs with benchstat:
//
//	go test -run='^$' -bench=Bedrock -count=10 ./filter/translate > new.txt
func bedrockBenchBody(size int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"model":"auto","stream":true,"max_tokens":512,"temperature":0.3,"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather for a city.","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"messages":[{"role":"system","content":"You are terse."}`)
	for sb.Len() < size-200 {
		sb.WriteString(`,{"role":"user","content":"Summarize the following paragraph about Envoy external processing in one line."},{"role":"assistant","content":"Envoy asks an external server to rewrite requests."}`)
	}
	sb.WriteString(`,{"role":"user","content":"Weather?"}]}`)
	return []byte(sb.String())
}

func BenchmarkBedrockRequest(b *testing.B) {
	for _, size := range []int{2 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			body := bedrockBenchBody(size)
			tr := testBedrock()
			req := &Request{Body: body, Backend: testBedrockBackend(), ClientModel: "auto", Model: "anthropic.claude-3-haiku-20240307-v1:0", Stream: true}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.Request(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBedrockStreamChunk feeds a text stream one frame per chunk; the
// figure is per chunk.
func BenchmarkBedrockStreamChunk(b *testing.B) {
	enc := eventstream.NewEncoder()
	var frame bytes.Buffer
	var m eventstream.Message
	m.Headers.Set(":message-type", eventstream.StringValue("event"))
	m.Headers.Set(":event-type", eventstream.StringValue("contentBlockDelta"))
	m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	m.Payload = []byte(`{"contentBlockIndex":0,"delta":{"text":"Hello there, "},"p":"abcdefghijklmnopqrstu"}`)
	if err := enc.Encode(&frame, m); err != nil {
		b.Fatal(err)
	}
	chunk := frame.Bytes()
	tr := testBedrock()
	body := tr.Response(&Response{Status: 200, Stream: true, Model: "m"}).Body
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		body.Chunk(chunk, false)
	}
}

func TestBedrockUsageMapping(t *testing.T) {
	got := bedrockUsage(gjson.Parse(`{"inputTokens":10,"outputTokens":5,"totalTokens":2015,"cacheReadInputTokens":1000,"cacheWriteInputTokens":1000}`))
	want := usage.Usage{Input: 2010, Output: 5, CachedInput: 1000, CacheWrite: 1000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
}

func TestBedrockFinishReason(t *testing.T) {
	for in, want := range map[string]string{
		"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "model_context_window_exceeded": "length",
		"tool_use": "tool_calls", "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
	} {
		if got := brFinishReason(in); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
}

func TestAWSEscape(t *testing.T) {
	for in, want := range map[string]string{
		"anthropic.claude-3-haiku-20240307-v1:0":                       "anthropic.claude-3-haiku-20240307-v1%3A0",
		"arn:aws:bedrock:us-east-1:1:inference-profile/us.meta.llama3": "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.meta.llama3",
		"a b~_": "a%20b~_",
	} {
		if got := awsEscape(in); got != want {
			t.Errorf("awsEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBedrockConcurrent signs from many goroutines through For's shared
// caches (run with -race).
func TestBedrockConcurrent(t *testing.T) {
	tr, err := For("bedrock")
	if err != nil {
		t.Fatal(err)
	}
	body := bedrockBenchBody(2 << 10)
	done := make(chan error)
	for range 8 {
		go func() {
			var err error
			for range 20 {
				if _, err = tr.Request(&Request{Body: body, Backend: testBedrockBackend(), Model: "m", Stream: true}); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
