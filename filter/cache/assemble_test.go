package cache

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.want.json")

var fixtures = []string{"text", "tools", "reasoning"}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assemble feeds chunks to a new Assembler and finishes it.
func assemble(stream bool, maxBytes int, chunks ...[]byte) ([]byte, bool, string) {
	a := NewAssembler(stream, maxBytes)
	for _, c := range chunks {
		a.Write(c)
	}
	out, ok := a.Finish()
	return out, ok, a.Reason()
}

// TestAssembleFixtures checks each fixture, streamed and not, against one
// golden completion, whole, split in two at every byte, and byte by byte.
func TestAssembleFixtures(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			golden := filepath.Join("testdata", name+".want.json")
			first, ok, reason := assemble(true, 0, readFixture(t, name+".sse"))
			if !ok {
				t.Fatalf("stream refused: %s", reason)
			}
			if *update {
				if err := os.WriteFile(golden, append(first, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := bytes.TrimSuffix(readFixture(t, name+".want.json"), []byte("\n"))
			for _, stream := range []bool{true, false} {
				in := readFixture(t, name+map[bool]string{true: ".sse", false: ".json"}[stream])
				check := func(how string, chunks ...[]byte) {
					t.Helper()
					got, ok, reason := assemble(stream, 0, chunks...)
					if !ok || !bytes.Equal(got, want) {
						t.Fatalf("stream=%v %s: ok=%v (%s)\n got %s\nwant %s", stream, how, ok, reason, got, want)
					}
				}
				check("whole", in)
				for i := range in {
					check("split", in[:i], in[i:])
				}
				bytewise := make([][]byte, len(in))
				for i := range in {
					bytewise[i] = in[i : i+1]
				}
				check("byte by byte", bytewise...)
			}
		})
	}
}

