package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"
)

// chatBody is a 2 KB chat completion request with a system prompt and a few
// turns; it asks for a stream without stream_options.
//
//go:embed testdata/chat_2k.json
var chatBody []byte

// agentBody is a 64 KB agent conversation: tool definitions, tool calls
// and tool results carrying source files, as a coding agent sends it late in
// a task.
//
//go:embed testdata/agent_64k.json
var agentBody []byte

// attrsKey is where Envoy puts the attributes a filter asked for.
const attrsKey = "envoy.filters.http.ext_proc"

// Case names.
const (
	case2KJSON     = "2k-json"
	case2KSSE      = "2k-sse"
	case64KJSON    = "64k-json"
	caseCacheHit   = "cache-hit"
	caseAnthropic  = "anthropic-sse"
	caseGemini     = "gemini-sse"
	caseBedrock    = "bedrock-stream"
	sseEvents      = 50  // OpenAI stream: role, content, finish, usage, [DONE]
	providerEvents = 100 // translated streams: body messages per answer
)

// caseSpec is one measured request: what the client sends, what the
// provider answers, and what the table says about it.
type caseSpec struct {
	name, title string
	target      float64 // llmproc/floor CPU ratio the issue asks for; 0: none
	perChunk    bool    // report server CPU per response chunk
	cacheHit    bool    // llmproc serves it from the cache at the router
	model       string
	stream      bool
	temperature float64 // < 0 keeps the body's
	body        []byte
	answer      func() answer
}

// answer is a provider's response: headers and body chunks, and what the
// OpenAI client must receive.
type answer struct {
	ctype  string
	chunks [][]byte
	// check says whether the client's body is right for this answer.
	check func(client []byte) error
	// path is part of the upstream :path the backend's schema needs.
	path string
}

// allCases are the cases `make load` measures, in table order.
var allCases = []caseSpec{
	{name: case2KJSON, title: "2 KB request, JSON answer", target: 1.00, model: "gpt-4o-mini", temperature: -1, body: chatBody, answer: openaiJSON},
	{name: case2KSSE, title: "2 KB request, 50-chunk SSE answer", target: 1.15, model: "gpt-4o-mini", stream: true, temperature: -1, body: chatBody, answer: openaiSSE},
	{name: case64KJSON, title: "64 KB agent conversation, JSON answer", target: 1.20, model: "gpt-4o-mini", temperature: -1, body: agentBody, answer: openaiJSON},
	{name: caseCacheHit, title: "2 KB request, cache hit (llmproc answers at the router; floor: full cycle)", target: 0.5, cacheHit: true, model: "gpt-4o-mini", temperature: 0, body: chatBody, answer: openaiJSON},
	{name: caseAnthropic, title: "Anthropic SSE → OpenAI client, 100 chunks", perChunk: true, model: "claude-haiku-4-5", stream: true, temperature: -1, body: chatBody, answer: anthropicSSE},
	{name: caseGemini, title: "Gemini SSE → OpenAI client, 100 chunks", perChunk: true, model: "gemini-2.5-flash", stream: true, temperature: -1, body: chatBody, answer: geminiSSE},
	{name: caseBedrock, title: "Bedrock event stream → OpenAI client, 100 chunks", perChunk: true, model: "claude-on-bedrock", stream: true, temperature: -1, body: chatBody, answer: bedrockStream},
}

func caseByName(name string) (caseSpec, bool) {
	for _, c := range allCases {
		if c.name == name {
			return c, true
		}
	}
	return caseSpec{}, false
}

