package extproc

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tidwall/gjson"
)

var attrsPrimary = map[string]string{AttrBackend: "primary", AttrCluster: "pool/cheap"}

func TestUpstreamRequest(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name        string
		attrs       map[string]string
		body        string
		wantPath    string
		wantAuth    string
		wantModel   string
		wantUsage   bool
		wantReplace bool
	}{
		{"override model and ask for usage", attrsPrimary,
			`{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			"/v1/chat/completions", "Bearer sk-key_a", "gpt-4o-mini-2024-07-18", true, true},
		{"keep usage already asked", attrsPrimary,
			`{"model":"gpt-4o-mini-2024-07-18","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			"/v1/chat/completions", "Bearer sk-key_a", "gpt-4o-mini-2024-07-18", true, false},
		{"no credential, base path, client model", map[string]string{AttrBackend: "local", AttrCluster: "pool/cheap"},
			`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
			"/api/v1/chat/completions", "", "gpt-4o-mini", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.stream(RoleUpstream)
			resp := roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions",
				"authorization", "Bearer client-key", "x-llmproc-pool", "cheap"), tt.attrs))
			if resp.GetRequestHeaders() == nil {
				t.Fatalf("headers reply: %v", resp)
			}
			resp = roundTrip(t, s, reqBody(tt.body))
			c := resp.GetRequestBody().GetResponse()
			if c == nil {
				t.Fatalf("body reply: %v", resp)
			}
			set := setHeaders(c)
			// A header already right is not set again (attemptHeaders).
			if p, ok := set[":path"]; (ok && p != tt.wantPath) || (!ok && tt.wantPath != "/v1/chat/completions") {
				t.Errorf(":path %q, want %q", set[":path"], tt.wantPath)
			}
			if set["authorization"] != tt.wantAuth {
				t.Errorf("authorization %q, want %q", set["authorization"], tt.wantAuth)
			}
			removed := strings.Join(c.GetHeaderMutation().GetRemoveHeaders(), ",")
			if !strings.Contains(removed, "authorization") {
				t.Errorf("client authorization not removed: %s", removed)
			}
			body := []byte(tt.body)
			if nb := c.GetBodyMutation().GetBody(); nb != nil {
				if !tt.wantReplace {
					t.Errorf("body replaced needlessly: %s", nb)
				}
				body = nb
				if set["content-length"] != strconv.Itoa(len(nb)) {
					t.Errorf("content-length %q for %d bytes", set["content-length"], len(nb))
				}
			} else if tt.wantReplace {
				t.Error("body not replaced")
			}
			if got := gjson.GetBytes(body, "model").String(); got != tt.wantModel {
				t.Errorf("model %q, want %q", got, tt.wantModel)
			}
			if got := gjson.GetBytes(body, "stream_options.include_usage").Bool(); got != tt.wantUsage {
				t.Errorf("include_usage %v", got)
			}
		})
	}
}

func TestUpstreamUnknownBackend(t *testing.T) {
	h := newHarness(t)
	s := h.stream(RoleUpstream)
	resp := roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions"),
		map[string]string{AttrBackend: "nope", AttrCluster: "pool/cheap"}))
	if ir := resp.GetImmediateResponse(); ir == nil || ir.Status.Code != 500 {
		t.Fatalf("want 500 immediate response, got %v", resp)
	}
}

// upstreamExchange runs a full upstream stream and returns the bytes the
// client would see plus the final dynamic metadata.
func upstreamExchange(t *testing.T, h *harness, reqBodyJSON, status, ctype string, chunks []string) (string, map[string]string) {
	t.Helper()
	s := h.stream(RoleUpstream)
	roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions"), attrsPrimary))
	roundTrip(t, s, reqBody(reqBodyJSON))
	resp := roundTrip(t, s, respHeaders(false, ":status", status, "content-type", ctype))
	hs := setHeaders(resp.GetResponseHeaders().GetResponse())
	if hs[HeaderBackend] != "primary" || hs[HeaderModel] != "gpt-4o-mini-2024-07-18" {
		t.Errorf("response headers %v", hs)
	}
	var out strings.Builder
	md := map[string]string{}
	for i, c := range chunks {
		resp := roundTrip(t, s, respBody(c, i == len(chunks)-1))
		cr := resp.GetResponseBody().GetResponse()
		if bm := cr.GetBodyMutation(); bm != nil {
			out.Write(bm.GetBody())
		} else {
			out.WriteString(c)
		}
		for k, v := range resp.GetDynamicMetadata().GetFields()["llmproc"].GetStructValue().GetFields() {
			if v.GetStringValue() != "" {
				md[k] = v.GetStringValue()
			} else {
				md[k] = strconv.FormatFloat(v.GetNumberValue(), 'f', -1, 64)
			}
		}
	}
	_ = s.CloseSend()
	return out.String(), md
}

// splitEvery cuts s into pieces of n bytes.
func splitEvery(s string, n int) []string {
	if n <= 0 {
		return []string{s}
	}
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func TestUpstreamStreamUsage(t *testing.T) {
	stream := readTestdata(t, "stream.sse")
	// size 0 splits on event boundaries, as providers usually do.
	for _, size := range []int{0, 1, 7, 64, len(stream)} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			h := newHarness(t)
			chunks := splitEvery(stream, size)
			if size == 0 {
				chunks = strings.SplitAfter(stream, "\n\n")
			}
			// The client did not ask for usage: llmproc asked, and strips the usage chunk again.
			out, md := upstreamExchange(t, h, `{"model":"mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
				"200", "text/event-stream", chunks)
			if strings.Contains(out, `"usage":{`) {
				t.Errorf("usage chunk reached a client that did not ask for it:\n%s", out)
			}
			if !strings.HasSuffix(out, "data: [DONE]\n\n") || !strings.Contains(out, `"content":" there"`) {
				t.Errorf("stream damaged:\n%s", out)
			}
			// 1200 prompt (1024 cached), 34 completion at 0.15/0.075/0.60 per million:
			// 176*150000 + 1024*75000 + 34*600000 pico = 123,600,000 pico.
			want := map[string]string{"prompt_tokens": "1200", "completion_tokens": "34", "cached_tokens": "1024", "usage": "known", "outcome": "ok"}
			for k, v := range want {
				if md[k] != v {
					t.Errorf("metadata %s = %q, want %q", k, md[k], v)
				}
			}
			if got := md["cost_usd"]; got != "0.000123600000" {
				t.Errorf("cost_usd %q", got)
			}
			if got := counter(t, h.reg, "llmproc_tokens_total", map[string]string{"type": "cached_input"}); got != 1024 {
				t.Errorf("cached_input tokens %v", got)
			}
			if got := counter(t, h.reg, "llmproc_cost_usd_total", nil); got != 0.0001236 {
				t.Errorf("cost metric %v", got)
			}
		})
	}
}

