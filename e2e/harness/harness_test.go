package harness

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"text/template"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// fakeProc is a scriptable ext_proc server. handle returns the replies to
// one message (none: stay silent); an error ends the stream with it.
type fakeProc struct {
	extprocv3.UnimplementedExternalProcessorServer
	handle func(role string, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error)

	mu      sync.Mutex
	streams []*procRecord
}

type procRecord struct {
	role  string
	msgs  []*extprocv3.ProcessingRequest
	ended chan struct{} // closed when Envoy closed or reset the stream
}

func (f *fakeProc) Process(st extprocv3.ExternalProcessor_ProcessServer) error {
	md, _ := metadata.FromIncomingContext(st.Context())
	rec := &procRecord{ended: make(chan struct{})}
	defer close(rec.ended)
	if v := md.Get("x-llmproc-role"); len(v) > 0 {
		rec.role = v[0]
	}
	f.mu.Lock()
	f.streams = append(f.streams, rec)
	f.mu.Unlock()
	for {
		req, err := st.Recv()
		if err != nil {
			return nil
		}
		f.mu.Lock()
		rec.msgs = append(rec.msgs, req)
		f.mu.Unlock()
		resps, err := f.handle(rec.role, req)
		if errors.Is(err, errCloseOK) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, r := range resps {
			if err := st.Send(r); err != nil {
				return nil
			}
		}
	}
}

// recorded returns the streams seen for role.
func (f *fakeProc) recorded(role string) []*procRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*procRecord
	for _, s := range f.streams {
		if s.role == role {
			out = append(out, &procRecord{role: s.role, msgs: append([]*extprocv3.ProcessingRequest(nil), s.msgs...), ended: s.ended})
		}
	}
	return out
}

func startProc(t *testing.T, f *fakeProc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(s, f)
	go s.Serve(ln) //nolint:errcheck
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// continueAll answers every message with an empty reply of the right type.
func continueAll(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}
	case *extprocv3.ProcessingRequest_RequestBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
	}
	return &extprocv3.ProcessingResponse{}
}

// bsParams fill the test bootstrap template.
type bsParams struct {
	Proc           string // ext_proc address
	RouterExtra    string // extra YAML fields of the router ext_proc (indented 14)
	RouterMode     string
	Upstream       bool // add the upstream ext_proc filter to pool clusters
	UpstreamExtra  string
	UpstreamMode   string
	PoolA, PoolB   []endpoint
	Retry          string // retry_policy YAML flow map for pool routes
	HCMExtra       string // extra HCM fields (indented 10)
	BufferLimit    int
	PoolAExtra     string // extra YAML fields of cluster pool/a, each line "\n    field: ..."
	ProcExtra      string // likewise for the ext_proc cluster
	RouteTimeout   string
	RouterFilterOn bool
}

type endpoint struct {
	Addr     string
	Priority int
	Backend  string
}

const bsTemplate = `
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    per_connection_buffer_limit_bytes: {{.BufferLimit}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: llm
{{.HCMExtra}}
          http_filters:
{{- if .RouterFilterOn}}
          - name: envoy.filters.http.ext_proc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              grpc_service:
                envoy_grpc: {cluster_name: ext_proc}
                initial_metadata: [{key: x-llmproc-role, value: router}]
              processing_mode: {{.RouterMode}}
{{.RouterExtra}}
{{- end}}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          route_config:
            virtual_hosts:
            - name: llm
              domains: ["*"]
              routes:
              - match: {prefix: /, headers: [{name: x-llmproc-pool, string_match: {exact: a}}]}
                route: {cluster: pool/a, timeout: {{.RouteTimeout}}{{if .Retry}}, retry_policy: {{.Retry}}{{end}}}
              - match: {prefix: /, headers: [{name: x-llmproc-pool, string_match: {exact: b}}]}
                route: {cluster: pool/b, timeout: {{.RouteTimeout}}{{if .Retry}}, retry_policy: {{.Retry}}{{end}}}
              - match: {prefix: /direct}
                direct_response: {status: 418, body: {inline_string: teapot}}
              - match: {prefix: /, headers: [{name: x-llmproc-pool, present_match: true}]}
                route: {cluster: pool/a}
  clusters:
  - name: ext_proc
    type: STATIC{{.ProcExtra}}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: ext_proc
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: {{host .Proc}}, port_value: {{port .Proc}}}}}}]}]
{{- range $name, $eps := pools .}}
  - name: pool/{{$name}}
    type: STATIC
{{- if eq $name "a"}}{{$.PoolAExtra}}{{end}}
{{- if $.Upstream}}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http_protocol_options: {}}
        http_filters:
        - name: envoy.filters.http.ext_proc
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
            grpc_service:
              envoy_grpc: {cluster_name: ext_proc}
              initial_metadata: [{key: x-llmproc-role, value: upstream}]
            processing_mode: {{$.UpstreamMode}}
            request_attributes: ["xds.upstream_host_metadata.filter_metadata['llmproc']['backend']", "xds.cluster_name", "upstream.address"]
{{$.UpstreamExtra}}
        - name: envoy.filters.http.upstream_codec
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec
{{- end}}
    load_assignment:
      cluster_name: pool/{{$name}}
      endpoints:
{{- range $eps}}
      - priority: {{.Priority}}
        lb_endpoints:
        - endpoint: {address: {socket_address: {address: {{host .Addr}}, port_value: {{port .Addr}}}}}
          metadata: {filter_metadata: {llmproc: {backend: {{.Backend}}}}}
{{- end}}
{{- end}}
`

