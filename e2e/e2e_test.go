// Package e2e runs llmproc end to end: client → Envoy (the harness, or a real
// Envoy when ENVOY_BIN is set) → both ext_proc roles → fake providers.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/stack"
)

const configTemplate = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 2}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
  - {name: secondary, schema: openai-compatible, url: "%s", credential: {env: SECONDARY_KEY}}
models:
  - {name: gpt-4o-mini, aliases: [mini], pool: cheap, price: {input: 0.15, output: 0.60, cached_input: 0.075}}
  - {name: gpt-4o, pool: flagship, price: {input: 2.50, output: 10.00, cached_input: 1.25}}
pools:
  - name: cheap
    backends: [{backend: primary}, {backend: secondary}]
  - name: flagship
    backends: [{backend: secondary}]
routes:
  - {name: auto, match: {model: auto}, pool: cheap}
`

// env is one running stack with its two fake providers.
type env struct {
	*stack.Stack
	primary, secondary *fakeopenai.Server
	accessLog, log     *syncBuffer
}

func start(t *testing.T) *env {
	t.Helper()
	e := &env{primary: fakeopenai.New(fakeopenai.Options{}), secondary: fakeopenai.New(fakeopenai.Options{})}
	t.Cleanup(func() { e.primary.Close(); e.secondary.Close() })
	e.Stack, e.accessLog, e.log = startStack(t, fmt.Sprintf(configTemplate, e.primary.URL(), e.secondary.URL()),
		map[string]string{"PRIMARY_KEY": "sk-primary", "SECONDARY_KEY": "sk-secondary"})
	return e
}

// startStack runs llmproc with config (YAML) and Envoy in front of it;
// credentials are looked up in keys. llmproc's log and the access log are
// printed when the test fails. opts may change the stack's options.
func startStack(t *testing.T, config string, keys map[string]string, opts ...func(*stack.Options)) (st *stack.Stack, accessLog, log *syncBuffer) {
	t.Helper()
	accessLog, log = &syncBuffer{}, &syncBuffer{}
	path := filepath.Join(t.TempDir(), "llmproc.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	o := stack.Options{
		ConfigPath: path,
		Getenv:     func(k string) string { return keys[k] },
		EnvoyBin:   os.Getenv("ENVOY_BIN"),
		LLMProcLog: log,
		AccessLog:  accessLog,
	}
	for _, f := range opts {
		f(&o)
	}
	st, err := stack.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("stack close: %v", err)
		}
		if t.Failed() {
			t.Logf("llmproc log:\n%s\naccess log:\n%s", log.String(), accessLog.String())
		}
	})
	return st, accessLog, log
}

type result struct {
	status int
	header http.Header
	body   []byte
	err    error // reading the body failed (e.g. a cut stream)
}

func (e *env) post(t *testing.T, body string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL()+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) result {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

func chat(model string, stream bool, extra string) string {
	return fmt.Sprintf(`{"model":%q,"stream":%v,%s"messages":[{"role":"user","content":"Say hello"}]}`, model, stream, extra)
}

// sseEvents parses an SSE body strictly: every event is a "data:" line and a blank line.
func sseEvents(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("unexpected SSE line %q in\n%s", line, body)
		}
		out = append(out, data)
	}
	return out
}

func wantOpenAIError(t *testing.T, r result, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if got := gjson.GetBytes(r.body, "error.code").String(); got != code {
		t.Errorf("error.code %q, want %q in %s", got, code, r.body)
	}
	if !gjson.GetBytes(r.body, "error.message").Exists() || !gjson.GetBytes(r.body, "error.type").Exists() {
		t.Errorf("not an OpenAI error: %s", r.body)
	}
	if ct := r.header.Get("content-type"); ct != "application/json" {
		t.Errorf("content-type %q", ct)
	}
}

// metrics scrapes llmproc's /metrics.
func (e *env) metrics(t *testing.T) map[string][]sample {
	t.Helper()
	resp, err := http.Get(e.MetricsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string][]sample{}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for name, mf := range mfs {
		for _, m := range mf.Metric {
			s := sample{labels: map[string]string{}}
			for _, l := range m.Label {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.value = m.Counter.GetValue()
			case m.Gauge != nil:
				s.value = m.Gauge.GetValue()
			case m.Histogram != nil:
				s.value = m.Histogram.GetSampleSum()
				s.count = m.Histogram.GetSampleCount()
			}
			out[name] = append(out[name], s)
		}
	}
	return out
}

// metricsWhen scrapes /metrics until ready says the values are there, or
// fails after a generous deadline. Attempts that end without reaching the
// client (a retried 503) are recorded when Envoy closes their stream, which
// may be just after the client has its answer.
func (e *env) metricsWhen(t *testing.T, ready func(map[string][]sample) bool) map[string][]sample {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := e.metrics(t)
		if ready(m) || time.Now().After(deadline) {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type sample struct {
	labels map[string]string
	value  float64
	count  uint64
}

// sum adds up the samples whose labels include want.
func sum(samples []sample, want map[string]string) float64 {
	var total float64
	for _, s := range samples {
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wantFailoverMetrics checks a failover scenario's figures: once the failed
// OpenAI attempts (at least two) are recorded, the backend in labels shows
// exactly the tokens in want (by type), cost pico-dollars and two
// successful attempts.
func (e *env) wantFailoverMetrics(t *testing.T, labels map[string]string, want map[string]float64, pico int64) {
	t.Helper()
	m := e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_tokens_total"], withLabel(labels, "type", "input")) == want["input"] &&
			sum(m["llmproc_requests_total"], map[string]string{"backend": "openai", "status_class": "5xx"}) >= 2
	})
	for typ, w := range want {
		if got := sum(m["llmproc_tokens_total"], withLabel(labels, "type", typ)); got != w {
			t.Errorf("llmproc_tokens_total{type=%s} = %v, want %v", typ, got, w)
		}
	}
	if got, w := sum(m["llmproc_cost_usd_total"], labels), float64(pico)/1e12; got != w {
		t.Errorf("llmproc_cost_usd_total = %v, want %v", got, w)
	}
	backend := map[string]string{"backend": labels["backend"], "status_class": "2xx"}
	if got := sum(m["llmproc_requests_total"], backend); got != 2 {
		t.Errorf("%s 2xx attempts %v", labels["backend"], got)
	}
}

// withLabel returns labels with k=v added.
func withLabel(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for lk, lv := range labels {
		out[lk] = lv
	}
	return out
}