func TestUpstreamStreamPassesUsageWhenAsked(t *testing.T) {
	h := newHarness(t)
	stream := readTestdata(t, "stream.sse")
	out, _ := upstreamExchange(t, h, `{"model":"auto","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
		"200", "text/event-stream", splitEvery(stream, 50))
	if out != stream {
		t.Errorf("stream changed although the client asked for usage:\n%s", out)
	}
}

func TestUpstreamStreamCut(t *testing.T) {
	h := newHarness(t)
	stream := readTestdata(t, "stream.sse")
	cut := stream[:strings.Index(stream, `"content":" there"`)]
	out, md := upstreamExchange(t, h, `{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		"200", "text/event-stream", []string{cut, ""})
	if strings.Contains(out, "[DONE]") {
		t.Errorf("a cut stream must not end cleanly:\n%s", out)
	}
	last := out[strings.LastIndex(strings.TrimSpace(out), "data: ")+len("data: "):]
	if gjson.Get(last, "error.code").String() != "stream_incomplete" {
		t.Errorf("no error event at the end:\n%s", out)
	}
	if md["usage"] != "unknown" || md["outcome"] != "cut" {
		t.Errorf("metadata %v", md)
	}
}

func TestUpstreamJSONAndErrors(t *testing.T) {
	h := newHarness(t)
	answer := `{"id":"c","object":"chat.completion","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`
	out, md := upstreamExchange(t, h, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
		"200", "application/json", splitEvery(answer, 13))
	if out != answer {
		t.Errorf("JSON answer changed: %s", out)
	}
	if md["prompt_tokens"] != "10" || md["completion_tokens"] != "5" {
		t.Errorf("metadata %v", md)
	}
	out, md = upstreamExchange(t, h, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
		"503", "text/html", []string{"<html>Service ", "Unavailable</html>"})
	if gjson.Get(out, "error.message").String() == "" || md["outcome"] != "error" {
		t.Errorf("error not normalized: %s %v", out, md)
	}
}

// counter sums a counter's value over series whose labels include want.
func counter(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if matches(m, want) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.Label {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// TestUpstreamAttemptEndsBeforeHeaders: Envoy closes the stream when the
// connection fails or the try times out; the attempt is still counted.
func TestUpstreamAttemptEndsBeforeHeaders(t *testing.T) {
	h := newHarness(t)
	s := h.stream(RoleUpstream)
	roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions"), attrsPrimary))
	roundTrip(t, s, reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err == nil {
		t.Fatal("stream did not end")
	}
	want := map[string]string{"backend": "primary", "status_class": "canceled"}
	deadline := time.Now().Add(5 * time.Second)
	for counter(t, h.reg, "llmproc_requests_total", want) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := counter(t, h.reg, "llmproc_requests_total", want); got != 1 {
		t.Errorf("canceled attempts %v, want 1", got)
	}
}

// TestUpstreamUsageUnknownEstimates: a 2xx answer without usage is recorded
// as unknown, with an estimate kept apart (metric and metadata) and no cost
// or token counts; a known answer records no estimate.
func TestUpstreamUsageUnknownEstimates(t *testing.T) {
	stream := readTestdata(t, "stream.sse")
	noUsage := strings.Replace(stream, stream[strings.LastIndex(stream, "data: {"):strings.Index(stream, "data: [DONE]")], "", 1)
	const reqStream = `{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	const reqJSON = `{"model":"auto","messages":[{"role":"user","content":"say hello"}]}`
	tests := []struct {
		name           string
		req, ctype     string
		chunks         []string
		outcome        string
		estIn, estOut  int64 // 0, 0: usage known, no estimate
		knownPromptTok string
	}{
		{
			name: "cut stream", req: reqStream, ctype: "text/event-stream",
			// Cut inside the " there" event: only "Hello" (5 bytes) was seen.
			chunks:  []string{stream[:strings.Index(stream, `"content":" there"`)], ""},
			outcome: "cut", estIn: int64(len(reqStream)+3) / 4, estOut: 2,
		},
		{
			name: "stream without usage", req: reqStream, ctype: "text/event-stream",
			chunks:  []string{noUsage},
			outcome: "ok", estIn: int64(len(reqStream)+3) / 4, estOut: 3, // "Hello there", 11 bytes
		},
		{
			name: "JSON without usage", req: reqJSON, ctype: "application/json",
			chunks:  []string{`{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello, world!"},"finish_reason":"stop"}]}`},
			outcome: "ok", estIn: int64(len(reqJSON)+3) / 4, estOut: 4, // 13 bytes
		},
		{
			name: "usage known", req: reqStream, ctype: "text/event-stream",
			chunks: []string{stream}, outcome: "ok", knownPromptTok: "1200",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			_, md := upstreamExchange(t, h, tt.req, "200", tt.ctype, tt.chunks)
			if md["outcome"] != tt.outcome {
				t.Errorf("outcome %q, want %q", md["outcome"], tt.outcome)
			}
			estIn := counter(t, h.reg, "llmproc_tokens_estimated_total", map[string]string{"type": "input", "model": "gpt-4o-mini-2024-07-18", "backend": "primary", "pool": "cheap"})
			estOut := counter(t, h.reg, "llmproc_tokens_estimated_total", map[string]string{"type": "output"})
			if int64(estIn) != tt.estIn || int64(estOut) != tt.estOut {
				t.Errorf("estimated tokens in %v out %v, want %d %d", estIn, estOut, tt.estIn, tt.estOut)
			}
			if tt.knownPromptTok != "" {
				if md["usage"] != "known" || md["prompt_tokens"] != tt.knownPromptTok {
					t.Errorf("metadata %v", md)
				}
				for _, k := range []string{"estimated_prompt_tokens", "estimated_completion_tokens"} {
					if _, ok := md[k]; ok {
						t.Errorf("metadata has %s although usage is known: %v", k, md)
					}
				}
				return
			}
			want := map[string]string{
				"usage":                       "unknown",
				"estimated_prompt_tokens":     strconv.FormatInt(tt.estIn, 10),
				"estimated_completion_tokens": strconv.FormatInt(tt.estOut, 10),
			}
			for k, v := range want {
				if md[k] != v {
					t.Errorf("metadata %s = %q, want %q", k, md[k], v)
				}
			}
			for _, k := range []string{"prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_usd"} {
				if v, ok := md[k]; ok {
					t.Errorf("metadata %s = %q for unknown usage, want it absent", k, v)
				}
			}
			if got := counter(t, h.reg, "llmproc_usage_unknown_total", nil); got != 1 {
				t.Errorf("llmproc_usage_unknown_total %v", got)
			}
			if got := counter(t, h.reg, "llmproc_tokens_total", nil); got != 0 {
				t.Errorf("llmproc_tokens_total %v for unknown usage", got)
			}
			if got := counter(t, h.reg, "llmproc_cost_usd_total", nil); got != 0 {
				t.Errorf("llmproc_cost_usd_total %v for unknown usage", got)
			}
		})
	}
}
