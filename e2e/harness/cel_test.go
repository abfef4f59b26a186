package harness

import (
	"os"
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestCELFilter follows Envoy's CEL access-log filter
// (source/extensions/access_loggers/filters/cel/cel.cc): the expression is
// compiled when the config loads (a bad one is refused), evaluated over the
// request and response attributes, and an evaluation error (an attribute
// not there) counts as false.
func TestCELFilter(t *testing.T) {
	info := &logInfo{code: 504, details: "ext_proc_error_per-message_timeout_exceeded",
		reqHeaders: &headerMap{kv: []header{{":path", "/v1/messages?beta=true"}, {":method", "POST"}, {"x-a", "1"}, {"x-a", "2"}}}}
	for _, tt := range []struct {
		expr    string
		want    bool
		compile bool // false: refused at Start
	}{
		{"response.code_details.startsWith('ext_proc_error')", true, true},
		{"response.code_details == 'ext_proc_error_per-message_timeout_exceeded' && response.code == 504", true, true},
		{"response.code_details.startsWith('llmproc_')", false, true},
		{"request.url_path == '/v1/messages' && request.path.startsWith('/v1/messages?')", true, true},
		{"request.headers['x-a'] == '1,2' && request.method == 'POST'", true, true},
		{"connection.mtls", false, false},           // an attribute the harness does not model: refused at Start, not silently false
		{"response.grpc_status == 14", false, true}, // not given by the harness: evaluation error
		{"response.code_details.startsWith(", false, false},
		{"'a string'", false, false},
	} {
		a, err := anypb.New(&celv3.ExpressionFilter{Expression: tt.expr})
		if err != nil {
			t.Fatal(err)
		}
		f, err := compileCELFilter(&accesslogv3.ExtensionFilter{Name: celFilterName, ConfigType: &accesslogv3.ExtensionFilter_TypedConfig{TypedConfig: a}}, "f")
		if (err == nil) != tt.compile {
			t.Errorf("%s: compile error %v, want compiled %v", tt.expr, err, tt.compile)
			continue
		}
		if err == nil && f(info) != tt.want {
			t.Errorf("%s = %v, want %v", tt.expr, !tt.want, tt.want)
		}
	}
}

// TestRenderedExtProcTimeoutReply runs the rendered quickstart bootstrap
// against an llmproc stand-in that never answers: Envoy's message timer
// answers 504 with details ext_proc_error_per-message_timeout_exceeded and no
// body (Filter::onMessageTimeout in ext_proc.cc), and the rendered CEL
// mappers make it llmproc_timeout JSON, Anthropic-shaped on /v1/messages.
func TestRenderedExtProcTimeoutReply(t *testing.T) {
	data, err := os.ReadFile("../../envoy/quickstart.yaml")
	if err != nil {
		t.Skipf("rendered quickstart not available: %v", err)
	}
	silent := &fakeProc{handle: func(string, *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) { return nil, nil }}
	_, port, _ := strings.Cut(startProc(t, silent), ":")
	y := strings.ReplaceAll(string(data), "port_value: 50051", "port_value: "+port)
	y = strings.ReplaceAll(y, "message_timeout: 10s", "message_timeout: 0.05s")
	bs, err := LoadBootstrapYAML([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(t.Context(), bs, Options{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close() //nolint:errcheck
	resp, body := mustDo(t, e, "POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, nil)
	if resp.StatusCode != 504 || gjson.Get(body, "error.code").String() != "llmproc_timeout" ||
		!strings.Contains(gjson.Get(body, "error.message").String(), "did not answer") {
		t.Errorf("chat completions: %d %s", resp.StatusCode, body)
	}
	resp, body = mustDo(t, e, "POST", "/v1/messages", `{}`, nil)
	if resp.StatusCode != 504 || gjson.Get(body, "type").String() != "error" || gjson.Get(body, "error.type").String() != "api_error" {
		t.Errorf("messages: %d %s", resp.StatusCode, body)
	}
}

// TestRenderedRefusedReplyIsJSON: an ext_proc reply Envoy refuses (here a
// body mutation that leaves content-length wrong: validateContentLength in
// processor_state.cc, answered by handleErrorResponse with status_on_error,
// the message as details, an empty body and no flag) reaches the client as
// JSON through the rendered last-resort mapper, not as an empty 500.
func TestRenderedRefusedReplyIsJSON(t *testing.T) {
	data, err := os.ReadFile("../../envoy/quickstart.yaml")
	if err != nil {
		t.Skipf("rendered quickstart not available: %v", err)
	}
	fp := &fakeProc{handle: func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		if req.GetRequestBody() != nil {
			return []*extprocv3.ProcessingResponse{reqBodyReply(&extprocv3.CommonResponse{
				BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("a longer body")}},
			})}, nil
		}
		return []*extprocv3.ProcessingResponse{continueAll(req)}, nil
	}}
	_, port, _ := strings.Cut(startProc(t, fp), ":")
	bs, err := LoadBootstrapYAML([]byte(strings.ReplaceAll(string(data), "port_value: 50051", "port_value: "+port)))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(t.Context(), bs, Options{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close() //nolint:errcheck
	resp, body := mustDo(t, e, "POST", "/v1/chat/completions", `{}`, map[string]string{"content-type": "application/json"})
	if resp.StatusCode != 500 || gjson.Get(body, "error.code").String() != "mismatch_between_content_length_and_the_length_of_the_mutated_body" ||
		gjson.Get(body, "error.type").String() != "server_error" {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
}
