package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/sse"
)

// The Responses goldens live in testdata/client_responses:
//   - req_<case>.in.json (a Responses request) → req_<case>.chat.json (the
//     chat-completions body) and <backend>/req_<case>.out.json (what that
//     backend's translator sends on, indented), for every backend below;
//   - <backend>/json_<case>.out.json and <backend>/stream_<case>.out.sse: a
//     provider answer (the translators' own fixtures, or
//     <backend>/stream_<case>.in.sse) through the backend's translator and
//     ResponsesResponse, with the request answer_request.json.
//
// Run with -update to rewrite the outputs; the checks below (well-formed
// event order, ids and indexes, usage) keep an update from blessing a wrong
// answer.

// respBackend is one backend the goldens cover.
type respBackend struct {
	name string
	tr   Translator
	be   func() *config.RBackend
	// answers: provider answer fixtures (JSON), relative to testdata.
	json []string
	// streams: provider stream fixtures, relative to testdata (.sse, or
	// .jsonl for Bedrock's event stream).
	streams []string
}

func respBackends() []respBackend {
	return []respBackend{
		{name: "anthropic", tr: anthropicTest, be: anthropicBackend,
			json: []string{"anthropic/resp_text.in.json", "anthropic/resp_tools.in.json", "anthropic/resp_thinking_max_tokens.in.json", "anthropic/resp_refusal.in.json", "anthropic/resp_web_search.in.json"},
			streams: []string{"anthropic/stream_text.in.sse", "anthropic/stream_web_search.in.sse", "anthropic/stream_error.in.sse", "anthropic/stream_crlf_refusal.in.sse",
				"client_responses/anthropic/stream_thinking_tools.in.sse", "client_responses/anthropic/stream_cut.in.sse"}},
		{name: "gemini", tr: gemini{now: geminiClock}, be: func() *config.RBackend {
			return &config.RBackend{Name: "g", Schema: "gemini", Credential: "AIza-test"}
		},
			json:    []string{"gemini/text.response.json", "gemini/safety.response.json"},
			streams: []string{"gemini/text.stream.sse", "gemini/error.stream.sse"}},
		{name: "bedrock", tr: testBedrock(), be: testBedrockBackend,
			json:    []string{"bedrock/resp_text.in.json", "bedrock/resp_tool_use.in.json", "bedrock/resp_cache_reasoning.in.json"},
			streams: []string{"bedrock/stream_tools.in.jsonl", "bedrock/stream_reasoning_cache.in.jsonl", "bedrock/stream_cut.in.jsonl", "bedrock/stream_throttled.in.jsonl"}},
		{name: "compat", tr: openAI{}, be: func() *config.RBackend {
			return &config.RBackend{Name: "vllm", Schema: "openai-compatible"}
		},
			json:    []string{"client_responses/compat/json_tools.in.json", "client_responses/compat/json_length.in.json"},
			streams: []string{"client_responses/compat/stream_tools.in.sse", "client_responses/compat/stream_error.in.sse"}},
	}
}

func respCases(t testing.TB, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "client_responses", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs %s: %v", pattern, err)
	}
	return files
}

func respIndent(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return append(out.Bytes(), '\n')
}

func TestResponsesRequestGolden(t *testing.T) {
	for _, in := range respCases(t, "req_*.in.json") {
		base := strings.TrimSuffix(in, ".in.json")
		name := filepath.Base(base)
		body, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			for i, rb := range respBackends() {
				be := rb.be()
				chat, meta, err := ResponsesRequestToChat(body, be)
				if err != nil {
					t.Fatalf("%s: %v", rb.name, err)
				}
				if i == 0 { // the chat form is the same for every backend
					golden(t, base+".chat.json", respIndent(t, chat))
					respCheckChat(t, chat, meta)
				}
				r := &Request{Body: chat, Backend: be, ClientModel: gjson.GetBytes(chat, "model").Str, Model: "backend-model",
					Stream: gjson.GetBytes(chat, "stream").Bool(), UsageRequested: true}
				up, err := rb.tr.Request(r)
				if err != nil {
					// What this backend cannot take: the 400 naming the
					// Responses field and the backend is the golden.
					e := apierr.From(ResponsesError(err))
					golden(t, filepath.Join(filepath.Dir(base), rb.name, name+".err.txt"),
						fmt.Appendf(nil, "%d %s %s: %s\n", e.Status, e.Code, e.Param, e.Message))
					continue
				}
				out := up.Body
				if out == nil {
					out = chat
				}
				golden(t, filepath.Join(filepath.Dir(base), rb.name, name+".out.json"), respIndent(t, out))
			}
		})
	}
}

