package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// These tests inject provider faults (e2e/fake) into answers on their way
// through the stand-in and llmproc (issue 12, "answers lost or corrupted").

// rawPost sends body to path and reads the answer as sent: no transparent
// decompression, so a content-encoding label that lies shows.
func rawPost(t *testing.T, url, body string, hdr ...string) result {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("content-type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

var anthropicHeaders = []string{"x-api-key", "client-secret", "anthropic-version", "2023-06-01"}

const anthropicMsg = `{"model":"gpt-4o-mini","max_tokens":64,"stream":%v,"messages":[{"role":"user","content":"Say hello"}]}`

// TestAnswersCompressed: a provider that compresses despite
// accept-encoding: identity. Before, the usage stripper swallowed a gzip
// stream (the client got a plaintext error labelled gzip), a stream with
// usage asked for got plaintext appended to gzip, and JSON counted as cut.
func TestAnswersCompressed(t *testing.T) {
	e := start(t)
	e.primary.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Content: "Hello compressed world", Usage: fakeopenai.Usage{Prompt: 7, Completion: 3}}
	})
	answers := 0
	for _, enc := range []string{"gzip", "deflate", "br", "zstd"} {
		for _, tc := range []struct {
			name, path, body string
			hdr              []string
		}{
			{"stream", "/v1/chat/completions", chat("gpt-4o-mini", true, ""), nil},
			{"stream with usage", "/v1/chat/completions", chat("gpt-4o-mini", true, `"stream_options":{"include_usage":true},`), nil},
			{"json", "/v1/chat/completions", chat("gpt-4o-mini", false, ""), nil},
			{"anthropic stream", "/v1/messages", fmt.Sprintf(anthropicMsg, true), anthropicHeaders},
			{"anthropic json", "/v1/messages", fmt.Sprintf(anthropicMsg, false), anthropicHeaders},
		} {
			e.primary.InjectFaults(fake.Fault{Encoding: enc})
			r := rawPost(t, e.URL()+tc.path, tc.body, tc.hdr...)
			answers++
			if r.status != 200 || r.err != nil || r.header.Get("content-encoding") != "" {
				t.Errorf("%s %s: status %d, err %v, content-encoding %q", enc, tc.name, r.status, r.err, r.header.Get("content-encoding"))
				continue
			}
			if got := answerText(t, r.body); got != "Hello compressed world" {
				t.Errorf("%s %s: text %q in\n%s", enc, tc.name, got, r.body)
			}
		}
	}
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_answer_handling_total"], map[string]string{"handling": "decoded"}) == float64(answers)
	})
	if got := sum(m["llmproc_answer_handling_total"], map[string]string{"handling": "decoded"}); got != float64(answers) {
		t.Errorf("%v answers decoded, want %d", got, answers)
	}
	if got := sum(m["llmproc_tokens_total"], map[string]string{"type": "input"}); got != float64(7*answers) {
		t.Errorf("input tokens %v, want %d: usage read from every answer", got, 7*answers)
	}
	if got := sum(m["llmproc_requests_total"], map[string]string{"status_class": "2xx"}); got != float64(answers) {
		t.Errorf("2xx attempts %v, want %d", got, answers)
	}
}

