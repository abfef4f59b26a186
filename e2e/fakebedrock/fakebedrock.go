// Package fakebedrock is a scriptable stand-in for the Amazon Bedrock
// runtime's Converse API, for end-to-end tests without AWS.
//
// It serves POST {base}/model/{modelId}/converse (JSON) and
// /converse-stream (binary AWS event-stream frames written with
// aws-sdk-go-v2's eventstream encoder), Claude's InvokeModel,
// InvokeModelWithResponseStream and CountTokens (invoke.go), and InvokeModel
// on Titan and Cohere embedding models (embed.go). Every request must carry a SigV4
// authorization for service bedrock in the configured region; with
// Options.Secret set the signature itself is recomputed and checked. Each
// request is answered by a Behaviour: from the queue filled by Enqueue,
// else the function set by Script, else Options.Default. A Behaviour can
// answer an AWS error (status, error type, message), report chosen usage,
// call a tool, end a stream with an exception frame, or cut it midway.
// Every request is recorded for assertions.
package fakebedrock

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/llmproc/llmproc/e2e/fake"
)

// Request is one request the server received, with the model and operation
// from its path.
type Request struct {
	fake.Request
	ModelID string // unescaped
	// Op is the operation: converse, converse-stream, invoke,
	// invoke-with-response-stream or count-tokens.
	Op     string
	Stream bool // converse-stream or invoke-with-response-stream
}

// Usage holds the token counts reported (Converse TokenUsage).
type Usage struct {
	Input, Output, CacheRead, CacheWrite int
}

// ToolUse is a tool call the model makes.
type ToolUse struct {
	ID, Name string
	Input    string // JSON object
}

// Behaviour scripts the answer to one request.
type Behaviour struct {
	// Status is the HTTP status; 0 means 200. At 400 or above the body is
	// {"message": ErrorMessage} with the x-amzn-ErrorType header ErrorType.
	Status       int
	ErrorType    string // default from the status, e.g. ThrottlingException
	ErrorMessage string // default the status text
	// Content is the reply text; default "Hello from fakebedrock.". Streams
	// send one contentBlockDelta per word.
	Content string
	// Reasoning, when set, comes first as a reasoningContent block.
	Reasoning string
	// Tool, when set, follows the text as a toolUse block.
	Tool *ToolUse
	// StopReason defaults to end_turn (tool_use when Tool is set).
	StopReason string
	Usage      Usage
	// Exception, for streams, replaces messageStop and metadata with an
	// exception frame of that type (e.g. throttlingException).
	Exception string
	// CutAfter, when positive, closes the connection after that many frames.
	CutAfter int
}

// Options configure a Server.
type Options struct {
	Default Behaviour
	// AccessKeyID, when set, is the only access key accepted.
	AccessKeyID string
	// Secret, when set, has every signature recomputed and compared.
	Secret string
	// Region is the signing region expected; default us-east-1.
	Region string
	// HostIsAddr has the signature checked against the server's own
	// host:port (the backend's authority in llmproc's config) rather than
	// the Host that arrived, which Envoy may have rewritten without the port.
	HostIsAddr bool
	// BasePath prefixes every path, e.g. "/bedrock".
	BasePath string
}

// Server is a running fake Bedrock runtime.
type Server struct {
	*fake.Server[Request]
	*fake.Queue[Request, Behaviour]
	opts Options
}

// New starts a server on a random loopback port; it panics if it cannot
// listen, like httptest.NewServer.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	s := &Server{Queue: fake.NewQueue[Request](opts.Default), opts: opts}
	s.Server = fake.New(s.record)
	if err := s.Start("127.0.0.1:0", s.Handler()); err != nil {
		panic(err)
	}
	return s
}

// Handler returns the HTTP handler, for use with a caller's own server.
func (s *Server) Handler() http.Handler { return s.Record(s.answer) }

// ServeHTTP answers one Converse or ConverseStream call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Handler().ServeHTTP(w, r) }

