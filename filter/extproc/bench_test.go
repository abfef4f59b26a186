package extproc

// Hot-path benchmarks: llmproc's own work per ext_proc phase, with the
// processors called directly (no gRPC), fixtures built before the timer.
//
// Compare a change against its parent with benchstat:
//
//	go test -run '^$' -bench . -count 10 ./filter/extproc > old.txt
//	# apply the change
//	go test -run '^$' -bench . -count 10 ./filter/extproc > new.txt
//	benchstat old.txt new.txt

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/metrics"
)

// benchServer builds a Server with metrics on a private registry, as
// server.Run wires it, and the compiled bench config.
func benchServer(b *testing.B) (*Server, *config.Runtime) {
	b.Helper()
	// A production-sized body limit, so the 64 KB request is accepted.
	rt := testRuntime(b, 8<<20)
	s := New(Options{Config: fixedRuntime{rt}, Metrics: metrics.New(prometheus.NewRegistry())})
	return s, rt
}

// benchBodies are the request sizes the request-phase benchmarks run at.
var benchBodies = []struct{ name, file string }{
	{"2KB", "chat_2k.json"},
	{"64KB", "chat_64k.json"},
}

func readBenchdata(b *testing.B, name string) []byte {
	b.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// clientRequestHeaders is what the router filter sees for a chat completion,
// with one forged x-llmproc-* header to strip.
func clientRequestHeaders(size int) *extprocv3.HttpHeaders {
	return hdrs(false,
		":method", "POST", ":path", "/v1/chat/completions", ":authority", "llm.internal", ":scheme", "http",
		"content-type", "application/json", "content-length", fmt.Sprint(size),
		"authorization", "Bearer client-key", "user-agent", "OpenAI/Python 1.99.0",
		"accept", "application/json", "x-request-id", "0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f",
		"x-llmproc-pool", "forged")
}

func bodyRequest(body []byte) *extprocv3.HttpBody {
	return &extprocv3.HttpBody{Body: body, EndOfStream: true}
}

// BenchmarkRouterRequest measures one router request phase: request_headers
// and the buffered request_body, ending in a pool decision.
func BenchmarkRouterRequest(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			s, rt := benchServer(b)
			benchRouter(b, s, rt, readBenchdata(b, bb.file), "cheap")
		})
	}
}

// BenchmarkRouterRules is BenchmarkRouterRequest for "auto" under rules that
// need the request's features: the body is also parsed for features and
// classified, and the rules' CEL conditions run.
func BenchmarkRouterRules(b *testing.B) {
	// The rules of TestRouterRules and a last one for what they leave (the
	// 64 KB body is long chat, which no rule there takes).
	rt := compileTest(b, rulesConfig+`
  - name: rest
    match: {model: auto}
    pool: code
`)
	s := New(Options{Config: fixedRuntime{rt}, Metrics: metrics.New(prometheus.NewRegistry())})
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			body := []byte(strings.Replace(string(readBenchdata(b, bb.file)), `"model":"gpt-4o-mini"`, `"model":"auto"`, 1))
			want := map[string]string{"2KB": "cheap", "64KB": "code"}[bb.name] // rule small, rule rest
			benchRouter(b, s, rt, body, want)
		})
	}
}

// routeOnce returns a function that runs one router request phase (headers
// and body) for body.
func routeOnce(b *testing.B, s *Server, rt *config.Runtime, body []byte) func() *extprocv3.ProcessingResponse {
	req := reqHeaders(clientRequestHeaders(len(body)), nil)
	hb := bodyRequest(body)
	return func() *extprocv3.ProcessingResponse {
		r := &router{s: s, rt: rt, ctx: context.Background()}
		if _, err := r.requestHeaders(req, req.GetRequestHeaders()); err != nil {
			b.Fatal(err)
		}
		resp, err := r.requestBody(hb)
		if err != nil {
			b.Fatal(err)
		}
		return resp
	}
}

func benchRouter(b *testing.B, s *Server, rt *config.Runtime, body []byte, wantPool string) {
	route := routeOnce(b, s, rt, body)
	if got := setHeaders(route().GetRequestBody().GetResponse())[HeaderPool]; got != wantPool {
		b.Fatalf("pool %q, want %s", got, wantPool)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		route()
	}
}

