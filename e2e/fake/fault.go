package fake

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Fault is what goes wrong with one answer of any fake provider: the
// misbehaviours of real providers and networks that the e2e tests inject.
// Every fake built on Server takes them, through InjectFaults (one fault per
// request, in order) or ScriptFaults; the zero Fault changes nothing.
//
// The stages apply in this order: ResetBeforeHeaders, Stall, then the
// answer (the provider's own, or Body) passes DropUsage, ErrorAfter and
// StallAfter (SSE answers are cut into events for them) and last Encoding.
type Fault struct {
	// ResetBeforeHeaders closes the connection without answering.
	ResetBeforeHeaders bool
	// Stall waits this long (or until the client goes away) before the
	// answer starts: a per-try timeout's provider.
	Stall time.Duration
	// Encoding compresses the answer as "gzip", "deflate", "br" or "zstd"
	// and labels it so (content-encoding, no content-length), whatever the
	// request's accept-encoding asked for. SSE answers are flushed through
	// the compressor event by event, as a streaming server does.
	Encoding string
	// DropUsage removes what reports usage: "usage" and "message.usage"
	// (OpenAI, Anthropic), "usageMetadata" (Gemini), and drops the OpenAI
	// usage-only chunk (choices []) of a stream.
	DropUsage bool
	// ErrorAfter, when positive, ends an SSE answer after that many events
	// with StreamError (default OpenAIStreamError), then closes it cleanly:
	// a provider's in-band error mid-stream.
	ErrorAfter  int
	StreamError string
	// StallAfter, when positive, stops an SSE answer after that many events
	// and holds the connection open until the client goes away.
	StallAfter int
	// Body, when set, replaces the provider's answer: status 200 with
	// ContentType and the bytes Body writes (see NoNewline, HugeJSON).
	Body        func(w io.Writer) error
	ContentType string
}

// In-band stream errors as providers send them.
const (
	OpenAIStreamError    = `data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}` + "\n\n"
	AnthropicStreamError = "event: error\n" + `data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}` + "\n\n"
)

// bodyPiece is how much a Body helper writes between flushes.
const bodyPiece = 64 << 10

// NoNewline is an SSE answer of one "data: " line n bytes long that never
// ends: no newline ever comes, then the connection closes.
func NoNewline(n int64) Fault {
	return Fault{ContentType: "text/event-stream", Body: func(w io.Writer) error {
		if _, err := io.WriteString(w, "data: "); err != nil {
			return err
		}
		return repeat(w, 'x', n)
	}}
}

// HugeJSON is an OpenAI chat completion whose content is n bytes of text,
// written in pieces so the fake holds none of it, with usage reported.
func HugeJSON(n int64) Fault {
	return Fault{ContentType: "application/json", Body: func(w io.Writer) error {
		head := `{"id":"chatcmpl-huge","object":"chat.completion","created":1700000000,"model":"huge",` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":"`
		if _, err := io.WriteString(w, head); err != nil {
			return err
		}
		if err := repeat(w, 'x', n); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":%d,"total_tokens":%d}}`, n/4, 10+n/4)
		return err
	}}
}