func TestAssembleRefuses(t *testing.T) {
	text := string(readFixture(t, "text.sse"))
	tools := string(readFixture(t, "tools.sse"))
	textJSON := string(readFixture(t, "text.json"))
	const usage = `"usage":{"prompt_tokens":1,"completion_tokens":1}`
	chunk := func(choice string) string {
		return `data: {"id":"x","model":"m","choices":[` + choice + `]}` + "\n\n"
	}
	finish := `data: {"id":"x","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],` + usage + "}\n\ndata: [DONE]\n\n"
	tests := []struct {
		name     string
		stream   bool
		maxBytes int
		in       string
		want     string
	}{
		{"no [DONE]", true, 0, strings.TrimSuffix(text, "data: [DONE]\n\n"), SkipCut},
		{"cut mid event", true, 0, text[:len(text)/2], SkipCut},
		{"cut in [DONE]", true, 0, strings.TrimSuffix(text, "\n\n"), SkipCut},
		{"empty stream", true, 0, "", SkipCut},
		{"error event", true, 0, strings.Replace(text, ": keep-alive\n", "event: error\ndata: {\"error\":{\"message\":\"overloaded\"}}\n", 1), SkipError},
		{"error object", true, 0, strings.Replace(text, ": keep-alive\n", "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n", 1), SkipError},
		{"no usage", true, 0, strings.Replace(text, `"usage":{"prompt_tokens"`, `"usage_":{"prompt_tokens"`, 1), SkipNoUsage},
		{"no finish", true, 0, strings.Replace(text, `"finish_reason":"stop"`, `"finish_reason":null`, 1), SkipNoFinish},
		{"too large", true, 10, text, SkipTooLarge},
		{"completion too large", true, 300, text, SkipTooLarge},
		{"invalid chunk", true, 0, strings.Replace(text, ": keep-alive\n", "data: {not json\n", 1), SkipInvalid},
		{"array chunk", true, 0, strings.Replace(text, ": keep-alive\n", "data: [1]\n", 1), SkipInvalid},
		{"second choice", true, 0, chunk(`{"index":1,"delta":{"content":"b"}}`) + finish, SkipUnsupported},
		{"logprobs", true, 0, chunk(`{"index":0,"delta":{"content":"a"},"logprobs":{"content":[{"token":"a","logprob":-0.1}]}}`) + finish, SkipUnsupported},
		{"audio", true, 0, chunk(`{"index":0,"delta":{"audio":{"id":"au_1","data":"AAAA"}}}`) + finish, SkipUnsupported},
		{"legacy function_call", true, 0, chunk(`{"index":0,"delta":{"function_call":{"name":"f","arguments":"{}"}}}`) + finish, SkipUnsupported},
		{"custom tool", true, 0, chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"custom","custom":{"name":"f","input":"x"}}]}}`) + finish, SkipUnsupported},
		{"tool index gap", true, 0, chunk(`{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}}`) + finish, SkipUnsupported},
		{"object arguments", true, 0, chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":{}}}]}}`) + finish, SkipUnsupported},
		{"content parts", true, 0, chunk(`{"index":0,"delta":{"content":[{"type":"text","text":"a"}]}}`) + finish, SkipUnsupported},
		{"tool role", true, 0, chunk(`{"index":0,"delta":{"role":"tool","content":"a"}}`) + finish, SkipUnsupported},
		{"tools without usage", true, 0, strings.Replace(tools, `"usage":{`, `"usage":null,"x":{`, 1), SkipNoUsage},
		{"json empty", false, 0, "", SkipCut},
		{"json cut", false, 0, textJSON[:len(textJSON)-5], SkipCut},
		{"json error", false, 0, `{"error":{"message":"rate limited","type":"rate_limit_error","code":"rate_limit_exceeded"}}`, SkipError},
		{"json not object", false, 0, `[]`, SkipInvalid},
		{"json no choices", false, 0, `{"id":"x","choices":[],` + usage + `}`, SkipUnsupported},
		{"json two choices", false, 0, `{"id":"x","choices":[{"index":0,"message":{"content":"a"},"finish_reason":"stop"},{"index":1,"message":{"content":"b"},"finish_reason":"stop"}],` + usage + `}`, SkipUnsupported},
		{"json no usage", false, 0, `{"id":"x","choices":[{"index":0,"message":{"content":"a"},"finish_reason":"stop"}]}`, SkipNoUsage},
		{"json bad usage", false, 0, `{"id":"x","choices":[{"index":0,"message":{"content":"a"},"finish_reason":"stop"}],"usage":7}`, SkipInvalid},
		{"json no finish", false, 0, `{"id":"x","choices":[{"index":0,"message":{"content":"a"}}],` + usage + `}`, SkipNoFinish},
		{"json annotations", false, 0, `{"id":"x","choices":[{"index":0,"message":{"content":"a","annotations":[{"type":"url_citation"}]},"finish_reason":"stop"}],` + usage + `}`, SkipUnsupported},
		{"json too large", false, 10, textJSON, SkipTooLarge},
		{"json body far too large", false, 10, textJSON + strings.Repeat(" ", 5000), SkipTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, reason := assemble(tt.stream, tt.maxBytes, []byte(tt.in))
			if ok || got != nil || reason != tt.want {
				t.Errorf("ok=%v reason=%q completion=%s, want refused with %q", ok, reason, got, tt.want)
			}
		})
	}
}

func TestAssembleAfterDone(t *testing.T) {
	in := string(readFixture(t, "text.sse")) + "data: {\"error\":{\"message\":\"late\"}}\n\n"
	if _, ok, reason := assemble(true, 0, []byte(in)); !ok {
		t.Errorf("event after [DONE] refused the answer: %s", reason)
	}
}

func TestAssembleMaxBytesAllowsFit(t *testing.T) {
	want, _, _ := assemble(true, 0, readFixture(t, "text.sse"))
	if _, ok, reason := assemble(true, len(want), readFixture(t, "text.sse")); !ok {
		t.Errorf("completion of exactly maxBytes refused: %s", reason)
	}
	if _, ok, _ := assemble(true, len(want)-1, readFixture(t, "text.sse")); ok {
		t.Error("completion one byte over maxBytes stored")
	}
}
