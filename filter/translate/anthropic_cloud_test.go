package translate

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/creds"
	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/usage"
)

const cloudDir = "testdata/anthropic_cloud"

// testCloudSet is a Set with the fixed-clock Bedrock signer and a Vertex
// token cache (the tests' Vertex credential is an access token).
func testCloudSet() *Set {
	return &Set{bedrock: testBedrock(), vertex: vertex{tokens: &tokenCache{cache: creds.New[string](creds.Options{})}, now: time.Now}}
}

func testVertexBackend() *config.RBackend {
	return &config.RBackend{Name: "vertex-claude", Schema: "vertex", BasePath: "/base", Credential: "ya29.test-token",
		Vertex: config.VertexOptions{Project: "proj-1", Region: "us-east5"}}
}

func testGeminiBackend() *config.RBackend {
	return &config.RBackend{Name: "gem", Schema: "gemini", Credential: "AIza-test"}
}

// cloudGolden is what a request golden records.
type cloudGolden struct {
	Path       string          `json:"path"`
	SetHeaders [][2]string     `json:"set_headers"`
	Body       json.RawMessage `json:"body"`
}

// TestAnthropicCloudRequestGolden: Claude Code's request (and a
// count_tokens request) for Claude on Bedrock (InvokeModel, CountTokens),
// on Vertex (rawPredict, count-tokens) and for Gemini's countTokens, each
// compared with testdata/anthropic_cloud/req_<case>.out.json.
func TestAnthropicCloudRequestGolden(t *testing.T) {
	claudeCode, count := readFile(t, claudeCodeBody), readFile(t, filepath.Join(cloudDir, "count.in.json"))
	unstreamed, _ := sjson.DeleteBytes(bytes.Clone(claudeCode), "stream")
	bedrockDrop := testBedrockBackend()
	bedrockDrop.DropParams = []string{"context_management", "anthropic_beta"}
	vertexGemini := testVertexBackend()
	tests := []struct {
		name, model string
		be          *config.RBackend
		body        []byte
		stream      bool
		count       bool
		beta        string
	}{
		{name: "bedrock_invoke_stream", model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", be: testBedrockBackend(), body: claudeCode, stream: true,
			beta: "claude-code-20250219, interleaved-thinking-2025-05-14"},
		{name: "bedrock_invoke", model: "anthropic.claude-haiku-4-5-20251001-v1:0", be: testBedrockBackend(), body: unstreamed},
		{name: "bedrock_invoke_drop", model: "anthropic.claude-haiku-4-5-20251001-v1:0", be: bedrockDrop, body: claudeCode, stream: true, beta: "claude-code-20250219"},
		{name: "bedrock_count", model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", be: testBedrockBackend(), body: count, count: true, beta: "token-counting-2024-11-01"},
		{name: "vertex_stream", model: "claude-sonnet-4-5@20250929", be: testVertexBackend(), body: claudeCode, stream: true, beta: "interleaved-thinking-2025-05-14"},
		{name: "vertex_raw", model: "claude-haiku-4-5@20251001", be: testVertexBackend(), body: unstreamed},
		{name: "vertex_count", model: "claude-sonnet-4-5@20250929", be: testVertexBackend(), body: count, count: true},
		{name: "vertex_gemini_count", model: "gemini-2.5-flash", be: vertexGemini, body: count, count: true},
		{name: "gemini_count", model: "gemini-2.5-flash", be: testGeminiBackend(), body: count, count: true},
	}
	s := testCloudSet()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.count && !AnthropicNativeServed(tt.be, tt.model) || tt.count && !CountsTokens(tt.be, tt.model) {
				t.Fatalf("%s %s is not served natively", tt.be.Schema, tt.model)
			}
			orig := bytes.Clone(tt.body)
			r := &Request{Body: tt.body, Backend: tt.be, ClientModel: "claude-sonnet-4-5", Model: tt.model, Stream: tt.stream}
			var up *Upstream
			var err error
			if tt.count {
				up, err = s.CountTokensRequest(r, "2023-06-01", tt.beta)
			} else {
				up, err = s.AnthropicNativeRequest(r, "2023-06-01", tt.beta)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tt.body, orig) {
				t.Fatal("the client's body was modified in place")
			}
			if !json.Valid(up.Body) {
				t.Fatalf("body is not JSON: %s", up.Body)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, up.Body, "", "  "); err != nil {
				t.Fatal(err)
			}
			out, _ := json.MarshalIndent(cloudGolden{Path: up.Path, SetHeaders: up.SetHeaders, Body: pretty.Bytes()}, "", "  ")
			golden(t, filepath.Join(cloudDir, "req_"+tt.name+".out.json"), append(out, '\n'))
			if tt.be.Schema == "bedrock" && !tt.count {
				// The body is the client's but model and stream, plus
				// anthropic_version (and anthropic_beta): every other field
				// byte for byte.
				sent := gjson.ParseBytes(up.Body)
				gjson.ParseBytes(tt.body).ForEach(func(k, v gjson.Result) bool {
					got := sent.Get(gjsonKey(k.Str))
					switch dropped := k.Str == "model" || k.Str == "stream" || strings.Contains(strings.Join(tt.be.DropParams, ","), k.Str); {
					case dropped && got.Exists():
						t.Errorf("%s was sent", k.Str)
					case !dropped && got.Raw != v.Raw:
						t.Errorf("%s: sent %s, the client's %s", k.Str, got.Raw, v.Raw)
					}
					return true
				})
			}
		})
	}
}