// requestBody is the case's body with its model, stream flag and
// temperature set.
func (c caseSpec) requestBody() ([]byte, error) {
	b := slices.Clone(c.body)
	var err error
	if b, err = sjson.SetBytes(b, "model", c.model); err != nil {
		return nil, err
	}
	if b, err = sjson.SetBytes(b, "stream", c.stream); err != nil {
		return nil, err
	}
	if c.temperature >= 0 {
		if b, err = sjson.SetBytes(b, "temperature", c.temperature); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// workload is one case's prebuilt ext_proc messages for one server, shared
// read-only by all workers, and what that server is expected to answer.
type workload struct {
	name string
	// check turns on llmproc's expectations; without it (the floor) only
	// the reply types are checked. record keeps headers, bodies and
	// metadata in the outcome (needed by check, -target and the probe).
	check, record bool
	// allowMiss accepts a full cycle in the cache case (warm-up fills the
	// cache); measured cycles must all be hits.
	allowMiss bool

	router, upstream *filterSpec

	clientHeaders headerList
	body          []byte
	routerHeaders *extprocv3.ProcessingRequest
	routerBody    *extprocv3.ProcessingRequest
	// upHeaders is the upstream request headers message built from a probe
	// of llmproc's router replies: what the floor is sent. A recording
	// workload builds it per cycle from the router's actual replies.
	upHeaders *extprocv3.ProcessingRequest
	attrs     map[string]*structpb.Struct
	upBody    *extprocv3.ProcessingRequest

	providerHeaders headerList
	respHeaders     *extprocv3.ProcessingRequest
	chunks          [][]byte
	respBody        []*extprocv3.ProcessingRequest
	respBuffered    *extprocv3.ProcessingRequest

	spec    caseSpec
	answer  answer
	pool    string
	backend string
	// verify checks a recorded outcome (llmproc and -target).
	verify func(w *workload, o outcome) error
	// hold, when set (-hold, hold.go), is called once the upstream
	// filter has answered the first response body message; the cycle
	// goes on when it returns.
	hold func()
}

// upstreamHeaders is the upstream filter's request headers message for an
// attempt after the router left hdrs and meta: Envoy's header map as the
// router filter mutated it, the forwarded metadata namespaces, and the
// attributes the filter asks for.
func (w *workload) upstreamHeaders(hdrs headerList, meta map[string]*structpb.Struct) *extprocv3.ProcessingRequest {
	m := &extprocv3.ProcessingRequest{
		Request:        &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hdrs}}},
		ProtocolConfig: protocolConfig(w.upstream.mode),
		Attributes:     w.attrs,
	}
	for _, ns := range w.upstream.forward {
		if s, ok := meta[ns]; ok {
			if m.MetadataContext == nil {
				m.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
			}
			m.MetadataContext.FilterMetadata[ns] = s
		}
	}
	return m
}

func protocolConfig(m *extprocfilterv3.ProcessingMode) *extprocv3.ProtocolConfiguration {
	return &extprocv3.ProtocolConfiguration{RequestBodyMode: m.GetRequestBodyMode(), ResponseBodyMode: m.GetResponseBodyMode()}
}

// routing is where Envoy sends a case's request under llmproc's config.
type routing struct {
	pool, route, backend, schema string
}

func routeFor(rt *config.Runtime, model string) (routing, error) {
	d, ok := rt.Resolve(model)
	if !ok {
		return routing{}, fmt.Errorf("the config routes no pool for model %q", model)
	}
	if len(d.Pool.Members) == 0 {
		return routing{}, fmt.Errorf("pool %q has no backends", d.Pool.Name)
	}
	b := d.Pool.Members[0].Backend
	return routing{pool: d.Pool.Name, route: d.Route, backend: b.Name, schema: b.Schema}, nil
}

// newWorkload builds the messages Envoy sends for case c under the given
// filters. The upstream attributes name the chosen backend; the floor's
// upstream headers message comes from probe (nil: built from the client's
// headers with x-llmproc-pool set, as llmproc's router leaves them).
func newWorkload(c caseSpec, router, upstream *filterSpec, r routing, attrs map[string]*structpb.Struct) (*workload, error) {
	body, err := c.requestBody()
	if err != nil {
		return nil, err
	}
	a := c.answer()
	w := &workload{
		name: c.name, spec: c, answer: a, router: router, upstream: upstream,
		pool: r.pool, backend: r.backend, attrs: attrs, body: body,
		clientHeaders: clientHeaders(len(body)),
	}
	w.routerHeaders = headersMsg(w.clientHeaders, false, false)
	w.routerHeaders.ProtocolConfig = protocolConfig(router.mode)
	w.routerBody = bodyMsg(body)
	// Until a probe replaces it: the client's headers with the pool the
	// router picks (the forged one removed) and llmproc's decisions.
	hdrs := headerList(slices.DeleteFunc(slices.Clone(w.clientHeaders), func(h *corev3.HeaderValue) bool { return h.Key == extproc.HeaderPool }))
	hdrs = append(hdrs, &corev3.HeaderValue{Key: extproc.HeaderPool, RawValue: []byte(r.pool)})
	w.upHeaders = w.upstreamHeaders(hdrs, map[string]*structpb.Struct{extproc.MetadataNamespace: {Fields: map[string]*structpb.Value{
		extproc.KeyPool: structpb.NewStringValue(r.pool), extproc.KeyRoute: structpb.NewStringValue(r.route),
		extproc.KeyClient: structpb.NewStringValue("openai"),
	}}})
	w.upBody = bodyMsg(body)
	w.providerHeaders = headerList{
		{Key: ":status", RawValue: []byte("200")}, {Key: "content-type", RawValue: []byte(a.ctype)},
		{Key: "date", RawValue: []byte("Tue, 14 Jul 2026 10:00:00 GMT")}, {Key: "x-request-id", RawValue: []byte("req_0b3c5d7e1f2a4b6c")},
		{Key: "openai-processing-ms", RawValue: []byte("212")}, {Key: "x-ratelimit-remaining-requests", RawValue: []byte("9999")},
		{Key: "x-ratelimit-remaining-tokens", RawValue: []byte("1999512")},
	}
	w.respHeaders = headersMsg(w.providerHeaders, false, true)
	w.chunks = a.chunks
	for i, ch := range a.chunks {
		w.respBody = append(w.respBody, bodyResp(ch, i == len(a.chunks)-1))
	}
	w.respBuffered = bodyResp(slices.Concat(a.chunks...), true)
	return w, nil
}