func renderBootstrap(t *testing.T, p bsParams) []byte {
	t.Helper()
	if p.BufferLimit == 0 {
		p.BufferLimit = 1 << 20
	}
	if p.RouterMode == "" {
		p.RouterMode = "{request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SKIP}"
	}
	if p.UpstreamMode == "" {
		p.UpstreamMode = "{request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SEND, response_body_mode: STREAMED}"
	}
	if p.RouteTimeout == "" {
		p.RouteTimeout = "0s"
	}
	// Envoy's default message_timeout is 200 ms; under -race on two busy
	// cores a fake processor's reply can take longer, which would turn an
	// unrelated test into a 504. Tests about the timer set their own.
	if !strings.Contains(p.RouterExtra, "message_timeout") {
		p.RouterExtra += "\n              message_timeout: 10s"
	}
	if !strings.Contains(p.UpstreamExtra, "message_timeout") {
		p.UpstreamExtra += "\n            message_timeout: 10s"
	}
	funcs := template.FuncMap{
		"host": func(a string) string { h, _, _ := net.SplitHostPort(a); return h },
		"port": func(a string) string { _, pt, _ := net.SplitHostPort(a); return pt },
		"pools": func(p bsParams) map[string][]endpoint {
			return map[string][]endpoint{"a": p.PoolA, "b": p.PoolB}
		},
	}
	tmpl := template.Must(template.New("bs").Funcs(funcs).Parse(bsTemplate))
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func start(t *testing.T, p bsParams, accessLog io.Writer) *Envoy {
	t.Helper()
	p.RouterFilterOn = true
	bs, err := LoadBootstrapYAML(renderBootstrap(t, p))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(context.Background(), bs, Options{ListenAddr: "127.0.0.1:0", AccessLog: accessLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() }) //nolint:errcheck
	return e
}

// upstream is a recording HTTP server.
type upstream struct {
	name    string
	handler func(w http.ResponseWriter, r *http.Request, body []byte)
	mu      sync.Mutex
	reqs    []recordedReq
	addr    string
}

type recordedReq struct {
	path   string
	header http.Header
	body   string
	host   string
}

func newUpstream(t *testing.T, name string, h func(w http.ResponseWriter, r *http.Request, body []byte)) *upstream {
	t.Helper()
	u := &upstream{name: name, handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, recordedReq{r.URL.RequestURI(), r.Header.Clone(), string(body), r.Host})
		u.mu.Unlock()
		if u.handler != nil {
			u.handler(w, r, body)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"from":"`+name+`"}`) //nolint:errcheck
	})}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *upstream) requests() []recordedReq {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recordedReq(nil), u.reqs...)
}

func do(t *testing.T, e *Envoy, method, path, body string, hdr map[string]string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func mustDo(t *testing.T, e *Envoy, method, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	resp, b, err := do(t, e, method, path, body, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func wrapBool(b bool) *wrapperspb.BoolValue { return wrapperspb.Bool(b) }

// errCloseOK makes fakeProc end the stream with OK status.
var errCloseOK = errors.New("close OK")

// syncLog is an access log sink tests can wait on: access logs are written
// when the stream completes, which may be after the client has its answer.
type syncLog struct {
	mu    sync.Mutex
	buf   strings.Builder
	lines chan struct{}
}

func newSyncLog() *syncLog { return &syncLog{lines: make(chan struct{}, 100)} }

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	for range bytes.Count(p, []byte("\n")) {
		l.lines <- struct{}{}
	}
	return len(p), nil
}

// wait blocks until n lines were written, then returns everything.
func (l *syncLog) wait(n int) string {
	for range n {
		<-l.lines
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func mustStruct(m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		panic(err)
	}
	return s
}
