package translate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
)

// Benchmarks of the Responses translation. Compare runs with benchstat:
//
//	go test -run='^$' -bench=Responses -count=10 ./filter/translate > new.txt

// respBenchRequest is a Codex-shaped request (developer messages, function
// and custom tools, a function call round trip) grown to about size bytes
// with more turns.
func respBenchRequest(size int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"model":"gpt-5-codex","stream":true,"store":false,"include":["reasoning.encrypted_content"],"reasoning":{"summary":"auto"},"parallel_tool_calls":true,` +
		`"tools":[{"type":"function","name":"exec_command","description":"Runs a command.","parameters":{"type":"object","properties":{"cmd":{"type":"string"}},"required":["cmd"]}},` +
		`{"type":"custom","name":"apply_patch","description":"Apply a patch.","format":{"type":"grammar","syntax":"lark","definition":"start: begin_patch hunk+ end_patch"}}],` +
		`"input":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"You are Codex."}]},` +
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"write hello.txt"}]},` +
		`{"type":"function_call","call_id":"call_1","name":"exec_command","arguments":"{\"cmd\":\"echo hi > hello.txt\"}"},` +
		`{"type":"function_call_output","call_id":"call_1","output":"Exit code: 0"}`)
	for sb.Len() < size-100 {
		sb.WriteString(`,{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Done."}]},{"type":"message","role":"user","content":[{"type":"input_text","text":"Summarize Envoy external processing in one line, please."}]}`)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// BenchmarkResponsesRequestToChat converts a 2 KB and a 64 KB request.
func BenchmarkResponsesRequestToChat(b *testing.B) {
	be := &config.RBackend{Name: "claude", Schema: "anthropic"}
	for _, size := range []int{2 << 10, 64 << 10} {
		body := respBenchRequest(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := ResponsesRequestToChat(body, be); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResponsesJSON renders a chat.completion with text and a tool call
// as a response object.
func BenchmarkResponsesJSON(b *testing.B) {
	chat := gjson.Parse(`{"id":"chatcmpl-1","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"I'll check.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":100,"completion_tokens":20}}`)
	_, meta, _ := ResponsesRequestToChat([]byte(`{"model":"m","input":"hi","tools":[{"type":"function","name":"get_weather"}]}`), &config.RBackend{Name: "c", Schema: "anthropic"})
	b.ReportAllocs()
	for b.Loop() {
		if out := ResponseFromChat(chat, meta, ""); len(out) == 0 {
			b.Fatal("no output")
		}
	}
}

// BenchmarkResponsesStreamChunk converts one hub text chunk (one event per
// Envoy chunk, the common case) into a response.output_text.delta.
func BenchmarkResponsesStreamChunk(b *testing.B) {
	chunk := []byte(`data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"m","choices":[{"index":0,"delta":{"content":" the quick brown fox"},"finish_reason":null}]}` + "\n\n")
	body := ResponsesResponse(&ResponsesMeta{}, true, 200, "m")
	body.Chunk(chunk, false)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if out, _ := body.Chunk(chunk, false); len(out) == 0 {
			b.Fatal("no output")
		}
	}
}

// BenchmarkResponsesTranslatedStream is the CPU of one provider text event
// on its way to a Responses client: the backend's translator (provider →
// hub chunk) and the Responses conversion (hub → semantic event), as the
// upstream role chains them. Per op = per event.
func BenchmarkResponsesTranslatedStream(b *testing.B) {
	meta := &ResponsesMeta{}
	for _, c := range []struct {
		name, ct string
		tr       Translator
		head     string
		event    string
	}{
		{"anthropic", "text/event-stream", anthropicTest,
			"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n" +
				"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" the quick brown fox\"}}\n\n"},
		{"gemini", "text/event-stream", gemini{now: geminiClock}, "",
			"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\" the quick brown fox\"}]},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r1\"}\n\n"},
		{"compat", "text/event-stream", openAI{}, "",
			"data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the quick brown fox\"},\"finish_reason\":null}]}\n\n"},
	} {
		b.Run(c.name, func(b *testing.B) {
			ans := c.tr.Response(&Response{Status: 200, ContentType: c.ct, Stream: true, Model: "m", Header: func(string) string { return "" }, Reasoning: true})
			body := chainBody{first: ans.Body, then: ResponsesResponse(meta, true, 200, "m")}
			if c.head != "" {
				body.Chunk([]byte(c.head), false)
			}
			ev := []byte(c.event)
			body.Chunk(ev, false)
			b.SetBytes(int64(len(ev)))
			b.ReportAllocs()
			for b.Loop() {
				if out, _ := body.Chunk(ev, false); len(out) == 0 {
					b.Fatal("no output")
				}
			}
		})
	}
}