// TestAnthropicNativeServed: which backend and model take an Anthropic
// client's body natively.
func TestAnthropicNativeServed(t *testing.T) {
	br := func(api string) *config.RBackend {
		return &config.RBackend{Schema: "bedrock", Bedrock: config.BedrockOptions{Region: "us-east-1", AnthropicAPI: api}}
	}
	tests := []struct {
		be           *config.RBackend
		model        string
		native, cnts bool
	}{
		{&config.RBackend{Schema: "anthropic"}, "claude-sonnet-4-5", true, true},
		{br("auto"), "anthropic.claude-3-haiku-20240307-v1:0", true, true},
		{br("auto"), "us.anthropic.claude-sonnet-4-5-20250929-v1:0", true, true},
		{br("auto"), "arn:aws:bedrock:us-east-1:123:application-inference-profile/claude-prod", true, true},
		{br("auto"), "amazon.nova-pro-v1:0", false, false},
		{br("native"), "arn:aws:bedrock:us-east-1:123:application-inference-profile/abc", true, true},
		{br("converse"), "anthropic.claude-3-haiku-20240307-v1:0", false, false},
		{testVertexBackend(), "claude-sonnet-4-5@20250929", true, true},
		{testVertexBackend(), "publishers/anthropic/models/claude-haiku-4-5@20251001", true, true},
		{testVertexBackend(), "gemini-2.5-pro", false, true},
		{testGeminiBackend(), "gemini-2.5-pro", false, true},
		{&config.RBackend{Schema: "openai"}, "gpt-4o", false, false},
		{&config.RBackend{Schema: "azure-openai"}, "claude-sonnet", false, false},
	}
	for _, tt := range tests {
		if got := AnthropicNativeServed(tt.be, tt.model); got != tt.native {
			t.Errorf("AnthropicNativeServed(%s/%s, %s) = %v", tt.be.Schema, tt.be.Bedrock.AnthropicAPI, tt.model, got)
		}
		if got := CountsTokens(tt.be, tt.model); got != tt.cnts {
			t.Errorf("CountsTokens(%s, %s) = %v", tt.be.Schema, tt.model, got)
		}
	}
	if got := foundationModel("global.anthropic.claude-sonnet-4-5-20250929-v1:0"); got != "anthropic.claude-sonnet-4-5-20250929-v1:0" {
		t.Errorf("foundationModel = %s", got)
	}
	if arn := "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-x"; foundationModel(arn) != arn {
		t.Error("an ARN was rewritten")
	}
}

