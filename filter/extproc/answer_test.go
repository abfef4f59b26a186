package extproc

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/tidwall/gjson"
)

// answerConfig is testConfig with the answer bounds: 64 KiB an answer,
// 128 KiB over all.
var answerConfig = strings.Replace(testConfig, "limits: {max_request_bytes: %d}",
	"limits: {max_request_bytes: %d, max_answer_buffer_bytes: 65536, max_buffered_bytes: 131072}", 1)

func newAnswerHarness(t *testing.T, maxReply int) *harness {
	t.Helper()
	return newHarnessOpts(t, Options{Config: fixedRuntime{compileTest(t, fmt.Sprintf(answerConfig, 4096))}, MaxReplyBytes: maxReply})
}

// exchange is one upstream attempt seen from Envoy's side.
type exchange struct {
	out     []byte            // what the client gets
	replies []string          // the body each reply carried ("=" for unchanged)
	set     map[string]string // response headers set
	removed []string          // response headers removed
	md      map[string]string // the final dynamic metadata
}

// runExchange drives one upstream stream: request, response headers kv,
// then chunks. client is the client's API as the router decided it ("" for
// OpenAI).
func runExchange(t *testing.T, h *harness, client, request string, chunks [][]byte, kv ...string) exchange {
	t.Helper()
	s := h.stream(RoleUpstream)
	roundTrip(t, s, withDecisions(reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions"), attrsPrimary),
		map[string]string{KeyClient: client}))
	if client == clientAnthropic { // the same request in the Messages API
		request = strings.Replace(request, `"messages"`, `"max_tokens":64,"messages"`, 1)
	}
	roundTrip(t, s, reqBody(request))
	resp := roundTrip(t, s, respHeaders(false, kv...))
	c := resp.GetResponseHeaders().GetResponse()
	x := exchange{set: setHeaders(c), removed: c.GetHeaderMutation().GetRemoveHeaders(), md: map[string]string{}}
	for i, chunk := range chunks {
		resp := roundTrip(t, s, respBodyBytes(chunk, i == len(chunks)-1))
		if bm := resp.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
			x.out = append(x.out, bm.GetBody()...)
			x.replies = append(x.replies, string(bm.GetBody()))
		} else {
			x.out = append(x.out, chunk...)
			x.replies = append(x.replies, "=")
		}
		for k, v := range resp.GetDynamicMetadata().GetFields()["llmproc"].GetStructValue().GetFields() {
			if v.GetStringValue() != "" {
				x.md[k] = v.GetStringValue()
			} else {
				x.md[k] = strconv.FormatFloat(v.GetNumberValue(), 'f', -1, 64)
			}
		}
	}
	_ = s.CloseSend()
	_, _ = s.Recv() // the server ends the stream: done has run
	return x
}

func respBodyBytes(body []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: body, EndOfStream: eos}}}
}

const (
	answerStream = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n" +
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n" +
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}\n\n" +
		"data: [DONE]\n\n"
	answerJSON = `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`
	streamReq  = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	jsonReq    = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
)

// compress encodes each piece as the coding names it, flushing after each
// as a streaming server does, and returns the compressed pieces.
func compress(t *testing.T, coding string, pieces []string) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Flush() error
		Close() error
	}
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		z, _ := zstd.NewWriter(&buf)
		w = z
	}
	var out [][]byte
	for i, p := range pieces {
		w.Write([]byte(p)) //nolint:errcheck
		if i == len(pieces)-1 {
			w.Close() //nolint:errcheck
		} else {
			w.Flush() //nolint:errcheck
		}
		out = append(out, bytes.Clone(buf.Bytes()))
		buf.Reset()
	}
	return out
}

// TestAnswerCompressedStream: a provider that compresses its stream despite
// accept-encoding: identity. Before, the usage stripper swallowed the gzip
// body and the client got plaintext labelled gzip.
func TestAnswerCompressedStream(t *testing.T) {
	events := strings.SplitAfter(answerStream, "\n\n")
	events = events[:len(events)-1]
	for _, coding := range []string{"gzip", "deflate", "br", "zstd"} {
		t.Run(coding, func(t *testing.T) {
			h := newAnswerHarness(t, 0)
			x := runExchange(t, h, "", streamReq, compress(t, coding, events),
				":status", "200", "content-type", "text/event-stream", "content-encoding", coding)
			want := strings.Replace(answerStream, events[2], "", 1) // the client did not ask for usage
			if string(x.out) != want {
				t.Errorf("client got %q, want %q", x.out, want)
			}
			// Each event comes out in the reply to the chunk that carried it.
			if x.replies[0] != events[0] || x.replies[1] != events[1] {
				t.Errorf("replies %q: not decoded chunk by chunk", x.replies)
			}
			if !strings.Contains(strings.Join(x.removed, ","), "content-encoding") {
				t.Errorf("content-encoding not removed: %v", x.removed)
			}
			if x.md["outcome"] != "ok" || x.md["usage"] != "known" || x.md["prompt_tokens"] != "10" {
				t.Errorf("metadata %v", x.md)
			}
			if got := counter(t, h.reg, "llmproc_answer_handling_total", map[string]string{"handling": "decoded"}); got != 1 {
				t.Errorf("decoded answers %v", got)
			}
		})
	}
}