// respCheckChat checks invariants of a converted request: every tool
// message answers a tool call of the assistant message before it.
func respCheckChat(t *testing.T, chat []byte, meta *ResponsesMeta) {
	t.Helper()
	calls := map[string]bool{}
	gjson.GetBytes(chat, "messages").ForEach(func(_, m gjson.Result) bool {
		switch m.Get("role").Str {
		case "assistant":
			clear(calls)
			m.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
				calls[c.Get("id").Str] = true
				return true
			})
		case "tool":
			if !calls[m.Get("tool_call_id").Str] {
				t.Errorf("tool message %s does not follow its call", m.Get("tool_call_id").Str)
			}
		default:
			clear(calls)
		}
		return true
	})
	gjson.GetBytes(chat, "tools").ForEach(func(_, tool gjson.Result) bool {
		if name := tool.Get("function.name").Str; meta.isCustom(name) && tool.Get("function.parameters.required.0").Str != "input" {
			t.Errorf("custom tool %s: %s", name, tool.Raw)
		}
		return true
	})
}

// respAnswerMeta is the request the answer goldens answer.
func respAnswerMeta(t testing.TB) *ResponsesMeta {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "client_responses", "answer_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := ResponsesRequestToChat(body, &config.RBackend{Name: "x", Schema: "anthropic"})
	if err != nil {
		t.Fatal(err)
	}
	return meta
}

// chainBody feeds one Body's output to the next, as the upstream role does
// with a translator's answer and the Responses conversion.
type chainBody struct{ first, then Body }

func (c chainBody) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	out, pass := c.first.Chunk(chunk, eos)
	if pass {
		out = chunk
	}
	o, p := c.then.Chunk(out, eos)
	if p {
		return out, false
	}
	return o, false
}

func respAnswerBody(rb respBackend, meta *ResponsesMeta, stream bool) func() Body {
	return func() Body {
		ct := "application/json"
		if stream {
			ct = "text/event-stream"
			if rb.name == "bedrock" {
				ct = "application/vnd.amazon.eventstream"
			}
		}
		ans := rb.tr.Response(&Response{Status: 200, ContentType: ct, Stream: stream, Model: "backend-model",
			Header: func(string) string { return "" }, Reasoning: true})
		return chainBody{first: ans.Body, then: ResponsesResponse(meta, stream, 200, "backend-model")}
	}
}

func respOutName(rb respBackend, fixture, kind string) string {
	name := filepath.Base(fixture)
	for _, suf := range []string{".in.json", ".in.sse", ".in.jsonl", ".response.json", ".stream.sse"} {
		name = strings.TrimSuffix(name, suf)
	}
	name = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(name, "resp_"), "stream_"), "json_")
	ext := ".out.json"
	if kind == "stream" {
		ext = ".out.sse"
	}
	return filepath.Join("testdata", "client_responses", rb.name, kind+"_"+name+ext)
}

func TestResponsesAnswerJSONGolden(t *testing.T) {
	meta := respAnswerMeta(t)
	for _, rb := range respBackends() {
		for _, fx := range rb.json {
			t.Run(rb.name+"/"+filepath.Base(fx), func(t *testing.T) {
				in, err := os.ReadFile(filepath.Join("testdata", fx))
				if err != nil {
					t.Fatal(err)
				}
				out := splitEverywhere(t, in, respAnswerBody(rb, meta, false))
				respCheckObject(t, gjson.ParseBytes(out), "")
				golden(t, respOutName(rb, fx, "json"), respIndent(t, out))
			})
		}
	}
}

// respCheckObject checks a response object: ids, status against
// incomplete_details, usage totals.
func respCheckObject(t testing.TB, r gjson.Result, wantStatus string) {
	t.Helper()
	if !strings.HasPrefix(r.Get("id").Str, "resp_") || r.Get("object").Str != "response" {
		t.Errorf("not a response object: %s", r.Raw)
	}
	st := r.Get("status").Str
	if wantStatus != "" && st != wantStatus {
		t.Errorf("status %q, want %q", st, wantStatus)
	}
	if (st == "incomplete") != r.Get("incomplete_details.reason").Exists() {
		t.Errorf("status %q with incomplete_details %s", st, r.Get("incomplete_details").Raw)
	}
	if u := r.Get("usage"); u.IsObject() && u.Get("total_tokens").Int() != u.Get("input_tokens").Int()+u.Get("output_tokens").Int() {
		t.Errorf("usage %s", u.Raw)
	}
	r.Get("output").ForEach(func(_, it gjson.Result) bool {
		switch it.Get("type").Str {
		case "message", "reasoning", "function_call", "custom_tool_call":
		default:
			t.Errorf("output item %s", it.Raw)
		}
		if it.Get("id").Str == "" {
			t.Errorf("output item without id: %s", it.Raw)
		}
		return true
	})
}