// answerText is the reply text of an OpenAI or Anthropic answer, JSON or SSE.
func answerText(t *testing.T, body []byte) string {
	t.Helper()
	if gjson.ValidBytes(body) {
		if s := gjson.GetBytes(body, "choices.0.message.content"); s.Exists() {
			return s.String()
		}
		return gjson.GetBytes(body, "content.0.text").String()
	}
	var b strings.Builder
	for line := range strings.SplitSeq(string(body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		b.WriteString(gjson.Get(data, "choices.0.delta.content").String())
		if gjson.Get(data, "delta.type").String() == "text_delta" {
			b.WriteString(gjson.Get(data, "delta.text").String())
		}
	}
	return b.String()
}

// TestAnswersNoNewlineBounded: a provider stream with no newline. Before,
// llmproc held all of it (200 MB drove RSS to 1.88 GB) and the client got
// every byte; now the answer ends at limits.max_answer_buffer_bytes with an
// error event in the client's API shape, recorded as undelivered.
func TestAnswersNoNewlineBounded(t *testing.T) {
	e := startAnswers(t, "max_answer_buffer_bytes: 1048576, ")
	for _, tc := range []struct {
		name, path, body string
		hdr              []string
	}{
		{"openai", "/v1/chat/completions", chat("gpt-4o-mini", true, ""), nil},
		{"anthropic", "/v1/messages", fmt.Sprintf(anthropicMsg, true), anthropicHeaders},
	} {
		e.primary.InjectFaults(fake.NoNewline(16 << 20))
		r := rawPost(t, e.URL()+tc.path, tc.body, tc.hdr...)
		if r.status != 200 || len(r.body) > 1<<20+4096 || !strings.Contains(string(r.body), "max_answer_buffer_bytes") {
			t.Errorf("%s: status %d, %d bytes, ends %q", tc.name, r.status, len(r.body), r.body[max(0, len(r.body)-300):])
		}
	}
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_answer_handling_total"], map[string]string{"handling": "undelivered_too_large"}) == 2
	})
	if got := sum(m["llmproc_requests_total"], map[string]string{"status_class": "5xx"}); got != 2 {
		t.Errorf("5xx attempts %v: an undelivered answer is no 2xx", got)
	}
	if got := sum(m["llmproc_answer_buffered_bytes"], nil); got != 0 {
		t.Errorf("%v bytes still held", got)
	}
	if !strings.Contains(e.accessLog.String(), "undelivered") {
		t.Errorf("access log does not say undelivered:\n%s", e.accessLog.String())
	}
}

// startAnswers is start with extra limits (YAML keys with a trailing ", ").
func startAnswers(t *testing.T, limits string) *env {
	t.Helper()
	e := &env{primary: fakeopenai.New(fakeopenai.Options{}), secondary: fakeopenai.New(fakeopenai.Options{})}
	t.Cleanup(func() { e.primary.Close(); e.secondary.Close() })
	cfg := strings.Replace(configTemplate, "limits: {", "limits: {"+limits, 1)
	e.Stack, e.accessLog, e.log = startStack(t, fmt.Sprintf(cfg, e.primary.URL(), e.secondary.URL()),
		map[string]string{"PRIMARY_KEY": "sk-primary", "SECONDARY_KEY": "sk-secondary"})
	return e
}

// TestAnswersLargeAnthropicJSON: an Anthropic-API client's answer rewritten
// whole goes out in one ext_proc reply. Before, a reply above the gRPC send
// limit (the request limit + 1 MiB) ended the stream: the client got a 200,
// no body and a reset, and llmproc recorded a 2xx with full usage.
func TestAnswersLargeAnthropicJSON(t *testing.T) {
	e := start(t)
	const n = 3 << 20
	e.primary.InjectFaults(fake.HugeJSON(n))
	r := rawPost(t, e.URL()+"/v1/messages", fmt.Sprintf(anthropicMsg, false), anthropicHeaders...)
	if r.status != 200 || r.err != nil || len(gjson.GetBytes(r.body, "content.0.text").String()) != n {
		t.Fatalf("status %d, err %v, %d bytes: %.300s", r.status, r.err, len(r.body), r.body)
	}
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_tokens_total"], map[string]string{"type": "output"}) == n/4
	})
	if got := sum(m["llmproc_tokens_total"], map[string]string{"type": "output"}); got != n/4 {
		t.Errorf("output tokens %v, want %d", got, n/4)
	}
}