// TestAnswerCompressedJSON: before, a gzip JSON answer passed but counted as
// cut, its usage unread.
func TestAnswerCompressedJSON(t *testing.T) {
	for _, client := range []string{"", clientAnthropic} {
		h := newAnswerHarness(t, 0)
		x := runExchange(t, h, client, jsonReq, compress(t, "gzip", []string{answerJSON[:40], answerJSON[40:]}),
			":status", "200", "content-type", "application/json", "content-encoding", "gzip")
		if client == "" && string(x.out) != answerJSON {
			t.Errorf("client got %q", x.out)
		}
		if client == clientAnthropic && gjson.GetBytes(x.out, "content.0.text").String() != "Hello" {
			t.Errorf("Anthropic client got %s", x.out)
		}
		if x.md["outcome"] != "ok" || x.md["prompt_tokens"] != "10" {
			t.Errorf("client %q: metadata %v", client, x.md)
		}
	}
}

func TestAnswerUndecodable(t *testing.T) {
	// Only read by llmproc: passes untouched, marked, usage unknown.
	h := newAnswerHarness(t, 0)
	x := runExchange(t, h, "", jsonReq, [][]byte{[]byte("\x1f\x9dcompressed")},
		":status", "200", "content-type", "application/json", "content-encoding", "compress")
	if string(x.out) != "\x1f\x9dcompressed" || x.set[HeaderAnswer] != "passthrough; content-encoding=compress" {
		t.Errorf("out %q, headers %v", x.out, x.set)
	}
	if x.md["outcome"] != "ok" || x.md["usage"] != "unknown" {
		t.Errorf("metadata %v", x.md)
	}
	// An Anthropic client needs it translated: a 502 in its API shape.
	x = runExchange(t, h, clientAnthropic, jsonReq, [][]byte{[]byte("\x1f\x9dcomp"), []byte("ressed")},
		":status", "200", "content-type", "application/json", "content-encoding", "compress")
	if x.set[":status"] != "502" || gjson.GetBytes(x.out, "type").String() != "error" || x.md["outcome"] != "undelivered" {
		t.Errorf("out %s, headers %v, metadata %v", x.out, x.set, x.md)
	}
	// Corrupt data in a coding llmproc decodes.
	x = runExchange(t, h, "", streamReq, [][]byte{[]byte("not gzip at all")},
		":status", "200", "content-type", "text/event-stream", "content-encoding", "gzip")
	if !strings.Contains(string(x.out), CodeAnswerUndelivered) || x.md["outcome"] != "undelivered" {
		t.Errorf("out %s, metadata %v", x.out, x.md)
	}
	if got := counter(t, h.reg, "llmproc_requests_total", map[string]string{"status_class": "2xx"}); got != 1 {
		t.Errorf("2xx attempts %v, want only the passthrough one", got)
	}
}

// TestAnswerNoNewlineBounded: a stream with no newline. Before, every byte
// of it was held (1.88 GB of RSS for 200 MB); now the answer ends at the
// bound with an error event and nothing more is held.
func TestAnswerNoNewlineBounded(t *testing.T) {
	for _, client := range []string{"", clientAnthropic} {
		h := newAnswerHarness(t, 0)
		chunks := [][]byte{[]byte("data: ")}
		for range 64 { // 1 MiB
			chunks = append(chunks, bytes.Repeat([]byte("x"), 16<<10))
		}
		x := runExchange(t, h, client, streamReq, chunks, ":status", "200", "content-type", "text/event-stream")
		if peak := h.srv.bufferedPeak.Load(); peak > 64<<10 {
			t.Errorf("held %d bytes, bound 65536", peak)
		}
		if n := h.srv.buffered.Load(); n != 0 {
			t.Errorf("%d bytes still held after the stream", n)
		}
		if len(x.out) > 1024 || !strings.Contains(string(x.out), "max_answer_buffer_bytes") {
			t.Errorf("client %q got %d bytes: %.300s", client, len(x.out), x.out)
		}
		if client == clientAnthropic && !strings.HasPrefix(string(x.out), "event: error\n") {
			t.Errorf("Anthropic client got %s", x.out)
		}
		if x.md["outcome"] != "undelivered" {
			t.Errorf("metadata %v", x.md)
		}
	}
}

