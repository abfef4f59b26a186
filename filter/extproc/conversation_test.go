package extproc

import (
	"net/http"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/conversation"
)

// newConvHarness serves the test config with a conversation store holding
// one response of tenant "" (the test config has no tenant header).
func newConvHarness(t *testing.T) *harness {
	t.Helper()
	local, err := cache.NewLocalFor(8, time.Hour, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	st := &conversation.Store{Local: local, TTL: time.Hour, MaxBytes: 1 << 20, Now: time.Now}
	st.Put("", conversation.Record{
		Input:    []byte(`[{"type":"message","id":"msg_in1","role":"user","content":"My name is Ada."},{"type":"message","id":"msg_in2","role":"user","content":"Hi."}]`),
		Response: []byte(`{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","id":"msg_out","role":"assistant","content":[{"type":"output_text","text":"Hello Ada."}]}]}`),
	})
	return newHarnessOpts(t, Options{Config: fixedRuntime{testRuntime(t, 1<<16)}, Conversations: st})
}

func TestRouterStoredResponses(t *testing.T) {
	h := newConvHarness(t)
	ask := func(method, path string) (int, []byte) {
		resp := roundTrip(t, h.stream(RoleRouter), reqHeaders(hdrs(true, ":method", method, ":path", path), nil))
		ir := resp.GetImmediateResponse()
		if ir == nil {
			t.Fatalf("%s %s: no immediate response: %v", method, path, resp)
		}
		return int(ir.Status.Code), ir.Body
	}
	tests := []struct {
		method, path string
		status       int
		want         string // a gjson path that must exist, or the error code
	}{
		{"GET", "/v1/responses/resp_1", 200, `output.0.content.0.text`},
		{"GET", "/v1/responses/resp_1/input_items", 200, `data.#(id=="msg_in2")`},
		{"GET", "/v1/responses/resp_2", 404, "response_not_found"},
		{"POST", "/v1/responses/resp_1", 405, "method_not_allowed"},
		{"DELETE", "/v1/responses/resp_1/input_items", 405, "method_not_allowed"},
		{"GET", "/v1/responses/resp_1/other", 404, "unknown_url"},
		{"DELETE", "/v1/responses/resp_1", 200, `deleted`},
		{"GET", "/v1/responses/resp_1", 404, "response_not_found"},
		{"DELETE", "/v1/responses/resp_1", 404, "response_not_found"},
	}
	for _, tt := range tests {
		status, body := ask(tt.method, tt.path)
		if status != tt.status {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, status, body, tt.status)
			continue
		}
		if status == http.StatusOK && !gjson.GetBytes(body, tt.want).Exists() || status != http.StatusOK && gjson.GetBytes(body, "error.code").Str != tt.want {
			t.Errorf("%s %s: %s, want %s", tt.method, tt.path, body, tt.want)
		}
	}
}

func TestInputItemsNewestFirst(t *testing.T) {
	got := inputItemsList([]byte(`[{"id":"a"},{"id":"b"},{"id":"c"}]`))
	if want := `{"object":"list","data":[{"id":"c"},{"id":"b"},{"id":"a"}],"first_id":"c","last_id":"a","has_more":false}`; string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := inputItemsList([]byte(`[]`)); string(got) != `{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false}` {
		t.Errorf("empty: %s", got)
	}
}

// The router expands a kept previous_response_id into the body Envoy
// forwards (with its length), before routing; an unknown id goes to the
// OpenAI-first pool untouched.
func TestRouterExpandsPrevious(t *testing.T) {
	h := newConvHarness(t)
	for _, tt := range []struct {
		prev  string
		texts int // input items forwarded; 0: the body is not replaced
	}{{"resp_1", 4}, {"resp_other", 0}} {
		s := h.stream(RoleRouter)
		roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/responses", "content-type", "application/json"), nil))
		resp := roundTrip(t, s, reqBody(`{"model":"gpt-4o-mini","previous_response_id":"`+tt.prev+`","input":"What is my name?"}`))
		c := resp.GetRequestBody().GetResponse()
		if c == nil {
			t.Fatalf("%s: %v", tt.prev, resp)
		}
		out := c.GetBodyMutation().GetBody()
		if tt.texts == 0 {
			if out != nil {
				t.Errorf("%s: body replaced with %s", tt.prev, out)
			}
			continue
		}
		if n := gjson.GetBytes(out, "input.#").Int(); n != int64(tt.texts) || gjson.GetBytes(out, "previous_response_id").Exists() ||
			gjson.GetBytes(out, "input.2.id").Str != "msg_out" || gjson.GetBytes(out, "input.3.content").Str != "What is my name?" {
			t.Errorf("%s: forwarded %s", tt.prev, out)
		}
		if setHeaders(c)["content-length"] == "" {
			t.Errorf("%s: no content-length for the new body", tt.prev)
		}
	}
}