// invokeFrames builds an InvokeModelWithResponseStream answer from a .jsonl
// description: {"anthropic": event} is a chunk event carrying the event's
// JSON base64 in bytes; {"event"|"exception": type, "payload": …} a frame
// as given; {"flip": n} corrupts the byte n from the end.
func invokeFrames(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Anthropic        json.RawMessage
			Event, Exception string
			Payload          json.RawMessage
			Flip             int
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if line.Flip > 0 {
			buf.Bytes()[buf.Len()-line.Flip] ^= 0xff
			continue
		}
		var m eventstream.Message
		m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		switch {
		case line.Anthropic != nil:
			m.Headers.Set(":message-type", eventstream.StringValue("event"))
			m.Headers.Set(":event-type", eventstream.StringValue("chunk"))
			m.Payload, _ = json.Marshal(map[string]string{"bytes": base64.StdEncoding.EncodeToString(line.Anthropic)})
		case line.Exception != "":
			m.Headers.Set(":message-type", eventstream.StringValue("exception"))
			m.Headers.Set(":exception-type", eventstream.StringValue(line.Exception))
			m.Payload = line.Payload
		default:
			m.Headers.Set(":message-type", eventstream.StringValue("event"))
			m.Headers.Set(":event-type", eventstream.StringValue(line.Event))
			m.Payload = line.Payload
		}
		if err := enc.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestInvokeStreamGolden turns testdata/anthropic_cloud/invoke_stream_<case>
// .in.jsonl (encoded as Bedrock's event stream) into the Anthropic SSE the
// client gets, invoke_stream_<case>.out.sse, identically for every split of
// the input into two chunks; every event is Anthropic's, and an error event
// ends the stream.
func TestInvokeStreamGolden(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join(cloudDir, "invoke_stream_*.in.jsonl"))
	if len(ins) < 4 {
		t.Fatalf("fixtures: %v", ins)
	}
	s := testCloudSet()
	for _, in := range ins {
		base := strings.TrimSuffix(in, ".in.jsonl")
		t.Run(filepath.Base(base), func(t *testing.T) {
			newBody := func() Body {
				wire, a := s.AnthropicNativeResponse("bedrock", &Response{Status: 200, ContentType: eventStreamType, Stream: true, Model: "m"})
				if wire == nil || a.ContentType != "text/event-stream" {
					t.Fatalf("wire %v, answer %+v", wire, a)
				}
				return wire
			}
			out := splitEverywhere(t, invokeFrames(t, in), newBody)
			golden(t, base+".out.sse", out)
			type ev struct{ name, data string }
			var events []ev
			var sc sse.Scanner
			sc.Feed(out, func(e sse.Event) { events = append(events, ev{string(e.Name), string(e.Data)}) })
			for i, e := range events {
				if typ := gjson.Get(e.data, "type").Str; typ != e.name {
					t.Errorf("event %d: name %q, data type %q", i, e.name, typ)
				}
				if e.name == "error" && i != len(events)-1 {
					t.Errorf("event %d: an error event is not last", i)
				}
			}
		})
	}
}

// TestInvokeStreamUsage: the SSE decoded from Bedrock's event stream is read
// for usage like Anthropic's own: cache reads, five-minute and one-hour
// writes, output; the JSON answer too.
func TestInvokeStreamUsage(t *testing.T) {
	s := testCloudSet()
	wire, a := s.AnthropicNativeResponse("bedrock", &Response{Status: 200, ContentType: eventStreamType, Stream: true, Model: "m"})
	client := feedBody(wire, invokeFrames(t, filepath.Join(cloudDir, "invoke_stream_tools.in.jsonl")))
	tr := usage.NewTracker(true)
	tr.Write(feedBody(a.Body, client))
	res := tr.Finish()
	want := usage.Usage{Input: 1312, Output: 42, CachedInput: 1000, CacheWrite: 300, CacheWrite1h: 200}
	if !res.Known || !res.Done || res.Usage != want {
		t.Errorf("usage %+v, want %+v", res, want)
	}

	msg := `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn",` +
		`"usage":{"input_tokens":3,"output_tokens":2,"cache_read_input_tokens":4,"cache_creation_input_tokens":5,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":5}}}`
	for _, schema := range []string{"bedrock", "vertex"} {
		wire, a := s.AnthropicNativeResponse(schema, &Response{Status: 200, ContentType: "application/json", Model: "m"})
		if wire != nil {
			t.Errorf("%s: a wire conversion for a JSON answer", schema)
		}
		tr := usage.NewTracker(false)
		tr.Write(feedBody(a.Body, []byte(msg)))
		res := tr.Finish()
		if want := (usage.Usage{Input: 12, Output: 2, CachedInput: 4, CacheWrite: 5, CacheWrite1h: 5}); res.Usage != want {
			t.Errorf("%s: usage %+v, want %+v", schema, res.Usage, want)
		}
	}
}

