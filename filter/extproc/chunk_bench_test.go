package extproc

// Per-chunk benchmarks of the upstream role's answer side: one SSE chunk of
// a streamed answer, as Envoy hands it over (one response_body message per
// event), through responseBody — pass-through OpenAI streams and the
// streams llmproc translates to OpenAI chat chunks (Anthropic, Gemini,
// Bedrock's event stream).
//
//	go test -run '^$' -bench Chunk -cpu 1 -count 6 ./filter/extproc
//
// BenchmarkChunk times one content chunk in the middle of a stream: ns/op
// and allocs/op are per chunk. BenchmarkChunkStream times whole 50-chunk
// answers (response headers, every chunk, the record at the end) and reports
// them per chunk (ns/chunk, allocs/chunk).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/sjson"
	"google.golang.org/protobuf/proto"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/metrics"
)

// chunkConfig has one pool per backend schema whose stream is benchmarked.
const chunkConfig = `
limits: {max_request_bytes: 8388608}
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
  - {name: claude, schema: anthropic, url: "http://127.0.0.1:1", credential: {env: ANT}}
  - {name: gem, schema: gemini, url: "http://127.0.0.1:1", credential: {env: GEM}}
  - {name: br, schema: bedrock, url: "http://127.0.0.1:1", credential: {env: AWS}, bedrock: {region: us-east-1}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60, cached_input: 0.075}}
  - {name: claude-haiku, pool: anthropic, price: {input: 1, output: 5}}
  - {name: gemini-flash, pool: gemini, price: {input: 0.3, output: 2.5}}
  - {name: nova-lite, pool: bedrock, price: {input: 0.06, output: 0.24}}
pools:
  - {name: cheap, backends: [{backend: primary, model: gpt-4o-mini-2024-07-18}]}
  - {name: anthropic, backends: [{backend: claude, model: claude-haiku-4-5}]}
  - {name: gemini, backends: [{backend: gem, model: gemini-2.5-flash}]}
  - {name: bedrock, backends: [{backend: br, model: amazon.nova-lite-v1:0}]}
`

const chunksPerStream = 50

// chunkCase is one streamed answer: its chunks (one event each) and what
// the client must get for it.
type chunkCase struct {
	name, pool, backend, model string
	usage                      bool   // the client asks for usage in its stream
	ct                         string // the backend's content-type
	chunks                     [][]byte
	mid                        int // a content chunk in the middle, for BenchmarkChunk
	output                     int // completion_tokens the stream reports
}

var chunkWords = []string{"The", " route", " limit", " keeps", " large", " uploads", " where", " they", " belong", ","}

func chunkCases(tb testing.TB) []chunkCase {
	openai := sseChunks(chunksPerStream)
	return []chunkCase{
		{name: "passthrough", pool: "cheap", backend: "primary", model: "gpt-4o-mini", usage: true,
			ct: "text/event-stream; charset=utf-8", chunks: openai, mid: 20, output: 197},
		{name: "strip", pool: "cheap", backend: "primary", model: "gpt-4o-mini",
			ct: "text/event-stream; charset=utf-8", chunks: openai, mid: 20, output: 197},
		{name: "anthropic", pool: "anthropic", backend: "claude", model: "claude-haiku",
			ct: "text/event-stream; charset=utf-8", chunks: anthropicChunks(chunksPerStream), mid: 20, output: 46},
		{name: "gemini", pool: "gemini", backend: "gem", model: "gemini-flash",
			ct: "text/event-stream", chunks: geminiChunks(chunksPerStream), mid: 20, output: 50},
		{name: "bedrock", pool: "bedrock", backend: "br", model: "nova-lite",
			ct: "application/vnd.amazon.eventstream", chunks: bedrockChunks(tb, chunksPerStream), mid: 20, output: 46},
	}
}