func respStreamInput(t testing.TB, fx string) []byte {
	t.Helper()
	path := filepath.Join("testdata", fx)
	if strings.HasSuffix(fx, ".jsonl") {
		return encodeFrames(t, path)
	}
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestResponsesStreamGolden(t *testing.T) {
	meta := respAnswerMeta(t)
	for _, rb := range respBackends() {
		for _, fx := range rb.streams {
			t.Run(rb.name+"/"+filepath.Base(fx), func(t *testing.T) {
				in := respStreamInput(t, fx)
				out := splitEverywhere(t, in, respAnswerBody(rb, meta, true))
				respCheckStream(t, out)
				golden(t, respOutName(rb, fx, "stream"), out)
			})
		}
	}
}

// respCheckStream checks a Responses event stream: sequence numbers from 0
// without gaps, response.created and .in_progress first, exactly one
// terminal event last, each item added before its events and done once,
// output indexes in order, and the final response's output equal to the
// items done.
func respCheckStream(t testing.TB, out []byte) (final gjson.Result) {
	t.Helper()
	var evs []gjson.Result
	var sc sse.Scanner
	collect := func(ev sse.Event) {
		r := gjson.ParseBytes(bytes.Clone(ev.Data))
		if string(ev.Name) != r.Get("type").Str {
			t.Errorf("event line %q, data type %q", ev.Name, r.Get("type").Str)
		}
		evs = append(evs, r)
	}
	sc.Feed(out, collect)
	sc.Flush(collect)
	if len(evs) < 3 {
		t.Fatalf("%d events:\n%s", len(evs), out)
	}
	if evs[0].Get("type").Str != "response.created" || evs[1].Get("type").Str != "response.in_progress" {
		t.Errorf("starts with %s, %s", evs[0].Get("type").Str, evs[1].Get("type").Str)
	}
	added, done := map[int]string{}, map[int]gjson.Result{}
	for i, ev := range evs {
		typ := ev.Get("type").Str
		if ev.Get("sequence_number").Int() != int64(i) {
			t.Errorf("event %d (%s): sequence_number %d", i, typ, ev.Get("sequence_number").Int())
		}
		terminal := typ == "response.completed" || typ == "response.incomplete" || typ == "response.failed"
		if terminal != (i == len(evs)-1) {
			t.Errorf("event %d of %d is %s", i, len(evs), typ)
		}
		if terminal {
			final = ev.Get("response")
			respCheckObject(t, final, strings.TrimPrefix(typ, "response."))
			if typ != "response.failed" && len(done) != len(added) {
				t.Errorf("%s with %d items added, %d done", typ, len(added), len(done))
			}
			continue
		}
		oi := ev.Get("output_index")
		if !oi.Exists() {
			continue
		}
		idx := int(oi.Int())
		switch typ {
		case "response.output_item.added":
			if _, dup := added[idx]; dup || idx != len(added) {
				t.Errorf("item %d added again or out of order", idx)
			}
			added[idx] = ev.Get("item.id").Str
		case "response.output_item.done":
			if added[idx] != ev.Get("item.id").Str {
				t.Errorf("item %d done with id %q, added as %q", idx, ev.Get("item.id").Str, added[idx])
			}
			done[idx] = ev.Get("item")
		default:
			if _, ok := added[idx]; !ok {
				t.Errorf("%s for item %d before it was added", typ, idx)
			}
			if _, ok := done[idx]; ok {
				t.Errorf("%s for item %d after it was done", typ, idx)
			}
		}
	}
	if final.Exists() {
		items := final.Get("output").Array()
		if len(items) != len(done) {
			t.Errorf("final output has %d items, %d were done", len(items), len(done))
		}
		for i, it := range items {
			if d, ok := done[i]; !ok || d.Raw != it.Raw {
				t.Errorf("final output[%d] %s, done as %s", i, it.Raw, d.Raw)
			}
		}
	}
	return final
}
