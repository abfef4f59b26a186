package extproc

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/klauspost/compress/gzip"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/budget"
	"github.com/llmproc/llmproc/filter/config"
)

// TestRouterValidates runs the validator's hostile-request corpus
// (filter/validate/testdata) through the router: every bad_* request is
// refused with a 400 in the client API's shape, naming a JSON path; no ok_*
// request is refused as invalid.
func TestRouterValidates(t *testing.T) {
	h := newHarnessFor(t, testRuntime(t, 1<<20), nil)
	for _, api := range []struct{ dir, path string }{{"chat", "/v1/chat/completions"}, {"messages", "/v1/messages"}} {
		files, _ := filepath.Glob(filepath.Join("../validate/testdata", api.dir, "*.json"))
		if len(files) < 30 {
			t.Fatalf("%s: %d corpus files", api.dir, len(files))
		}
		for _, f := range files {
			name := api.dir + "/" + strings.TrimSuffix(filepath.Base(f), ".json")
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := h.stream(RoleRouter)
			roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", api.path), nil))
			ir := roundTrip(t, s, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
				RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true}}}).GetImmediateResponse()
			status := 200
			if ir != nil {
				status = int(ir.Status.Code)
			}
			switch bad := strings.HasPrefix(filepath.Base(f), "bad_"); {
			case bad && status != 400:
				t.Errorf("%s: status %d, want 400", name, status)
			case bad && api.dir == "messages" && gjson.GetBytes(ir.Body, "type").Str != "error":
				t.Errorf("%s: not Anthropic error JSON: %s", name, ir.Body)
			case bad && api.dir == "chat" && !gjson.GetBytes(ir.Body, "error.code").Exists():
				t.Errorf("%s: not OpenAI error JSON: %s", name, ir.Body)
			case !bad && status == 400:
				t.Errorf("%s: refused: %s", name, ir.Body)
			}
		}
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestRouterContentEncoding: a compressed body is decoded (bounded by the
// body limit), validated, and handed on decoded, without its
// content-encoding and with its own length; what cannot be decoded is
// refused.
func TestRouterContentEncoding(t *testing.T) {
	h := newHarness(t) // body limit 4096
	plain := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	hostile := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}`)
	big := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 8000) + `"}]}`)
	tests := []struct {
		name, path, encoding string
		body                 []byte
		status               int    // 0: routed
		code                 string // the error code, or "" for Anthropic errors
	}{
		{"gzip", "/v1/chat/completions", "gzip", gzipped(t, plain), 0, ""},
		{"identity", "/v1/chat/completions", "identity", plain, 0, ""},
		{"plain body claiming gzip", "/v1/chat/completions", "gzip", plain, 400, "invalid_content_encoding"},
		{"unknown coding", "/v1/chat/completions", "compress", plain, 415, "unsupported_content_encoding"},
		{"decodes past the limit", "/v1/chat/completions", "gzip", gzipped(t, big), 413, "request_too_large"},
		{"hostile body, gzipped", "/v1/chat/completions", "gzip", gzipped(t, hostile), 400, "invalid_type"},
		{"Anthropic client, fake gzip", "/v1/messages", "gzip", plain, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.stream(RoleRouter)
			resp := roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", tt.path,
				"content-encoding", tt.encoding, "content-length", strconv.Itoa(len(tt.body))), nil))
			if resp.GetImmediateResponse() == nil {
				resp = roundTrip(t, s, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
					RequestBody: &extprocv3.HttpBody{Body: tt.body, EndOfStream: true}}})
			}
			if ir := resp.GetImmediateResponse(); ir != nil || tt.status != 0 {
				if ir == nil {
					t.Fatalf("routed, want %d", tt.status)
				}
				code := gjson.GetBytes(ir.Body, "error.code").Str
				if int(ir.Status.Code) != tt.status || code != tt.code {
					t.Fatalf("got %d %s, want %d %q", ir.Status.Code, ir.Body, tt.status, tt.code)
				}
				return
			}
			c := resp.GetRequestBody().GetResponse()
			removed := c.GetHeaderMutation().GetRemoveHeaders()
			set := setHeaders(c)
			if tt.encoding == "identity" {
				if c.GetBodyMutation() != nil || slices.Contains(removed, "content-encoding") || set["content-length"] != "" {
					t.Errorf("identity body rewritten: %v", c)
				}
				return
			}
			if got := c.GetBodyMutation().GetBody(); !bytes.Equal(got, plain) {
				t.Errorf("body mutation %q, want the decoded body", got)
			}
			if !slices.Contains(removed, "content-encoding") {
				t.Errorf("content-encoding not removed: %v", removed)
			}
			if set["content-length"] != strconv.Itoa(len(plain)) {
				t.Errorf("content-length %q, want %d", set["content-length"], len(plain))
			}
			if set[HeaderPool] != "cheap" {
				t.Errorf("not routed: %v", set)
			}
		})
	}
}

// TestValidationBeforeBudget: a refused request reserves nothing. With one
// request a minute allowed, a hostile request followed by a valid one: the
// valid one is still let through.
func TestValidationBeforeBudget(t *testing.T) {
	rt := testRuntime(t, 4096)
	eng, err := budget.NewEngine(budget.Options{RateLimits: []config.RateLimit{{Name: "one", RPM: 1}}, Store: budget.NewMemory(nil)})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Config: fixedRuntime{rt}, Budgets: &Budgets{Engine: eng, DefaultMaxTokens: 16}})
	send := func(body string) (*extprocv3.ProcessingResponse, error) {
		r := &router{s: s, rt: rt, ctx: context.Background()}
		if _, err := r.requestHeaders(nil, hdrs(false, ":method", "POST", ":path", "/v1/chat/completions")); err != nil {
			t.Fatal(err)
		}
		return r.requestBody(&extprocv3.HttpBody{Body: []byte(body), EndOfStream: true})
	}
	for _, bad := range []string{
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}`,
		`{"model":"gpt-4o-mini","messages":["hi"]}`,
	} {
		if _, err := send(bad); err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("hostile request: %v, want a 400", err)
		}
	}
	resp, err := send(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	if err != nil {
		t.Fatalf("valid request after refused ones: %v", err)
	}
	if decided(resp)[KeyReservation] == "" {
		t.Error("no reservation for the valid request")
	}
}