// anthropicChunks is an Anthropic messages stream of n events.
func anthropicChunks(n int) [][]byte {
	ev := func(name, data string) []byte { return []byte("event: " + name + "\ndata: " + data + "\n\n") }
	out := [][]byte{
		ev("message_start", `{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-haiku-4-5-20251001","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":480,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`),
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
	}
	for i := 0; len(out) < n-3; i++ {
		w, _ := json.Marshal(chunkWords[i%len(chunkWords)])
		out = append(out, ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+string(w)+`}}`))
	}
	return append(out,
		ev("content_block_stop", `{"type":"content_block_stop","index":0}`),
		ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":46}}`),
		ev("message_stop", `{"type":"message_stop"}`))
}

// geminiChunks is a streamGenerateContent?alt=sse answer of n events, usage
// in every one as Gemini sends it, the finish reason in the last.
func geminiChunks(n int) [][]byte {
	out := make([][]byte, 0, n)
	for i := range n {
		w, _ := json.Marshal(chunkWords[i%len(chunkWords)])
		finish, cand := "", ""
		if i == n-1 {
			finish, cand = `,"finishReason":"STOP"`, fmt.Sprintf(`,"candidatesTokenCount":%d`, n)
		}
		out = append(out, []byte(`data: {"candidates":[{"content":{"parts":[{"text":`+string(w)+`}],"role":"model"}`+finish+`,"index":0}],`+
			`"usageMetadata":{"promptTokenCount":480`+cand+fmt.Sprintf(`,"totalTokenCount":%d},`, 480+n)+
			`"modelVersion":"gemini-2.5-flash","responseId":"BGnbaMKfLpeyz7IP-bench"}`+"\r\n\r\n"))
	}
	return out
}

