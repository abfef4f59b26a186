package extproc

import (
	"errors"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestRouterRejects(t *testing.T) {
	h := newHarness(t)
	big := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`
	tests := []struct {
		name       string
		method     string
		path       string
		headerEOS  bool
		clen       string
		body       string // "" = no body message
		wantStatus int
		wantCode   string
	}{
		{"unknown path", "POST", "/v1/embeddingz", false, "", "", 404, "unknown_url"},
		{"wrong method", "GET", "/v1/chat/completions", true, "", "", 405, "method_not_allowed"},
		{"no body", "POST", "/v1/chat/completions", true, "", "", 400, "missing_body"},
		{"content-length over limit", "POST", "/v1/chat/completions", false, "5000", "", 413, "request_too_large"},
		{"body over limit", "POST", "/v1/chat/completions", false, "", big, 413, "request_too_large"},
		{"malformed json", "POST", "/v1/chat/completions", false, "", `{"model": "gpt-4o-mini",`, 400, "invalid_json"},
		{"not an object", "POST", "/v1/chat/completions", false, "", `[1,2]`, 400, "invalid_json"},
		{"missing model", "POST", "/v1/chat/completions", false, "", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "missing_required_parameter"},
		{"model not a string", "POST", "/v1/chat/completions", false, "", `{"model":7,"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_type"},
		{"missing messages", "POST", "/v1/chat/completions", false, "", `{"model":"gpt-4o-mini"}`, 400, "missing_required_parameter"},
		{"empty messages", "POST", "/v1/chat/completions", false, "", `{"model":"gpt-4o-mini","messages":[]}`, 400, "empty_array"},
		{"stream not bool", "POST", "/v1/chat/completions", false, "", `{"model":"gpt-4o-mini","stream":"yes","messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_type"},
		{"unknown model", "POST", "/v1/chat/completions", false, "", `{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}`, 404, "model_not_found"},
		{"unknown model id", "GET", "/v1/models/gpt-9", true, "", "", 404, "model_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.stream(RoleRouter)
			kv := []string{":method", tt.method, ":path", tt.path}
			if tt.clen != "" {
				kv = append(kv, "content-length", tt.clen)
			}
			resp := roundTrip(t, s, reqHeaders(hdrs(tt.headerEOS, kv...), nil))
			if tt.body != "" {
				if resp.GetImmediateResponse() != nil {
					t.Fatalf("headers phase answered early: %v", resp)
				}
				resp = roundTrip(t, s, reqBody(tt.body))
			}
			ir := resp.GetImmediateResponse()
			if ir == nil {
				t.Fatalf("want an immediate response, got %v", resp)
			}
			if got := int(ir.Status.Code); got != tt.wantStatus {
				t.Errorf("status %d, want %d", got, tt.wantStatus)
			}
			if got := gjson.GetBytes(ir.Body, "error.code").String(); got != tt.wantCode {
				t.Errorf("code %q, want %q in %s", got, tt.wantCode, ir.Body)
			}
			if !gjson.GetBytes(ir.Body, "error.message").Exists() || !gjson.GetBytes(ir.Body, "error.type").Exists() {
				t.Errorf("not OpenAI error JSON: %s", ir.Body)
			}
			hs := map[string]string{}
			for _, hv := range ir.Headers.GetSetHeaders() {
				hs[hv.Header.Key] = string(hv.Header.RawValue)
			}
			if hs["content-type"] != "application/json" {
				t.Errorf("content-type %q", hs["content-type"])
			}
		})
	}
}

func TestRouterPicksPool(t *testing.T) {
	h := newHarness(t)
	tests := []struct{ model, route string }{
		{"gpt-4o-mini", "model"},
		{"mini", "model"},
		{"auto", "auto"},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			s := h.stream(RoleRouter)
			resp := roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions?x=1",
				"content-type", "application/json", "x-llmproc-pool", "flagship", "X-LLMPROC-ROUTE", "evil"), nil))
			removed := resp.GetRequestHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders()
			if !slices.Contains(removed, "x-llmproc-pool") {
				t.Errorf("client x-llmproc-pool not removed: %v", removed)
			}
			resp = roundTrip(t, s, reqBody(`{"model":"`+tt.model+`","messages":[{"role":"user","content":"hi"}]}`))
			c := resp.GetRequestBody().GetResponse()
			if !c.GetClearRouteCache() {
				t.Error("clear_route_cache not set")
			}
			if got := setHeaders(c); len(got) != 1 || got[HeaderPool] != "cheap" {
				t.Errorf("headers %v, want only %s", got, HeaderPool)
			}
			if got := decided(resp); got[KeyPool] != "cheap" || got[KeyRoute] != tt.route || got[KeyClient] != clientOpenAI {
				t.Errorf("decisions %v", got)
			}
			md := resp.GetDynamicMetadata().GetFields()["llmproc"].GetStructValue().GetFields()
			if md["pool"].GetStringValue() != "cheap" || md["requested_model"].GetStringValue() != tt.model {
				t.Errorf("dynamic metadata %v", md)
			}
		})
	}
}

func TestRouterModels(t *testing.T) {
	h := newHarness(t)
	s := h.stream(RoleRouter)
	resp := roundTrip(t, s, reqHeaders(hdrs(true, ":method", "GET", ":path", "/v1/models"), nil))
	ir := resp.GetImmediateResponse()
	if ir == nil || ir.Status.Code != 200 {
		t.Fatalf("got %v", resp)
	}
	want := `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":0,"owned_by":"llmproc"}]}`
	if string(ir.Body) != want {
		t.Errorf("body\n got %s\nwant %s", ir.Body, want)
	}
	s = h.stream(RoleRouter)
	resp = roundTrip(t, s, reqHeaders(hdrs(true, ":method", "GET", ":path", "/v1/models/mini"), nil))
	if got := gjson.GetBytes(resp.GetImmediateResponse().GetBody(), "id").String(); got != "gpt-4o-mini" {
		t.Errorf("alias lookup gave %q", got)
	}
}

func TestMissingRole(t *testing.T) {
	h := newHarness(t)
	s := h.stream("")
	// The server refuses the stream at once, so Send may already see io.EOF;
	// the reason comes with Recv.
	if err := s.Send(reqHeaders(hdrs(true, ":method", "GET", ":path", "/v1/models"), nil)); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err == nil || !strings.Contains(err.Error(), "x-llmproc-role") {
		t.Fatalf("want an error naming x-llmproc-role, got %v", err)
	}
}

func TestRouterAnthropicClient(t *testing.T) {
	h := newHarness(t)
	post := func(body string) *extprocv3.ProcessingResponse {
		s := h.stream(RoleRouter)
		roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/messages", "x-llmproc-client", "openai"), nil))
		return roundTrip(t, s, reqBody(body))
	}
	// Errors come back in Anthropic's shape.
	ir := post(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`).GetImmediateResponse()
	if ir == nil || ir.Status.Code != 400 || gjson.GetBytes(ir.Body, "type").String() != "error" ||
		gjson.GetBytes(ir.Body, "error.type").String() != "invalid_request_error" {
		t.Fatalf("missing max_tokens: %v", ir)
	}
	ir = post(`{"model":"nope","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`).GetImmediateResponse()
	if ir == nil || ir.Status.Code != 404 || gjson.GetBytes(ir.Body, "error.type").String() != "not_found_error" {
		t.Fatalf("unknown model: %v", ir)
	}
	// A valid request is routed and marked as an Anthropic client, whatever the client sent.
	if got := decided(post(`{"model":"mini","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)); got[KeyPool] != "cheap" || got[KeyClient] != "anthropic" {
		t.Errorf("decisions %v", got)
	}
}