// TestAnthropicCloudErrors: provider errors of native requests, normalized
// into OpenAI error JSON (status and code) before they are rendered in
// Anthropic's shape: Bedrock's by x-amzn-errortype, Vertex's in Google's
// shape or, when Claude answered, Anthropic's.
func TestAnthropicCloudErrors(t *testing.T) {
	s := testCloudSet()
	tests := []struct {
		schema, typ string
		status      int
		body        string
		wantStatus  int
		wantCode    string
	}{
		{"bedrock", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", 429, `{"message":"Too many requests"}`, 429, "rate_limit_exceeded"},
		{"bedrock", "ValidationException", 400, `{"message":"extraneous key [foo] is not permitted"}`, 400, "invalid_request"},
		{"bedrock", "ModelNotReadyException", 429, `{"message":"not ready"}`, 503, "model_not_ready"},
		{"vertex", "", 429, `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}`, 429, "rate_limit_exceeded"},
		{"vertex", "", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}}`, 400, "context_length_exceeded"},
	}
	for _, tt := range tests {
		r := &Response{Status: tt.status, ContentType: "application/json", Model: "m",
			Header: func(n string) string {
				if n == "x-amzn-errortype" {
					return tt.typ
				}
				return ""
			}}
		_, a := s.AnthropicNativeResponse(tt.schema, r)
		status := tt.status
		if a.Status != 0 {
			status = a.Status
		}
		out := feedBody(a.Body, []byte(tt.body))
		if status != tt.wantStatus || gjson.GetBytes(out, "error.code").Str != tt.wantCode {
			t.Errorf("%s %s: status %d, %s; want %d %s", tt.schema, tt.body, status, out, tt.wantStatus, tt.wantCode)
		}
	}
}

// TestCountTokensResponse: every backend's count reaches the client as
// Anthropic's {"input_tokens": N}, whole and split at every byte.
func TestCountTokensResponse(t *testing.T) {
	s := testCloudSet()
	tests := []struct {
		be    *config.RBackend
		model string
		body  string
		pass  bool
	}{
		{testBedrockBackend(), "anthropic.claude-haiku-4-5-20251001-v1:0", `{"inputTokens":1234}`, false},
		{testGeminiBackend(), "gemini-2.5-flash", `{"totalTokens":1234,"promptTokensDetails":[{"modality":"TEXT","tokenCount":1234}]}`, false},
		{testVertexBackend(), "gemini-2.5-flash", `{"totalTokens":1234,"totalBillableCharacters":99}`, false},
		{testVertexBackend(), "claude-haiku-4-5@20251001", `{"input_tokens":1234}`, true},
		{&config.RBackend{Schema: "anthropic"}, "claude-haiku-4-5", `{"input_tokens":1234}`, true},
	}
	for _, tt := range tests {
		a := s.CountTokensResponse(tt.be, tt.model, &Response{Status: 200, ContentType: "application/json"})
		if tt.pass {
			if a.Body != nil {
				t.Errorf("%s %s: the answer is rewritten", tt.be.Schema, tt.model)
			}
			continue
		}
		out := splitEverywhere(t, []byte(tt.body), func() Body {
			return s.CountTokensResponse(tt.be, tt.model, &Response{Status: 200, ContentType: "application/json"}).Body
		})
		if string(out) != `{"input_tokens":1234}` {
			t.Errorf("%s %s: %s", tt.be.Schema, tt.model, out)
		}
	}
	a := s.CountTokensResponse(testBedrockBackend(), "anthropic.claude-x", &Response{Status: 200})
	if out := feedBody(a.Body, []byte(`{"nope":1}`)); gjson.GetBytes(out, "error.code").Str != "upstream_error" {
		t.Errorf("an unreadable count: %s", out)
	}
}

// TestVertexClaudeForOpenAIClients: an OpenAI chat request for a Claude
// model on Vertex gets the anthropic translator's body (golden
// req_vertex_openai.out.json) without model, with anthropic_version, sent to
// rawPredict; the answer is read as Anthropic's (usage included), errors in
// either shape.
func TestVertexClaudeForOpenAIClients(t *testing.T) {
	s := testCloudSet()
	in := readFile(t, "testdata/anthropic/req_basic.in.json")
	r := &Request{Body: in, Backend: testVertexBackend(), ClientModel: "gpt-4o", Model: "claude-haiku-4-5@20251001", Stream: true, UsageRequested: true}
	up, err := s.vertex.Request(r)
	if err != nil {
		t.Fatal(err)
	}
	ar := *r
	ar.Backend = &config.RBackend{Name: "a", Schema: "anthropic"}
	want, err := anthropic{}.Request(&ar)
	if err != nil {
		t.Fatal(err)
	}
	sent := gjson.ParseBytes(up.Body)
	if sent.Get("model").Exists() || sent.Get("anthropic_version").Str != vertexAnthropicVersion {
		t.Errorf("body %s", up.Body)
	}
	gjson.ParseBytes(want.Body).ForEach(func(k, v gjson.Result) bool {
		if k.Str != "model" && sent.Get(k.Str).Raw != v.Raw {
			t.Errorf("%s: %s, the anthropic translator's %s", k.Str, sent.Get(k.Str).Raw, v.Raw)
		}
		return true
	})
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, up.Body, "", "  "); err != nil {
		t.Fatal(err)
	}
	out, _ := json.MarshalIndent(cloudGolden{Path: up.Path, SetHeaders: up.SetHeaders, Body: pretty.Bytes()}, "", "  ")
	golden(t, filepath.Join(cloudDir, "req_vertex_openai.out.json"), append(out, '\n'))

	a := s.vertex.Response(&Response{Status: 200, ContentType: "application/json", Model: "claude-haiku-4-5@20251001"})
	msg := `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}`
	if got := feedBody(a.Body, []byte(msg)); gjson.GetBytes(got, "choices.0.message.content").Str != "hi" || gjson.GetBytes(got, "usage.prompt_tokens").Int() != 3 {
		t.Errorf("answer %s", got)
	}
	e := s.vertex.Response(&Response{Status: 429, ContentType: "application/json", Model: "claude-haiku-4-5@20251001"})
	if got := feedBody(e.Body, []byte(`{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED"}}`)); gjson.GetBytes(got, "error.code").Str != "rate_limit_exceeded" {
		t.Errorf("error %s", got)
	}
}