// bedrockChunks is a ConverseStream answer of n event-stream frames.
func bedrockChunks(tb testing.TB, n int) [][]byte {
	enc := eventstream.NewEncoder()
	frame := func(event, payload string) []byte {
		var m eventstream.Message
		m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		m.Headers.Set(":message-type", eventstream.StringValue("event"))
		m.Headers.Set(":event-type", eventstream.StringValue(event))
		m.Payload = []byte(payload)
		var buf bytes.Buffer
		if err := enc.Encode(&buf, m); err != nil {
			tb.Fatal(err)
		}
		return buf.Bytes()
	}
	out := [][]byte{frame("messageStart", `{"p":"abcdefghijklmnopqrstuvwxyzABCDEFGH","role":"assistant"}`)}
	for i := 0; len(out) < n-4; i++ {
		w, _ := json.Marshal(chunkWords[i%len(chunkWords)])
		out = append(out, frame("contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":`+string(w)+`},"p":"abcdefghijklmn"}`))
	}
	return append(out,
		frame("contentBlockStop", `{"contentBlockIndex":0,"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"}`),
		frame("messageStop", `{"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW","stopReason":"end_turn"}`),
		frame("metadata", `{"metrics":{"latencyMs":512},"p":"abcdefghijklmnopqrstuvwx","usage":{"inputTokens":480,"outputTokens":46,"totalTokens":526}}`),
		// A last, empty message: Envoy's end of stream after the frames.
		nil)
}

// chunkAttempt prepares the attempt of a case: the request phase run once,
// so that each stream answers a copy of it.
func chunkAttempt(b *testing.B, c chunkCase) *upstream {
	b.Helper()
	cfg, err := config.Parse([]byte(chunkConfig))
	if err != nil {
		b.Fatal(err)
	}
	rt, err := config.Compile(cfg, func(k string) string {
		if k == "AWS" {
			return "AKIDEXAMPLE:secret"
		}
		return "sk-" + strings.ToLower(k)
	})
	if err != nil {
		b.Fatal(err)
	}
	s := New(Options{Config: fixedRuntime{rt}, Metrics: metrics.New(prometheus.NewRegistry())})
	b.Cleanup(s.Close)
	body := bytes.Replace(readBenchdata(b, "chat_2k.json"), []byte(`"model":"gpt-4o-mini"`), []byte(`"model":"`+c.model+`"`), 1)
	if c.usage {
		if body, err = sjson.SetBytes(body, "stream_options.include_usage", true); err != nil {
			b.Fatal(err)
		}
	}
	req := reqHeaders(hdrs(false,
		":method", "POST", ":path", "/v1/chat/completions", ":authority", "llm.internal", ":scheme", "http",
		"content-type", "application/json", "content-length", fmt.Sprint(len(body)),
		"authorization", "Bearer client-key", "x-request-id", "0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f"),
		map[string]string{AttrBackend: c.backend, AttrCluster: PoolClusterPrefix + c.pool})
	u := &upstream{s: s, rt: rt}
	if _, err := u.requestHeaders(req, req.GetRequestHeaders()); err != nil {
		b.Fatal(err)
	}
	if _, err := u.requestBody(bodyRequest(body)); err != nil {
		b.Fatal(err)
	}
	return u
}

func (c chunkCase) respHeaders() *extprocv3.HttpHeaders {
	return hdrs(false, ":status", "200", "content-type", c.ct, "x-request-id", "0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f")
}

func (c chunkCase) msgs() []*extprocv3.HttpBody {
	msgs := make([]*extprocv3.HttpBody, len(c.chunks))
	for i, ch := range c.chunks {
		msgs[i] = &extprocv3.HttpBody{Body: ch, EndOfStream: i == len(c.chunks)-1}
	}
	return msgs
}

// checkChunkStream answers one stream from tmpl and checks what the client
// gets: OpenAI chunks ending in [DONE], the usage chunk only when asked
// for, the usage recorded; it returns the reply bytes per chunk.
func checkChunkStream(b *testing.B, tmpl *upstream, c chunkCase) float64 {
	b.Helper()
	u := *tmpl
	if _, err := u.responseHeaders(c.respHeaders()); err != nil {
		b.Fatal(err)
	}
	var got bytes.Buffer
	var last *extprocv3.ProcessingResponse
	replies := 0
	for _, m := range c.msgs() {
		resp, err := u.responseBody(m)
		if err != nil {
			b.Fatal(err)
		}
		replies += proto.Size(resp)
		if bm := resp.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
			got.Write(bm.GetBody())
		} else {
			got.Write(m.Body)
		}
		last = resp
	}
	out := got.String()
	if !strings.HasSuffix(out, "data: [DONE]\n\n") || !strings.HasPrefix(out, "data: {") {
		b.Fatalf("client stream is not a complete OpenAI stream:\n%s", out)
	}
	if hasUsage := strings.Contains(out, `"usage":{`); hasUsage != c.usage {
		b.Fatalf("usage chunk in the stream %v, asked for %v:\n%s", hasUsage, c.usage, out)
	}
	md := last.GetDynamicMetadata().GetFields()["llmproc"].GetStructValue().GetFields()
	if md["completion_tokens"].GetNumberValue() != float64(c.output) || md["outcome"].GetStringValue() != "ok" {
		b.Fatalf("usage not tracked: %v", md)
	}
	return float64(replies) / float64(len(c.chunks))
}

// BenchmarkChunk measures one content chunk in the middle of a stream.
func BenchmarkChunk(b *testing.B) {
	for _, c := range chunkCases(b) {
		b.Run(c.name, func(b *testing.B) {
			tmpl := chunkAttempt(b, c)
			b.ReportMetric(checkChunkStream(b, tmpl, c), "replyB/chunk")
			u := *tmpl
			if _, err := u.responseHeaders(c.respHeaders()); err != nil {
				b.Fatal(err)
			}
			msgs := c.msgs()
			for _, m := range msgs[:c.mid] {
				if _, err := u.responseBody(m); err != nil {
					b.Fatal(err)
				}
			}
			m := msgs[c.mid]
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := u.responseBody(m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/chunk")
		})
	}
}

// BenchmarkChunkStream measures whole streamed answers, per chunk.
func BenchmarkChunkStream(b *testing.B) {
	for _, c := range chunkCases(b) {
		b.Run(c.name, func(b *testing.B) {
			tmpl := chunkAttempt(b, c)
			checkChunkStream(b, tmpl, c)
			rh, msgs := c.respHeaders(), c.msgs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				u := *tmpl
				if _, err := u.responseHeaders(rh); err != nil {
					b.Fatal(err)
				}
				for _, m := range msgs {
					if _, err := u.responseBody(m); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			n := float64(b.N * len(msgs))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/chunk")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/chunk")
		})
	}
}