// TestAnswersInBandError: a provider that sends an error event mid-stream
// (fake.Fault.ErrorAfter). The client gets it in its API shape and the
// attempt is not counted as a clean 2xx.
func TestAnswersInBandError(t *testing.T) {
	e := start(t)
	e.primary.InjectFaults(fake.Fault{ErrorAfter: 2}, fake.Fault{ErrorAfter: 2})
	r := rawPost(t, e.URL()+"/v1/chat/completions", chat("gpt-4o-mini", true, ""))
	if r.status != 200 || !strings.Contains(string(r.body), `"type":"server_error"`) || strings.Contains(string(r.body), "[DONE]") {
		t.Errorf("OpenAI client: %d\n%s", r.status, r.body)
	}
	r = rawPost(t, e.URL()+"/v1/messages", fmt.Sprintf(anthropicMsg, true), anthropicHeaders...)
	if r.status != 200 || !strings.Contains(string(r.body), "event: error") || strings.Contains(string(r.body), "message_stop") {
		t.Errorf("Anthropic client: %d\n%s", r.status, r.body)
	}
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_requests_total"], nil) == 2
	})
	if got := sum(m["llmproc_requests_total"], map[string]string{"status_class": "2xx"}); got != 0 {
		t.Errorf("%v attempts with an in-band error counted as 2xx", got)
	}
}

// TestAnswersGlobalBound: four answers at once, each within its own bound,
// hold no more than limits.max_buffered_bytes together (before, four 50 MB
// answers took RSS from 87 to 573 MB). Each answer is 1 MiB of text, kept
// twice (by the usage tracker and the conversion for an Anthropic client),
// and stops after 900 KiB until all four have that much in, so which fit is
// certain: two (2 × 2 × 900 KiB) fit 4.5 MiB, a third would not; the others
// get the error in their API shape and are recorded undelivered.
func TestAnswersGlobalBound(t *testing.T) {
	e := startAnswers(t, "max_answer_buffer_bytes: 2621440, max_buffered_bytes: 4718592, ")
	const size, first = 1 << 20, 900 << 10
	release := make(chan struct{})
	huge := fake.HugeJSON(size)
	body := func(w io.Writer) error { // HugeJSON, paused after first bytes
		pw := &pauseWriter{w: w, after: first, release: release}
		return huge.Body(pw)
	}
	for range 4 {
		e.primary.InjectFaults(fake.Fault{ContentType: "application/json", Body: body})
	}
	results := make(chan result, 4)
	for range 4 {
		go func() {
			results <- rawPost(t, e.URL()+"/v1/messages", fmt.Sprintf(anthropicMsg, false), anthropicHeaders...)
		}()
	}
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_answer_handling_total"], map[string]string{"handling": "undelivered_buffers_full"}) == 2
	})
	if held := sum(m["llmproc_answer_buffered_bytes"], nil); held > 4718592 || held == 0 {
		t.Errorf("%v bytes held with two answers paused, want some, at most 4718592", held)
	}
	close(release)
	delivered := 0
	for range 4 {
		r := <-results
		switch {
		case len(gjson.GetBytes(r.body, "content.0.text").String()) == size:
			delivered++
		case !strings.Contains(string(r.body), "max_buffered_bytes"):
			t.Errorf("neither delivered nor refused: %d %.300s", r.status, r.body)
		}
	}
	if delivered != 2 {
		t.Errorf("%d answers delivered, want 2", delivered)
	}
	m = e.metricsWhen(t, func(m map[string][]sample) bool { return sum(m["llmproc_answer_buffered_bytes"], nil) == 0 })
	if held := sum(m["llmproc_answer_buffered_bytes"], nil); held != 0 {
		t.Errorf("%v bytes still held", held)
	}
}

// pauseWriter passes writes on, and once after bytes have gone waits for
// release.
type pauseWriter struct {
	w       io.Writer
	after   int
	n       int
	release <-chan struct{}
}

func (p *pauseWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	before := p.n
	p.n += n
	if before < p.after && p.n >= p.after {
		if f, ok := p.w.(http.Flusher); ok {
			f.Flush()
		}
		<-p.release
	}
	return n, err
}

func (p *pauseWriter) Flush() {
	if f, ok := p.w.(http.Flusher); ok {
		f.Flush()
	}
}
