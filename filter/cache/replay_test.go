package cache

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/translate"
	"github.com/llmproc/llmproc/filter/usage"
)

// sseEvents parses a replayed stream strictly: every event is a data-only
// event, and each is a JSON object except the final [DONE].
func sseEvents(t *testing.T, stream []byte) []gjson.Result {
	t.Helper()
	var sc sse.Scanner
	var events []gjson.Result
	done := false
	sc.Feed(stream, func(e sse.Event) {
		if len(e.Name) != 0 || len(e.ID) != 0 {
			t.Errorf("event with name %q / id %q", e.Name, e.ID)
		}
		if done {
			t.Errorf("event after [DONE]: %s", e.Data)
		}
		if string(e.Data) == "[DONE]" {
			done = true
			return
		}
		if !gjson.ValidBytes(e.Data) || !gjson.ParseBytes(e.Data).IsObject() {
			t.Errorf("event is not a JSON object: %s", e.Data)
		}
		events = append(events, gjson.ParseBytes(bytes.Clone(e.Data)))
	})
	if sc.Flush(func(sse.Event) { t.Error("event left pending at the end") }) {
		t.Error("stream ends mid-event")
	}
	if !done {
		t.Error("no [DONE]")
	}
	return events
}

func TestReplayRoundTrip(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			completion, ok, reason := assemble(true, 0, readFixture(t, name+".sse"))
			if !ok {
				t.Fatal(reason)
			}
			e := Entry{Completion: completion, Stored: time.Unix(1767225600, 0)}
			if got := ReplayJSON(e); !bytes.Equal(got, completion) {
				t.Errorf("ReplayJSON = %s", got)
			}
			if got, ok, reason := assemble(false, 0, ReplayJSON(e)); !ok || !bytes.Equal(got, completion) {
				t.Errorf("ReplayJSON does not re-assemble (%s):\n got %s\nwant %s", reason, got, completion)
			}

			stream := ReplaySSE(e, true)
			events := sseEvents(t, stream)
			if got, ok, reason := assemble(true, 0, stream); !ok || !bytes.Equal(got, completion) {
				t.Errorf("ReplaySSE does not re-assemble (%s):\n got %s\nwant %s\nstream:\n%s", reason, got, completion, stream)
			}
			c := gjson.ParseBytes(completion)
			for i, ev := range events {
				for _, f := range []string{"id", "model", "created"} {
					if ev.Get(f).Raw != c.Get(f).Raw {
						t.Errorf("event %d: %s = %s, want %s", i, f, ev.Get(f).Raw, c.Get(f).Raw)
					}
				}
				if ev.Get("object").Str != "chat.completion.chunk" {
					t.Errorf("event %d: object %q", i, ev.Get("object").Str)
				}
			}
			if r := events[0].Get("choices.0.delta.role").Str; r != "assistant" {
				t.Errorf("first chunk role = %q", r)
			}
			last := events[len(events)-1]
			if last.Get("choices.#").Int() != 0 || !last.Get("usage").IsObject() {
				t.Errorf("last chunk is not the usage chunk: %s", last.Raw)
			}
			if fr := events[len(events)-2].Get("choices.0.finish_reason").Str; fr != c.Get("choices.0.finish_reason").Str {
				t.Errorf("finish chunk reason = %q", fr)
			}

			noUsage := ReplaySSE(e, false)
			for _, ev := range sseEvents(t, noUsage) {
				if ev.Get("usage").Exists() {
					t.Errorf("usage without include_usage: %s", ev.Raw)
				}
			}
			if !bytes.Equal(noUsage, bytes.Replace(stream, []byte(usageChunk(t, stream)), nil, 1)) {
				t.Error("the stream without usage is not the stream with usage minus its usage chunk")
			}
		})
	}
}

// usageChunk returns the usage event of a replayed stream.
func usageChunk(t *testing.T, stream []byte) string {
	t.Helper()
	for _, ev := range strings.SplitAfter(string(stream), "\n\n") {
		if strings.Contains(ev, `"choices":[],"usage"`) {
			return ev
		}
	}
	t.Fatal("no usage chunk")
	return ""
}