// hugeJSON is an OpenAI JSON answer of about n bytes, in 16 KiB chunks.
func hugeJSON(n int) [][]byte {
	body := []byte(strings.Replace(answerJSON, `"Hello"`, `"`+strings.Repeat("x", n)+`"`, 1))
	var out [][]byte
	for len(body) > 16<<10 {
		out, body = append(out, body[:16<<10]), body[16<<10:]
	}
	return append(out, body)
}

func TestAnswerJSONBounded(t *testing.T) {
	h := newAnswerHarness(t, 0)
	// Streaming to an OpenAI client already: delivered whole, usage unread.
	chunks := hugeJSON(100 << 10)
	x := runExchange(t, h, "", jsonReq, chunks, ":status", "200", "content-type", "application/json")
	if string(x.out) != string(bytes.Join(chunks, nil)) || x.md["outcome"] != "ok" || x.md["usage"] != "unknown" {
		t.Errorf("out %d bytes, metadata %v", len(x.out), x.md)
	}
	// Rewritten for an Anthropic client: an error in its shape.
	x = runExchange(t, h, clientAnthropic, jsonReq, chunks, ":status", "200", "content-type", "application/json")
	if gjson.GetBytes(x.out, "error.type").String() != "api_error" || x.md["outcome"] != "undelivered" {
		t.Errorf("out %.300s, metadata %v", x.out, x.md)
	}
	if peak := h.srv.bufferedPeak.Load(); peak > 64<<10 {
		t.Errorf("held %d bytes, bound 65536", peak)
	}
}

// TestAnswerGlobalBound: four answers at once, each within its own bound,
// cannot together hold more than limits.max_buffered_bytes.
func TestAnswerGlobalBound(t *testing.T) {
	h := newAnswerHarness(t, 0)
	// 30 KiB, kept by the tracker and the conversion: 60 KiB each.
	chunks := hugeJSON(30 << 10)
	type stream struct {
		s   extprocv3.ExternalProcessor_ProcessClient
		out []byte
	}
	var streams []*stream
	for range 4 {
		s := h.stream(RoleUpstream)
		roundTrip(t, s, withDecisions(reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/messages"), attrsPrimary),
			map[string]string{KeyClient: clientAnthropic}))
		roundTrip(t, s, reqBody(strings.Replace(jsonReq, `"messages"`, `"max_tokens":64,"messages"`, 1)))
		roundTrip(t, s, respHeaders(false, ":status", "200", "content-type", "application/json"))
		streams = append(streams, &stream{s: s})
	}
	for i, c := range chunks { // interleaved, as concurrent answers arrive
		for _, st := range streams {
			resp := roundTrip(t, st.s, respBodyBytes(c, i == len(chunks)-1))
			st.out = append(st.out, resp.GetResponseBody().GetResponse().GetBodyMutation().GetBody()...)
		}
	}
	var wg sync.WaitGroup
	delivered := 0
	for _, st := range streams {
		if gjson.GetBytes(st.out, "type").String() == "message" {
			delivered++
		} else if !strings.Contains(string(st.out), "max_buffered_bytes") {
			t.Errorf("neither delivered nor refused: %.200s", st.out)
		}
		wg.Go(func() { st.s.CloseSend(); st.s.Recv() }) //nolint:errcheck
	}
	wg.Wait()
	if delivered != 2 {
		t.Errorf("%d answers delivered, want the 2 that fit 128 KiB", delivered)
	}
	if peak := h.srv.bufferedPeak.Load(); peak > 128<<10 {
		t.Errorf("held %d bytes over all answers, bound 131072", peak)
	}
}

// TestAnswerReplyTooLarge: before, a reply above the gRPC send limit ended
// the stream: the client got a 200, no body and a reset, and llmproc
// recorded a 2xx with full usage.
func TestAnswerReplyTooLarge(t *testing.T) {
	h := newAnswerHarness(t, 20<<10)
	x := runExchange(t, h, clientAnthropic, jsonReq, hugeJSON(30<<10), ":status", "200", "content-type", "application/json")
	// The provider reported usage for the whole answer it was paid for.
	if gjson.GetBytes(x.out, "error.message").String() == "" || x.md["outcome"] != "undelivered" || x.md["usage"] != "known" {
		t.Errorf("out %.300s, metadata %v", x.out, x.md)
	}
	if got := counter(t, h.reg, "llmproc_requests_total", map[string]string{"status_class": "2xx"}); got != 0 {
		t.Errorf("an undelivered answer counted as 2xx")
	}
}