// FuzzInvokeStream: any bytes as an InvokeModelWithResponseStream answer
// decode the same whole and split, into Anthropic SSE events (named by
// their data's type) of which an error event can only be last.
func FuzzInvokeStream(f *testing.F) {
	ins, _ := filepath.Glob(filepath.Join(cloudDir, "invoke_stream_*.in.jsonl"))
	for _, in := range ins {
		f.Add(invokeFrames(&testing.T{}, in), 9)
	}
	f.Add([]byte{0, 0, 0, 16, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		s := testCloudSet()
		newWire := func() Body {
			w, _ := s.AnthropicNativeResponse("bedrock", &Response{Status: 200, ContentType: eventStreamType, Stream: true})
			return w
		}
		out := feedBody(newWire(), data[:split:split], data[split:])
		if whole := feedBody(newWire(), data); !bytes.Equal(whole, out) {
			t.Fatalf("split at %d differs:\n%s\nvs whole\n%s", split, out, whole)
		}
		var sc sse.Scanner
		n, errAt := 0, -1
		sc.Feed(out, func(e sse.Event) {
			if !gjson.ValidBytes(e.Data) || gjson.GetBytes(e.Data, "type").Str != string(e.Name) {
				t.Fatalf("event %d: %s %s", n, e.Name, e.Data)
			}
			if string(e.Name) == "error" {
				errAt = n
			}
			n++
		})
		if errAt >= 0 && errAt != n-1 {
			t.Fatalf("an error event at %d of %d", errAt, n)
		}
	})
}

// BenchmarkInvokeStream decodes a tool-use answer's event stream into
// Anthropic SSE, fed in 512-byte chunks (per event: ns and allocations).
func BenchmarkInvokeStream(b *testing.B) {
	frames := invokeFrames(&testing.T{}, filepath.Join(cloudDir, "invoke_stream_tools.in.jsonl"))
	s := testCloudSet()
	const events = 14
	b.SetBytes(int64(len(frames)))
	b.ReportAllocs()
	for b.Loop() {
		w, _ := s.AnthropicNativeResponse("bedrock", &Response{Status: 200, ContentType: eventStreamType, Stream: true})
		for i := 0; i < len(frames); i += 512 {
			w.Chunk(frames[i:min(i+512, len(frames))], i+512 >= len(frames))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/events, "ns/event")
}