// llmprocAttrs are the upstream attributes Envoy sends llmproc's upstream
// filter: the endpoint's backend name and the pool cluster.
func llmprocAttrs(r routing) map[string]*structpb.Struct {
	return map[string]*structpb.Struct{attrsKey: {Fields: map[string]*structpb.Value{
		extproc.AttrBackend: structpb.NewStringValue(r.backend),
		extproc.AttrCluster: structpb.NewStringValue(extproc.PoolClusterPrefix + r.pool),
	}}}
}

// clientHeaders is a chat completion request as an OpenAI SDK sends it, plus
// one forged x-llmproc-pool the router must remove.
func clientHeaders(size int) headerList {
	kv := []string{
		":method", "POST", ":path", "/v1/chat/completions", ":authority", "llm.internal", ":scheme", "http",
		"content-type", "application/json", "content-length", strconv.Itoa(size),
		"authorization", "Bearer sk-client", "user-agent", "OpenAI/Python 1.99.0", "accept", "application/json",
		"x-stainless-lang", "python", "x-request-id", "0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f",
		"x-forwarded-proto", "http", extproc.HeaderPool, "forged",
	}
	var h headerList
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return h
}

// headersMsg is a request or response headers message, values in raw_value
// as Envoy sends them.
func headersMsg(h headerList, eos, response bool) *extprocv3.ProcessingRequest {
	hh := &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: h}, EndOfStream: eos}
	if response {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hh}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: hh}}
}

func bodyMsg(b []byte) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: b, EndOfStream: true}}}
}

func bodyResp(b []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: b, EndOfStream: eos}}}
}

// verifyLlmproc checks what Envoy and the client relied on in one llmproc
// cycle: the forged pool header removed and x-llmproc-pool set with
// clear_route_cache; the provider's request with the backend's path, a
// content-length matching its body and no x-llmproc-* header; the backend
// header on the response; the client's body right for the answer; and a
// clean outcome with known usage in the dynamic metadata. In the cache
// case, an immediate 200 marked as a hit with the cached answer.
func verifyLlmproc(w *workload, o outcome) error {
	if o.immediate != nil {
		if !w.spec.cacheHit {
			ir := o.immediate
			return fmt.Errorf("router: %w: immediate response %d (%s): %s", errUnexpected, ir.GetStatus().GetCode(), ir.GetDetails(), ir.GetBody())
		}
		return verifyHit(w, o.immediate)
	}
	if w.spec.cacheHit && !w.allowMiss {
		return fmt.Errorf("%w: a cache miss after the warm-up (the full cycle ran)", errUnexpected)
	}
	if v, _ := o.routerHeaders.get(extproc.HeaderPool); v != w.pool {
		return fmt.Errorf("router: %w: %s is %q after the router, want %q", errUnexpected, extproc.HeaderPool, v, w.pool)
	}
	if !o.clearRoute {
		return fmt.Errorf("router: %w: clear_route_cache not set", errUnexpected)
	}
	if p, _ := o.upHeaders.get(":path"); !strings.Contains(p, w.answer.path) {
		return fmt.Errorf("upstream: %w: the provider gets :path %q, want one containing %q", errUnexpected, p, w.answer.path)
	}
	if cl, ok := o.upHeaders.get("content-length"); ok && cl != strconv.Itoa(len(o.upBody)) {
		return fmt.Errorf("upstream: %w: content-length %s for a %d-byte body", errUnexpected, cl, len(o.upBody))
	}
	for _, h := range o.upHeaders {
		if strings.HasPrefix(h.GetKey(), "x-llmproc-") {
			return fmt.Errorf("upstream: %w: %s reaches the provider", errUnexpected, h.GetKey())
		}
	}
	if b, _ := o.respHeaders.get(extproc.HeaderBackend); b != w.backend {
		return fmt.Errorf("upstream response_headers: %w: %s is %q, want %q", errUnexpected, extproc.HeaderBackend, b, w.backend)
	}
	if err := w.answer.check(o.client); err != nil {
		return fmt.Errorf("upstream response_body: %w: %v", errUnexpected, err)
	}
	md := o.meta[extproc.MetadataNamespace].GetFields()
	if oc, u := md["outcome"].GetStringValue(), md[extproc.KeyUsage].GetStringValue(); oc != "ok" || u != "known" {
		return fmt.Errorf("upstream: %w: dynamic metadata outcome %q usage %q, want ok and known", errUnexpected, oc, u)
	}
	return nil
}