func TestReplayToolCallDeltas(t *testing.T) {
	completion, _, _ := assemble(false, 0, readFixture(t, "tools.json"))
	events := sseEvents(t, ReplaySSE(Entry{Completion: completion}, false))
	type call struct {
		index          int64
		id, name, args string
	}
	var got []call
	for _, ev := range events {
		ev.Get("choices.0.delta.tool_calls").ForEach(func(_, tc gjson.Result) bool {
			if !tc.Get("index").Exists() {
				t.Errorf("tool-call delta without index: %s", tc.Raw)
			}
			got = append(got, call{tc.Get("index").Int(), tc.Get("id").Str, tc.Get("function.name").Str, tc.Get("function.arguments").Str})
			return true
		})
	}
	want := []call{
		{0, "call_a", "get_weather", ""},
		{0, "", "", `{"city":"Paris"}`},
		{1, "call_b", "get_time", ""},
		{1, "", "", `{"tz":"CET"}`},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tool-call deltas\n got %v\nwant %v", got, want)
	}
}

// TestReplayLongText checks that long text is split into deltas on UTF-8
// boundaries and still re-assembles exactly.
func TestReplayLongText(t *testing.T) {
	text := strings.Repeat("ab€😀", 300) + "\x00\u2028"
	args := strings.Repeat(`{"k":"ü"}`, 100)
	reasoning := strings.Repeat("ü", 350)
	c := translate.Completion{ID: "x", Model: "m", Created: 1, Content: text, Reasoning: reasoning,
		ToolCalls: []translate.ToolCall{{ID: "c", Name: "f", Arguments: args}}, FinishReason: "stop",
		Usage: usage.Usage{Input: 1, Output: 2}}
	completion := c.JSON()
	stream := ReplaySSE(Entry{Completion: completion}, true)
	n := 0
	for _, ev := range sseEvents(t, stream) {
		d := ev.Get("choices.0.delta")
		for _, f := range []string{"content", "reasoning_content", "tool_calls.0.function.arguments"} {
			s := d.Get(f).Str
			if !utf8.ValidString(s) || len(s) > deltaBytes {
				t.Errorf("%s delta of %d bytes, valid UTF-8: %v", f, len(s), utf8.ValidString(s))
			}
			if s != "" {
				n++
			}
		}
	}
	if want := (len(text)+len(reasoning)+len(args))/deltaBytes + 3; n < want-3 || n > want+3 {
		t.Errorf("%d deltas, want about %d", n, want)
	}
	if got, ok, reason := assemble(true, 0, stream); !ok || !bytes.Equal(got, completion) {
		t.Errorf("re-assembled (%s):\n got %s\nwant %s", reason, got, completion)
	}
}

func TestCut(t *testing.T) {
	for _, s := range []string{"", "a", strings.Repeat("a", deltaBytes), strings.Repeat("a", deltaBytes+1),
		strings.Repeat("é", deltaBytes), strings.Repeat("😀", deltaBytes), strings.Repeat("\xff", 2*deltaBytes)} {
		var parts []string
		for rest := s; rest != ""; {
			var head string
			head, rest = cut(rest)
			if head == "" || len(head) > deltaBytes {
				t.Fatalf("cut made a piece of %d bytes", len(head))
			}
			if utf8.ValidString(s) && !utf8.ValidString(head) {
				t.Errorf("cut split a rune: %q", head)
			}
			parts = append(parts, head)
		}
		if strings.Join(parts, "") != s {
			t.Errorf("pieces do not join back")
		}
	}
}

// answer8KB is an 8 KB text answer, assembled.
func answer8KB(b *testing.B) Entry {
	c := translate.Completion{ID: "chatcmpl-1", Model: "gpt-4o-mini", Created: 1767225600,
		Content: strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8<<10/45), FinishReason: "stop",
		Usage: usage.Usage{Input: 500, Output: 2000}}
	return Entry{Completion: c.JSON(), Stored: time.Unix(1767225600, 0)}
}

func BenchmarkReplaySSE(b *testing.B) {
	e := answer8KB(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Completion)))
	for b.Loop() {
		ReplaySSE(e, true)
	}
}

func BenchmarkReplayJSON(b *testing.B) {
	e := answer8KB(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Completion)))
	for b.Loop() {
		ReplayJSON(e)
	}
}

func BenchmarkAssembleSSE(b *testing.B) {
	stream := ReplaySSE(answer8KB(b), true)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		a := NewAssembler(true, 0)
		for c := range chunksOf(stream, 512) {
			a.Write(c)
		}
		if _, ok := a.Finish(); !ok {
			b.Fatal(a.Reason())
		}
	}
}

// chunksOf yields b in chunks of n bytes.
func chunksOf(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}
