package fake

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmproc/llmproc/filter/decode"
)

const (
	testSSE = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n" +
		"data: [DONE]\n\n"
	testJSON = `{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":1}}`
)

// faultServer answers /sse with testSSE (event by event, flushed) and
// anything else with testJSON, with the faults injected.
func faultServer(t *testing.T, faults ...Fault) *Server[Request] {
	t.Helper()
	s := New(NewRequest)
	s.InjectFaults(faults...)
	h := s.Record(func(w http.ResponseWriter, r *http.Request, _ Request) {
		if r.URL.Path == "/sse" {
			w.Header().Set("Content-Type", "text/event-stream")
			for ev := range strings.SplitAfterSeq(testSSE, "\n\n") {
				io.WriteString(w, ev) //nolint:errcheck
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(testJSON)))
		io.WriteString(w, testJSON) //nolint:errcheck
	})
	if err := s.Start("127.0.0.1:0", h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func get(t *testing.T, url string) (*http.Response, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func decoded(t *testing.T, enc string, b []byte) string {
	t.Helper()
	out, err := decode.Body(enc, b, 1<<20)
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	return string(out)
}

func TestFaultEncoding(t *testing.T) {
	for _, enc := range []string{"gzip", "deflate", "br", "zstd"} {
		for path, want := range map[string]string{"/sse": testSSE, "/json": testJSON} {
			s := faultServer(t, Fault{Encoding: enc})
			resp, body, err := get(t, s.URL()+path)
			if err != nil {
				t.Fatal(err)
			}
			// net/http sets the length of a short answer it sends at once.
			if ce, cl := resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Length"); ce != enc || cl != "" && cl != strconv.Itoa(len(body)) {
				t.Errorf("%s %s: content-encoding %q, content-length %q", enc, path, ce, cl)
			}
			if got := decoded(t, enc, body); got != want {
				t.Errorf("%s %s: decoded %q, want %q", enc, path, got, want)
			}
		}
	}
}

func TestFaultBodies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		path  string
		fault Fault
		want  string
	}{
		{"no fault", "/sse", Fault{}, testSSE},
		{"drop usage sse", "/sse", Fault{DropUsage: true},
			"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\ndata: [DONE]\n\n"},
		{"drop usage json", "/json", Fault{DropUsage: true}, `{"id":"x","choices":[{"message":{"content":"hi"}}]}`},
		{"error after 1", "/sse", Fault{ErrorAfter: 1},
			"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n" + OpenAIStreamError},
		{"anthropic error", "/sse", Fault{ErrorAfter: 2, StreamError: AnthropicStreamError},
			strings.Join(strings.SplitAfter(testSSE, "\n\n")[:2], "") + AnthropicStreamError},
		{"no newline", "/json", NoNewline(200 << 10), "data: " + strings.Repeat("x", 200<<10)},
		{"huge json", "/json", HugeJSON(3), `{"id":"chatcmpl-huge","object":"chat.completion","created":1700000000,"model":"huge","choices":[{"index":0,"message":{"role":"assistant","content":"xxx"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":0,"total_tokens":10}}`},
	} {
		s := faultServer(t, tc.fault)
		_, body, err := get(t, s.URL()+tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(body) != tc.want {
			t.Errorf("%s: body %q, want %q", tc.name, body, tc.want)
		}
	}
}

func TestFaultResetBeforeHeaders(t *testing.T) {
	s := faultServer(t, Fault{ResetBeforeHeaders: true})
	if resp, _, err := get(t, s.URL()+"/json"); err == nil {
		t.Fatalf("got %d, want a reset", resp.StatusCode)
	}
	if len(s.Requests()) != 1 {
		t.Errorf("the reset request is recorded all the same: %d requests", len(s.Requests()))
	}
	if _, body, err := get(t, s.URL()+"/json"); err != nil || string(body) != testJSON {
		t.Errorf("next request: %q, %v (faults are one per request)", body, err)
	}
}

func TestFaultStallEndsWithClient(t *testing.T) {
	for _, f := range []Fault{{Stall: time.Hour}, {StallAfter: 1}} {
		s := faultServer(t, f)
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/sse", nil)
		c := &http.Client{Timeout: 100 * time.Millisecond}
		resp, err := c.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		var te interface{ Timeout() bool }
		if !errors.As(err, &te) || !te.Timeout() {
			t.Errorf("%+v: %v, want the client's timeout", f, err)
		}
	}
}