// verifyHit checks a cache hit served by the router.
func verifyHit(w *workload, ir *extprocv3.ImmediateResponse) error {
	if c := ir.GetStatus().GetCode(); c != 200 {
		return fmt.Errorf("router: %w: immediate response %d (%s): %s", errUnexpected, c, ir.GetDetails(), ir.GetBody())
	}
	hit := ""
	for _, h := range ir.GetHeaders().GetSetHeaders() {
		if h.GetHeader().GetKey() == extproc.HeaderCache {
			hit = string(h.GetHeader().GetRawValue()) + h.GetHeader().GetValue()
		}
	}
	if !strings.HasPrefix(hit, "hit") {
		return fmt.Errorf("router: %w: immediate 200 with %s %q, want a hit", errUnexpected, extproc.HeaderCache, hit)
	}
	if err := w.answer.check(ir.GetBody()); err != nil {
		return fmt.Errorf("router: %w: cached answer: %v", errUnexpected, err)
	}
	return nil
}

// The answers.

const answerText = "Yes. Set request_body_buffer_limit on the two upload routes and keep per_connection_buffer_limit_bytes at its default for the listener, so the large buffer is only reserved where uploads happen."

// jsonAnswer is a non-streamed chat completion of about 1 KB.
func jsonAnswer() []byte {
	return []byte(`{"id":"chatcmpl-load","object":"chat.completion","created":1760000000,"model":"gpt-4o-mini-2024-07-18",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"` + answerText + ` Route-level limits apply per request, so the other thirty-eight routes keep the 1 MiB ` +
		`connection limit and a slow client on them cannot pin megabytes of memory. Check that your Envoy version has the ` +
		`field (it is newer than the deprecated per_request_buffer_limit_bytes) with envoy --mode validate before rolling it ` +
		`out, and raise the upstream retry buffer to match, or retries of large uploads will be abandoned.",` +
		`"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":482,"completion_tokens":118,"total_tokens":600,` +
		`"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
		`"service_tier":"default","system_fingerprint":"fp_load"}`)
}

func openaiJSON() answer {
	want := jsonAnswer()
	return answer{
		ctype: "application/json", chunks: [][]byte{want}, path: "/v1/chat/completions",
		check: func(got []byte) error {
			if gjson.GetBytes(got, "choices.0.message.content").String() != gjson.GetBytes(want, "choices.0.message.content").String() {
				return fmt.Errorf("the client gets %.200q", got)
			}
			return nil
		},
	}
}

// openaiSSE is an OpenAI stream of sseEvents events, one per body message.
// The client did not ask for usage: llmproc asks, then strips the usage
// chunk (the second to last) before it reaches the client.
func openaiSSE() answer {
	const head = `data: {"id":"chatcmpl-load","object":"chat.completion.chunk","created":1760000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_load",`
	words := []string{"Yes", ".", " Set", " the", " limit", " on", " the", " two", " upload", " routes"}
	out := [][]byte{[]byte(head + `"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n")}
	for i := 0; len(out) < sseEvents-3; i++ {
		out = append(out, []byte(head+`"choices":[{"index":0,"delta":{"content":"`+words[i%len(words)]+`"},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n"))
	}
	out = append(out,
		[]byte(head+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`+"\n\n"),
		[]byte(head+`"choices":[],"usage":{"prompt_tokens":482,"completion_tokens":47,"total_tokens":529,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`+"\n\n"),
		[]byte("data: [DONE]\n\n"))
	want := slices.Concat(slices.Delete(slices.Clone(out), len(out)-2, len(out)-1)...)
	return answer{
		ctype: "text/event-stream; charset=utf-8", chunks: out, path: "/v1/chat/completions",
		check: func(got []byte) error {
			if !bytes.Equal(got, want) {
				return fmt.Errorf("the client gets %d bytes, want the provider's %d without the usage chunk", len(got), len(want))
			}
			return nil
		},
	}
}

// streamWords are the text deltas of a translated stream of n messages
// with overhead non-text messages.
func streamWords(n, overhead int) []string {
	words := []string{"Yes", ".", " Set", " the", " limit", " on", " the", " two", " upload", " routes"}
	out := make([]string, n-overhead)
	for i := range out {
		out[i] = words[i%len(words)]
	}
	return out
}

// translatedCheck parses the OpenAI SSE stream the client gets and wants
// the text deltas joined, a finish reason and [DONE].
func translatedCheck(words []string) func([]byte) error {
	want := strings.Join(words, "")
	return func(got []byte) error {
		var text strings.Builder
		done, finish := false, ""
		for _, line := range strings.Split(string(got), "\n") {
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			if data == "[DONE]" {
				done = true
				continue
			}
			text.WriteString(gjson.Get(data, "choices.0.delta.content").String())
			if f := gjson.Get(data, "choices.0.finish_reason").String(); f != "" {
				finish = f
			}
		}
		if text.String() != want || !done || finish == "" {
			return fmt.Errorf("the client's stream has text %q (want %q), finish %q, [DONE] %v", text.String(), want, finish, done)
		}
		return nil
	}
}

func anthropicSSE() answer {
	words := streamWords(providerEvents, 6)
	ev := func(name, data string) []byte { return []byte("event: " + name + "\ndata: " + data + "\n\n") }
	out := [][]byte{
		ev("message_start", `{"type":"message_start","message":{"id":"msg_01load","type":"message","role":"assistant","content":[],"model":"claude-haiku-4-5-20251001","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":482,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`),
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
	}
	for _, w := range words {
		out = append(out, ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`+w+`"}}`))
	}
	out = append(out,
		ev("content_block_stop", `{"type":"content_block_stop","index":0}`),
		ev("ping", `{"type": "ping"}`),
		ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":94}}`),
		ev("message_stop", `{"type":"message_stop"}`))
	return answer{ctype: "text/event-stream; charset=utf-8", chunks: out, path: "/v1/messages", check: translatedCheck(words)}
}

func geminiSSE() answer {
	words := streamWords(providerEvents, 1)
	var out [][]byte
	for _, w := range words {
		out = append(out, []byte(`data: {"candidates": [{"content": {"parts": [{"text": "`+w+`"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 482,"totalTokenCount": 482},"modelVersion": "gemini-2.5-flash","responseId": "load-1"}`+"\r\n\r\n"))
	}
	out = append(out, []byte(`data: {"candidates": [{"content": {"parts": [{"text": ""}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 482,"candidatesTokenCount": 99,"totalTokenCount": 581},"modelVersion": "gemini-2.5-flash","responseId": "load-1"}`+"\r\n\r\n"))
	return answer{ctype: "text/event-stream", chunks: out, path: "streamGenerateContent", check: translatedCheck(words)}
}

func bedrockStream() answer {
	words := streamWords(providerEvents, 4)
	var out [][]byte
	frame := func(event, payload string) {
		out = append(out, eventFrame(event, payload))
	}
	frame("messageStart", `{"p":"abcdefghijklmnopqrstuvwxyzABCDEFGH","role":"assistant"}`)
	for _, w := range words {
		frame("contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"`+w+`"},"p":"abcdefghijklmn"}`)
	}
	frame("contentBlockStop", `{"contentBlockIndex":0,"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"}`)
	frame("messageStop", `{"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW","stopReason":"end_turn"}`)
	frame("metadata", `{"metrics":{"latencyMs":512},"p":"abcdefghijklmnopqrstuvwx","usage":{"inputTokens":482,"outputTokens":96,"totalTokens":578}}`)
	return answer{ctype: "application/vnd.amazon.eventstream", chunks: out, path: "/converse-stream", check: translatedCheck(words)}
}

// eventFrame is one AWS event-stream frame of a Bedrock ConverseStream
// answer.
func eventFrame(event, payload string) []byte {
	var m eventstream.Message
	m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	m.Headers.Set(":message-type", eventstream.StringValue("event"))
	m.Headers.Set(":event-type", eventstream.StringValue(event))
	m.Payload = []byte(payload)
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
		panic(err) // encoding to a bytes.Buffer cannot fail
	}
	return buf.Bytes()
}