// record parses {BasePath}/model/{modelId}/{op}; ModelID stays empty when
// the path or op is not Bedrock's.
func (s *Server) record(r *http.Request, body []byte) Request {
	req := Request{Request: fake.NewRequest(r, body)}
	req.Path = r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(req.Path, s.opts.BasePath+"/model/")
	if !ok {
		return req
	}
	id, op, _ := strings.Cut(rest, "/")
	switch op {
	case "converse", "converse-stream", "invoke", "invoke-with-response-stream", "count-tokens":
	default:
		return req
	}
	if id, err := url.PathUnescape(id); err == nil {
		req.ModelID = id
	}
	req.Op = op
	req.Stream = op == "converse-stream" || op == "invoke-with-response-stream"
	return req
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, req Request) {
	if req.ModelID == "" || r.Method != http.MethodPost {
		awsError(w, http.StatusNotFound, "UnknownOperationException", "unknown operation "+r.Method+" "+req.Path)
		return
	}
	if err := s.checkSignature(r, req.Body); err != nil {
		awsError(w, http.StatusForbidden, "InvalidSignatureException", err.Error())
		return
	}
	switch {
	case req.Op == "invoke" && embedModel(req.ModelID):
		s.embed(w, req)
		return
	case req.Op == "invoke", req.Op == "invoke-with-response-stream":
		s.invoke(w, req)
		return
	case req.Op == "count-tokens":
		countTokens(w, req)
		return
	}
	if !json.Valid(req.Body) || !bytes.Contains(req.Body, []byte(`"messages"`)) {
		awsError(w, http.StatusBadRequest, "ValidationException", "Malformed input request, please reformat your input and try again.")
		return
	}
	b, _ := s.Next(req)
	if b.Status >= 400 {
		msg := b.ErrorMessage
		if msg == "" {
			msg = http.StatusText(b.Status)
		}
		awsError(w, b.Status, b.ErrorType, msg)
		return
	}
	if req.Stream {
		s.stream(w, b)
		return
	}
	w.Header().Set("content-type", "application/json")
	w.Write(converseJSON(b)) //nolint:errcheck // the client may go away
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/,]+)/(\d{8})/([^/,]+)/([^/,]+)/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