// repeat writes n bytes c, flushing every bodyPiece when w can.
func repeat(w io.Writer, c byte, n int64) error {
	piece := bytes.Repeat([]byte{c}, bodyPiece)
	for n > 0 {
		k := min(n, int64(len(piece)))
		if _, err := w.Write(piece[:k]); err != nil {
			return err
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		n -= k
	}
	return nil
}

// InjectFaults queues faults, one per request, before any ScriptFaults.
func (s *Server[R]) InjectFaults(f ...Fault) { s.faults.Enqueue(f...) }

// ScriptFaults sets the fault of each request not answered from the
// InjectFaults queue; nil restores no fault.
func (s *Server[R]) ScriptFaults(f func(R) Fault) { s.faults.Script(f) }

// withFault answers r as answer does, with the fault f applied.
func withFault(f Fault, w http.ResponseWriter, r *http.Request, answer func(http.ResponseWriter)) {
	if f.ResetBeforeHeaders {
		panic(http.ErrAbortHandler) // net/http closes the connection unanswered
	}
	if f.Stall > 0 {
		select {
		case <-time.After(f.Stall):
		case <-r.Context().Done():
			return
		}
	}
	if f.Encoding == "" && !f.DropUsage && f.ErrorAfter == 0 && f.StallAfter == 0 && f.Body == nil {
		answer(w)
		return
	}
	fw := &faultWriter{f: f, w: w, done: r.Context().Done()}
	if f.Body != nil {
		fw.Header().Set("Content-Type", f.ContentType)
		fw.WriteHeader(http.StatusOK)
		f.Body(fw) //nolint:errcheck // the client went away
	} else {
		answer(fw)
	}
	fw.finish()
}

// faultWriter applies a Fault's body stages to what a provider writes.
type faultWriter struct {
	f    Fault
	w    http.ResponseWriter
	done <-chan struct{}

	wrote   bool
	sse     bool
	buf     []byte // SSE: the event not yet complete; JSON with DropUsage: the body
	events  int
	stopped bool // ErrorAfter or StallAfter reached: the rest is dropped
	enc     io.WriteCloser
	flusher interface{ Flush() error }
}

func (fw *faultWriter) Header() http.Header { return fw.w.Header() }

func (fw *faultWriter) WriteHeader(code int) {
	if fw.wrote {
		return
	}
	fw.wrote = true
	h := fw.w.Header()
	fw.sse = strings.HasPrefix(h.Get("Content-Type"), "text/event-stream")
	if fw.f.Encoding != "" || fw.f.DropUsage || fw.f.ErrorAfter > 0 {
		h.Del("Content-Length")
	}
	if fw.f.Encoding != "" {
		h.Set("Content-Encoding", fw.f.Encoding)
		fw.enc, fw.flusher = newEncoder(fw.f.Encoding, fw.w)
	}
	fw.w.WriteHeader(code)
}

func (fw *faultWriter) Write(p []byte) (int, error) {
	fw.WriteHeader(http.StatusOK)
	switch {
	case fw.stopped:
	case fw.sse && (fw.f.DropUsage || fw.f.ErrorAfter > 0 || fw.f.StallAfter > 0):
		fw.buf = append(fw.buf, p...)
		for !fw.stopped {
			i := bytes.Index(fw.buf, []byte("\n\n"))
			if i < 0 {
				break
			}
			ev := fw.buf[:i+2]
			fw.event(ev)
			fw.buf = fw.buf[i+2:]
		}
	case !fw.sse && fw.f.DropUsage:
		fw.buf = append(fw.buf, p...)
	default:
		if err := fw.out(p); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// event passes one whole SSE event through the event stages.
func (fw *faultWriter) event(ev []byte) {
	if fw.f.DropUsage {
		if ev = dropEventUsage(ev); ev == nil {
			return
		}
	}
	fw.out(ev) //nolint:errcheck // a gone client ends the handler's own writes
	fw.events++
	switch {
	case fw.f.ErrorAfter > 0 && fw.events == fw.f.ErrorAfter:
		fw.stopped = true
		fw.out([]byte(cmpOr(fw.f.StreamError, OpenAIStreamError))) //nolint:errcheck
		fw.Flush()
	case fw.f.StallAfter > 0 && fw.events == fw.f.StallAfter:
		fw.stopped = true
		fw.Flush()
		<-fw.done
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// out writes to the client, through the compressor when there is one.
func (fw *faultWriter) out(p []byte) error {
	if fw.enc != nil {
		_, err := fw.enc.Write(p)
		return err
	}
	_, err := fw.w.Write(p)
	return err
}

func (fw *faultWriter) Flush() {
	if fw.flusher != nil {
		fw.flusher.Flush() //nolint:errcheck
	}
	if f, ok := fw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// finish writes what the stages held back and ends the compressed stream.
func (fw *faultWriter) finish() {
	if !fw.stopped && len(fw.buf) > 0 {
		if !fw.sse {
			fw.buf = dropUsage(fw.buf)
		}
		fw.out(fw.buf) //nolint:errcheck
	}
	if fw.enc != nil {
		fw.enc.Close() //nolint:errcheck
	}
}

var usagePaths = []string{"usage", "message.usage", "usageMetadata"}

// dropUsage removes the usage objects from one JSON document.
func dropUsage(doc []byte) []byte {
	for _, p := range usagePaths {
		if gjson.GetBytes(doc, p).Exists() {
			doc, _ = sjson.DeleteBytes(doc, p)
		}
	}
	return doc
}

// dropEventUsage removes usage from an SSE event's data line, or returns nil
// for an OpenAI usage-only chunk.
func dropEventUsage(ev []byte) []byte {
	var out []byte
	for line := range bytes.Lines(ev) {
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok || !gjson.ValidBytes(bytes.TrimSpace(data)) {
			out = append(out, line...)
			continue
		}
		doc := bytes.TrimSpace(data)
		if c := gjson.GetBytes(doc, "choices"); c.IsArray() && len(c.Array()) == 0 && gjson.GetBytes(doc, "usage").Exists() {
			return nil
		}
		out = append(append(append(out, "data: "...), dropUsage(doc)...), '\n')
	}
	return out
}

// newEncoder returns a compressor writing to w, and its Flush.
func newEncoder(name string, w io.Writer) (io.WriteCloser, interface{ Flush() error }) {
	switch name {
	case "gzip":
		z := gzip.NewWriter(w)
		return z, z
	case "deflate":
		// HTTP's "deflate" is the zlib format (RFC 9110 section 8.4.1.2).
		z := zlib.NewWriter(w)
		return z, z
	case "br":
		z := brotli.NewWriter(w)
		return z, z
	case "zstd":
		z, _ := zstd.NewWriter(w)
		return z, z
	}
	panic("fake: unknown fault encoding " + name)
}
