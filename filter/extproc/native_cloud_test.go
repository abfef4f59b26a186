package extproc

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/tidwall/gjson"
)

const cloudTestdata = "../translate/testdata/anthropic_cloud/"

// invokeStream encodes the translator's InvokeModelWithResponseStream
// fixture ({"anthropic": event} lines) as Bedrock's event stream.
func invokeStream(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(cloudTestdata + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct{ Anthropic json.RawMessage }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Anthropic == nil {
			t.Fatalf("%s: %q %v", name, sc.Bytes(), err)
		}
		var m eventstream.Message
		m.Headers.Set(":message-type", eventstream.StringValue("event"))
		m.Headers.Set(":event-type", eventstream.StringValue("chunk"))
		m.Payload, _ = json.Marshal(map[string]string{"bytes": base64.StdEncoding.EncodeToString(line.Anthropic)})
		if err := enc.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

// TestNativeBedrockVertexRequest: Claude Code's request to Claude on
// Bedrock goes to InvokeModelWithResponseStream, SigV4-signed, the body
// without model and stream, with anthropic_version and the betas in
// anthropic_beta, no Anthropic header; to Claude on Vertex it goes to
// streamRawPredict with a bearer token, the body without model, with
// anthropic_version, the betas in anthropic-beta.
func TestNativeBedrockVertexRequest(t *testing.T) {
	h := nativeHarness(t)
	for _, tt := range []struct {
		model, pool, backend, path string
		headers                    map[string]string // "" means absent
	}{
		{"claude-bedrock", "bedrock", "bedrock-1", "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream",
			map[string]string{"accept": "application/vnd.amazon.eventstream", "anthropic-beta": "", "anthropic-version": "", "x-api-key": ""}},
		{"claude-vertex", "vertex", "vertex-1", "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict",
			map[string]string{"authorization": "Bearer sk-gcp", "anthropic-version": "", "x-api-key": "",
				"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"}},
	} {
		t.Run(tt.backend, func(t *testing.T) {
			body := strings.Replace(claudeCodeBody(t), `"claude-sonnet-4-5-20250929"`, strconv.Quote(tt.model), 1)
			routed, dec := h.route(t, claudeCodeClient(body), body)
			m := slices.Clone(routed)
			got := h.attempt(t, &m, body, tt.pool, tt.backend, dec)
			if v, _ := header1(got, ":path"); v != tt.path {
				t.Errorf(":path %q", v)
			}
			for k, want := range tt.headers {
				if v, ok := header1(got, k); v != want || want == "" && ok {
					t.Errorf("%s = %q (present %v), want %q", k, v, ok, want)
				}
			}
			if v, _ := header1(got, "content-length"); v != strconv.Itoa(len(got.body)) {
				t.Errorf("content-length %q for %d bytes", v, len(got.body))
			}
			sent, req := gjson.Parse(got.body), gjson.Parse(body)
			if sent.Get("model").Exists() {
				t.Errorf("model sent: %s", sent.Get("model").Raw)
			}
			req.ForEach(func(k, v gjson.Result) bool {
				if k.Str != "model" && k.Str != "stream" && sent.Get(k.Str).Raw != v.Raw {
					t.Errorf("%s changed: %s", k.Str, sent.Get(k.Str).Raw)
				}
				return true
			})
			switch tt.backend {
			case "bedrock-1":
				if auth, _ := header1(got, "authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") {
					t.Errorf("authorization %q", auth)
				}
				if sent.Get("stream").Exists() || sent.Get("anthropic_version").Str != "bedrock-2023-05-31" ||
					sent.Get("anthropic_beta").Raw != `["claude-code-20250219","interleaved-thinking-2025-05-14","context-management-2025-06-27"]` {
					t.Errorf("bedrock body: stream %s, version %s, betas %s", sent.Get("stream").Raw, sent.Get("anthropic_version").Raw, sent.Get("anthropic_beta").Raw)
				}
			case "vertex-1":
				if sent.Get("stream").Raw != "true" || sent.Get("anthropic_version").Str != "vertex-2023-10-16" || sent.Get("anthropic_beta").Exists() {
					t.Errorf("vertex body: stream %s, version %s", sent.Get("stream").Raw, sent.Get("anthropic_version").Raw)
				}
			}
		})
	}
}

// TestNativeBedrockAnswer: Bedrock's event stream reaches Claude Code as
// Anthropic SSE (text/event-stream), chunked anywhere, and its usage is read
// and priced like Anthropic's: cache reads, five-minute and one-hour writes.
func TestNativeBedrockAnswer(t *testing.T) {
	frames := invokeStream(t, "invoke_stream_tools.in.jsonl")
	want, err := os.ReadFile(cloudTestdata + "invoke_stream_tools.out.sse")
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 7, 100, len(frames)} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			got := nativeExchangeOn(t, "claude-bedrock", "bedrock", "bedrock-1", "200", "application/vnd.amazon.eventstream", splitEvery(frames, size)...)
			if got.set["content-type"] != "text/event-stream" || got.status != "200" {
				t.Errorf("status %s, content-type %q", got.status, got.set["content-type"])
			}
			if got.body != string(want) {
				t.Errorf("the client got\n%s", got.body)
			}
			for k, v := range map[string]string{"prompt_tokens": "1312", "completion_tokens": "42", "cached_tokens": "1000",
				"usage": "known", "outcome": "ok", "backend": "bedrock-1"} {
				if got.md[k] != v {
					t.Errorf("metadata %s = %q, want %q", k, got.md[k], v)
				}
			}
			// 12 at 3, 1000 at 0.30, 100 at 3.75, 200 at 6, 42 at 15 per million.
			if c := got.md["cost_usd"]; c != "0.002541000000" {
				t.Errorf("cost_usd %q", c)
			}
		})
	}

	cut := frames[:len(frames)/2]
	out := nativeExchangeOn(t, "claude-bedrock", "bedrock", "bedrock-1", "200", "application/vnd.amazon.eventstream", cut, "").body
	if i := strings.LastIndex(out, "event: "); i < 0 || !strings.HasPrefix(out[i:], "event: error\ndata: ") {
		t.Errorf("a cut stream does not end with Anthropic's error event:\n%s", out)
	}
}