// upstreamHeaders is the upstream filter's first message: the request headers
// as the router left them, and the chosen endpoint's attributes.
func upstreamHeaders(size int) *extprocv3.ProcessingRequest {
	return reqHeaders(hdrs(false,
		":method", "POST", ":path", "/v1/chat/completions", ":authority", "llm.internal", ":scheme", "http",
		"content-type", "application/json", "content-length", fmt.Sprint(size),
		"authorization", "Bearer client-key", "user-agent", "OpenAI/Python 1.99.0",
		HeaderPool, "cheap", HeaderRoute, "by-model"),
		attrsPrimary)
}

// BenchmarkUpstreamRequest measures one upstream request phase:
// request_headers and request_body, with translation, the pool member's model
// override, include_usage added to the stream and content-length fixed.
func BenchmarkUpstreamRequest(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			s, rt := benchServer(b)
			body := readBenchdata(b, bb.file)
			req := upstreamHeaders(len(body))
			hb := bodyRequest(body)

			u := &upstream{s: s, rt: rt}
			if _, err := u.requestHeaders(req, req.GetRequestHeaders()); err != nil {
				b.Fatal(err)
			}
			resp, err := u.requestBody(hb)
			if err != nil {
				b.Fatal(err)
			}
			out := resp.GetRequestBody().GetResponse().GetBodyMutation().GetBody()
			if gjson.GetBytes(out, "model").String() != "gpt-4o-mini-2024-07-18" || !gjson.GetBytes(out, "stream_options.include_usage").Bool() {
				b.Fatalf("body not translated: model %s, include_usage %s",
					gjson.GetBytes(out, "model"), gjson.GetBytes(out, "stream_options.include_usage"))
			}
			if got := setHeaders(resp.GetRequestBody().GetResponse())["content-length"]; got != fmt.Sprint(len(out)) {
				b.Fatalf("content-length %s for %d bytes", got, len(out))
			}

			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				u := &upstream{s: s, rt: rt}
				if _, err := u.requestHeaders(req, req.GetRequestHeaders()); err != nil {
					b.Fatal(err)
				}
				if _, err := u.requestBody(hb); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// sseChunks builds an OpenAI stream of n events, one per body message: a role
// chunk, content chunks, a finish chunk, the usage chunk and [DONE].
func sseChunks(n int) [][]byte {
	const head = `{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1760000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_bench",`
	words := []string{"The", " route", " limit", " keeps", " large", " uploads", " where", " they", " belong", ","}
	out := make([][]byte, 0, n)
	out = append(out, []byte("data: "+head+`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n"))
	for i := 0; len(out) < n-3; i++ {
		out = append(out, []byte("data: "+head+`"choices":[{"index":0,"delta":{"content":"`+words[i%len(words)]+`"},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n"))
	}
	out = append(out,
		[]byte("data: "+head+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`+"\n\n"),
		[]byte("data: "+head+`"choices":[],"usage":{"prompt_tokens":480,"completion_tokens":197,"total_tokens":677,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`+"\n\n"),
		[]byte("data: [DONE]\n\n"))
	return out
}

// BenchmarkUpstreamStreamUsage measures one streamed answer through the
// upstream role: response_headers and 200 response_body messages, one SSE
// event each, with usage tracked. In "strip" the client did not ask for usage,
// so llmproc removes the usage chunk it asked for; in "passthrough" the client
// asked, and every chunk passes unchanged. ns/chunk is the per-message cost.
func BenchmarkUpstreamStreamUsage(b *testing.B) {
	const nChunks = 200
	for _, tc := range []struct {
		name       string
		clientUses bool
	}{
		{"strip", false},
		{"passthrough", true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, rt := benchServer(b)
			body := readBenchdata(b, "chat_2k.json")
			if tc.clientUses {
				var err error
				if body, err = sjson.SetBytes(body, "stream_options.include_usage", true); err != nil {
					b.Fatal(err)
				}
			}
			chunks := sseChunks(nChunks)
			msgs := make([]*extprocv3.HttpBody, len(chunks))
			for i, c := range chunks {
				msgs[i] = &extprocv3.HttpBody{Body: c, EndOfStream: i == len(chunks)-1}
			}
			rh := hdrs(false, ":status", "200", "content-type", "text/event-stream; charset=utf-8",
				"x-request-id", "0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f", "openai-processing-ms", "212")

			// The request phase runs once; each iteration answers a copy of
			// the prepared attempt, so only response work is timed.
			req := upstreamHeaders(len(body))
			tmpl := &upstream{s: s, rt: rt}
			if _, err := tmpl.requestHeaders(req, req.GetRequestHeaders()); err != nil {
				b.Fatal(err)
			}
			if _, err := tmpl.requestBody(bodyRequest(body)); err != nil {
				b.Fatal(err)
			}

			// Check once that the answer is what the client should get.
			var got bytes.Buffer
			u := *tmpl
			if _, err := u.responseHeaders(rh); err != nil {
				b.Fatal(err)
			}
			var last *extprocv3.ProcessingResponse
			for _, m := range msgs {
				resp, err := u.responseBody(m)
				if err != nil {
					b.Fatal(err)
				}
				if bm := resp.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
					got.Write(bm.GetBody())
				} else {
					got.Write(m.Body)
				}
				last = resp
			}
			want := bytes.Join(chunks, nil)
			if !tc.clientUses {
				want = bytes.Join(append(chunks[:len(chunks)-2:len(chunks)-2], chunks[len(chunks)-1]), nil)
			}
			if !bytes.Equal(got.Bytes(), want) {
				b.Fatalf("client stream differs from the expected one:\n%s", got.Bytes())
			}
			md := last.GetDynamicMetadata().GetFields()["llmproc"].GetStructValue().GetFields()
			if md["completion_tokens"].GetNumberValue() != 197 || md["outcome"].GetStringValue() != "ok" {
				b.Fatalf("usage not tracked: %v", md)
			}

			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				u := *tmpl
				if _, err := u.responseHeaders(rh); err != nil {
					b.Fatal(err)
				}
				for _, m := range msgs {
					if _, err := u.responseBody(m); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nChunks), "ns/chunk")
		})
	}
}

// BenchmarkRouterCache is the router request phase with the cache on, for a
// 2 KB deterministic request: a miss (policy, key, lookup) and a hit served
// from an 8 KB stored answer (lookup and JSON replay).
func BenchmarkRouterCache(b *testing.B) {
	rt := testRuntime(b, 8<<20)
	local, err := cache.NewLocal(64, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	s := New(Options{Config: fixedRuntime{rt}, Metrics: metrics.New(prometheus.NewRegistry()),
		Cache: &CacheTiers{Local: local, TTL: time.Hour, MaxEntryBytes: 1 << 20}})
	body := []byte(strings.Replace(string(readBenchdata(b, "chat_2k.json")), `"temperature":0.2`, `"temperature":0`, 1))
	route := routeOnce(b, s, rt, body)
	miss := route()
	keyHex := decided(miss)[KeyCacheKey]
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			route()
		}
	})
	// The miss at 64 KB: the key's cost grows with the body.
	body64 := []byte(strings.Replace(string(readBenchdata(b, "chat_64k.json")), `"temperature":0.2`, `"temperature":0`, 1))
	route64 := routeOnce(b, s, rt, body64)
	if decided(route64())[KeyCacheKey] == "" {
		b.Fatal("64 KB request not cacheable")
	}
	b.Run("miss-64KB", func(b *testing.B) {
		b.SetBytes(int64(len(body64)))
		b.ReportAllocs()
		for b.Loop() {
			route64()
		}
	})
	var k cache.Key
	if _, err := hex.Decode(k[:], []byte(keyHex)); err != nil {
		b.Fatalf("key %q: %v", keyHex, err)
	}
	answer := `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		strings.Repeat("lorem ipsum ", 660) + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":500,"completion_tokens":1900,"total_tokens":2400}}`
	s.cache.set(k, cache.Entry{Completion: []byte(answer), Stored: time.Now()}, nil)
	if route().GetImmediateResponse() == nil {
		b.Fatal("no hit")
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			route()
		}
	})
}