// checkSignature checks the SigV4 shape, and with a secret the signature.
func (s *Server) checkSignature(r *http.Request, body []byte) error {
	auth := r.Header.Get("authorization")
	m := authRE.FindStringSubmatch(auth)
	if m == nil {
		return fmt.Errorf("authorization %q is not a SigV4 header", auth)
	}
	akid, date, region, service, signed := m[1], m[2], m[3], m[4], m[5]
	amzDate := r.Header.Get("x-amz-date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	switch {
	case err != nil:
		return fmt.Errorf("x-amz-date %q: %v", amzDate, err)
	case at.Format("20060102") != date:
		return fmt.Errorf("credential date %s differs from x-amz-date %s", date, amzDate)
	case region != s.opts.Region || service != "bedrock":
		return fmt.Errorf("credential scope %s/%s, want %s/bedrock", region, service, s.opts.Region)
	case s.opts.AccessKeyID != "" && akid != s.opts.AccessKeyID:
		return fmt.Errorf("unknown access key %s", akid)
	case !strings.Contains(";"+signed+";", ";host;") || !strings.Contains(";"+signed+";", ";x-amz-date;"):
		return fmt.Errorf("SignedHeaders %q lacks host or x-amz-date", signed)
	}
	if s.opts.Secret == "" {
		return nil
	}
	host := r.Host
	if s.opts.HostIsAddr {
		host = s.Addr()
	}
	u := &url.URL{Scheme: "http", Host: host, Path: r.URL.Path, RawPath: r.URL.EscapedPath()}
	re := &http.Request{Method: r.Method, URL: u, Host: host, Header: http.Header{}}
	for _, h := range strings.Split(signed, ";") {
		if h != "host" {
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: s.opts.Secret, SessionToken: r.Header.Get("x-amz-security-token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, re, hex.EncodeToString(sum[:]), "bedrock", s.opts.Region, at); err != nil {
		return err
	}
	if got := re.Header.Get("authorization"); got != auth {
		return fmt.Errorf("the request signature we calculated does not match the signature you provided")
	}
	return nil
}

// awsError writes a Bedrock REST-JSON error: the type in x-amzn-ErrorType,
// {"message":…} in the body.
func awsError(w http.ResponseWriter, status int, typ, msg string) {
	if typ == "" {
		typ = map[int]string{
			400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
			408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
			503: "ServiceUnavailableException",
		}[status]
		if typ == "" {
			typ = "InternalServerException"
		}
	}
	w.Header().Set("content-type", "application/json")
	w.Header().Set("x-amzn-ErrorType", typ+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	w.WriteHeader(status)
	js, _ := json.Marshal(map[string]string{"message": msg})
	w.Write(js) //nolint:errcheck // the client may go away
}

func (b Behaviour) content() string {
	if b.Content == "" {
		return "Hello from fakebedrock."
	}
	return b.Content
}

func (b Behaviour) stopReason() string {
	switch {
	case b.StopReason != "":
		return b.StopReason
	case b.Tool != nil:
		return "tool_use"
	}
	return "end_turn"
}

func (u Usage) object() map[string]any {
	m := map[string]any{"inputTokens": u.Input, "outputTokens": u.Output,
		"totalTokens": u.Input + u.Output + u.CacheRead + u.CacheWrite}
	if u.CacheRead > 0 {
		m["cacheReadInputTokens"] = u.CacheRead
	}
	if u.CacheWrite > 0 {
		m["cacheWriteInputTokens"] = u.CacheWrite
	}
	return m
}

func converseJSON(b Behaviour) []byte {
	var content []any
	if b.Reasoning != "" {
		content = append(content, map[string]any{"reasoningContent": map[string]any{"reasoningText": map[string]any{"text": b.Reasoning, "signature": "c2ln"}}})
	}
	content = append(content, map[string]any{"text": b.content()})
	if b.Tool != nil {
		content = append(content, map[string]any{"toolUse": map[string]any{"toolUseId": b.Tool.ID, "name": b.Tool.Name, "input": json.RawMessage(b.Tool.Input)}})
	}
	js, _ := json.Marshal(map[string]any{
		"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
		"stopReason": b.stopReason(),
		"usage":      b.Usage.object(),
		"metrics":    map[string]any{"latencyMs": 42},
	})
	return js
}

// frameWriter writes event-stream frames, flushing each, until CutAfter.
type frameWriter struct {
	w    http.ResponseWriter
	enc  *eventstream.Encoder
	n    int
	cut  int
	dead bool
}

func (f *frameWriter) write(kind, name string, payload any) {
	if f.dead {
		return
	}
	if f.cut > 0 && f.n == f.cut {
		f.dead = true
		if hj, ok := f.w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	}
	f.n++
	var m eventstream.Message
	m.Headers.Set(":message-type", eventstream.StringValue(kind))
	if kind == "exception" {
		m.Headers.Set(":exception-type", eventstream.StringValue(name))
	} else {
		m.Headers.Set(":event-type", eventstream.StringValue(name))
	}
	m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	m.Payload, _ = json.Marshal(payload)
	var buf bytes.Buffer
	if err := f.enc.Encode(&buf, m); err != nil {
		f.dead = true
		return
	}
	if _, err := f.w.Write(buf.Bytes()); err != nil {
		f.dead = true
		return
	}
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
}

func (s *Server) stream(w http.ResponseWriter, b Behaviour) {
	w.Header().Set("content-type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	f := &frameWriter{w: w, enc: eventstream.NewEncoder(), cut: b.CutAfter}
	pad := "abcdefghijklmnopqrstuvwxyz"
	f.write("event", "messageStart", map[string]any{"role": "assistant", "p": pad[:7]})
	block := 0
	if b.Reasoning != "" {
		f.write("event", "contentBlockDelta", map[string]any{"contentBlockIndex": block, "delta": map[string]any{"reasoningContent": map[string]any{"text": b.Reasoning}}})
		f.write("event", "contentBlockStop", map[string]any{"contentBlockIndex": block})
		block++
	}
	words := strings.SplitAfter(b.content(), " ")
	for _, wd := range words {
		f.write("event", "contentBlockDelta", map[string]any{"contentBlockIndex": block, "delta": map[string]any{"text": wd}, "p": pad[:len(wd)%20]})
	}
	f.write("event", "contentBlockStop", map[string]any{"contentBlockIndex": block})
	if b.Tool != nil {
		block++
		f.write("event", "contentBlockStart", map[string]any{"contentBlockIndex": block, "start": map[string]any{"toolUse": map[string]any{"toolUseId": b.Tool.ID, "name": b.Tool.Name}}})
		half := len(b.Tool.Input) / 2
		for _, part := range []string{b.Tool.Input[:half], b.Tool.Input[half:]} {
			f.write("event", "contentBlockDelta", map[string]any{"contentBlockIndex": block, "delta": map[string]any{"toolUse": map[string]any{"input": part}}})
		}
		f.write("event", "contentBlockStop", map[string]any{"contentBlockIndex": block})
	}
	if b.Exception != "" {
		f.write("exception", b.Exception, map[string]any{"message": "fakebedrock: " + b.Exception})
		return
	}
	f.write("event", "messageStop", map[string]any{"stopReason": b.stopReason()})
	f.write("event", "metadata", map[string]any{"usage": b.Usage.object(), "metrics": map[string]any{"latencyMs": 42}})
}