// TestNativeCloudAnswers: Vertex's Anthropic SSE passes as sent; provider
// errors reach the client in Anthropic's shape with OpenAI's statuses.
func TestNativeCloudAnswers(t *testing.T) {
	stream := readTestdata(t, "anthropic_native.sse")
	v := nativeExchangeOn(t, "claude-vertex", "vertex", "vertex-1", "200", "text/event-stream", splitEvery(stream, 50)...)
	if v.body != stream || v.md["usage"] != "known" || v.md["prompt_tokens"] != "1312" {
		t.Errorf("vertex stream: %v\n%s", v.md, v.body)
	}
	for _, tt := range []struct {
		name, model, pool, backend, status, body, wantStatus, wantType string
	}{
		{"bedrock throttled", "claude-bedrock", "bedrock", "bedrock-1", "429", `{"message":"Too many requests, please wait before trying again."}`, "429", "rate_limit_error"},
		{"vertex quota", "claude-vertex", "vertex", "vertex-1", "429", `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}`, "429", "rate_limit_error"},
		{"vertex claude error", "claude-vertex", "vertex", "vertex-1", "529", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "503", "overloaded_error"},
	} {
		e := nativeExchangeOn(t, tt.model, tt.pool, tt.backend, tt.status, "application/json", tt.body)
		if e.status != tt.wantStatus || gjson.Get(e.body, "type").Str != "error" || gjson.Get(e.body, "error.type").Str != tt.wantType {
			t.Errorf("%s: %s %s", tt.name, e.status, e.body)
		}
	}
}

// TestNativeCloudFailover: one Claude Code request failing over Anthropic →
// Bedrock → Vertex → OpenAI on one header map: each attempt is what a
// first attempt to that backend would be (no header or body of an earlier
// one left: no x-api-key or anthropic-beta at Bedrock, no SigV4 at Vertex,
// no anthropic_version at OpenAI).
func TestNativeCloudFailover(t *testing.T) {
	h := nativeHarness(t)
	body := strings.Replace(claudeCodeBody(t), `"claude-sonnet-4-5-20250929"`, `"claude-anywhere"`, 1)
	routed, dec := h.route(t, claudeCodeClient(body), body)
	m := slices.Clone(routed)
	for _, be := range []string{"claude-1", "bedrock-1", "vertex-1", "openai-1"} {
		after := h.attempt(t, &m, body, "claude-clouds", be, dec)
		fresh := slices.Clone(routed)
		first := h.attempt(t, &fresh, body, "claude-clouds", be, dec)
		if be == "bedrock-1" { // signed at a different second, perhaps
			after, first = unsign(t, after), unsign(t, first)
		}
		if strings.Join(after.headers, "\n") != strings.Join(first.headers, "\n") || after.body != first.body {
			t.Errorf("%s after failover:\n%v\nas a first attempt:\n%v", be, after.headers, first.headers)
		}
		switch be {
		case "bedrock-1", "vertex-1":
			if _, ok := header1(after, "x-api-key"); ok || gjson.Get(after.body, "model").Exists() {
				t.Errorf("%s: %v\n%.300s", be, after.headers, after.body)
			}
		case "openai-1":
			if gjson.Get(after.body, "anthropic_version").Exists() || gjson.Get(after.body, "model").Str != "gpt-4o" {
				t.Errorf("openai: %.300s", after.body)
			}
		}
	}
}
