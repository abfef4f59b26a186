package sse

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ev is a copied Event, comparable after the callback returns.
type ev struct {
	Name, ID, Data string
}

// collect feeds the chunks to a fresh Scanner, flushes it and returns the
// events and Flush's result.
func collect(chunks ...[]byte) ([]ev, bool) {
	var s Scanner
	var out []ev
	fn := func(e Event) {
		out = append(out, ev{string(e.Name), string(e.ID), string(e.Data)})
	}
	for _, c := range chunks {
		s.Feed(c, fn)
	}
	inc := s.Flush(fn)
	return out, inc
}

func TestScannerSpec(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		want       []ev
		incomplete bool
	}{
		{name: "empty"},
		{name: "one event", in: "data: x\n\n", want: []ev{{Data: "x"}}},
		{name: "no space after colon", in: "data:x\n\n", want: []ev{{Data: "x"}}},
		{name: "only one space dropped", in: "data:  x\n\n", want: []ev{{Data: " x"}}},
		{name: "multi-line data", in: "data: a\ndata: b\n\n", want: []ev{{Data: "a\nb"}}},
		{name: "crlf", in: "data: a\r\ndata: b\r\n\r\n", want: []ev{{Data: "a\nb"}}},
		{name: "cr only", in: "data: a\rdata: b\r\r", want: []ev{{Data: "a\nb"}}},
		{name: "mixed endings", in: "data: a\r\ndata: b\rdata: c\n\r\n", want: []ev{{Data: "a\nb\nc"}}},
		{name: "comment ignored", in: ": ping\ndata: x\n: more\n\n", want: []ev{{Data: "x"}}},
		{name: "comment only", in: ": ping\n\n"},
		{name: "event name", in: "event: error\ndata: {}\n\n", want: []ev{{Name: "error", Data: "{}"}}},
		{name: "name does not leak", in: "event: a\ndata: 1\n\ndata: 2\n\n", want: []ev{{Name: "a", Data: "1"}, {Data: "2"}}},
		{name: "name without data dropped", in: "event: a\n\ndata: 2\n\n", want: []ev{{Data: "2"}}},
		{name: "id persists", in: "id: 7\ndata: 1\n\ndata: 2\n\nid\ndata: 3\n\n", want: []ev{{ID: "7", Data: "1"}, {ID: "7", Data: "2"}, {Data: "3"}}},
		{name: "id with NUL ignored", in: "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", want: []ev{{ID: "1", Data: "a"}, {ID: "1", Data: "b"}}},
		{name: "empty data line", in: "data\n\n", want: []ev{{Data: ""}}},
		{name: "data colon only", in: "data:\n\n", want: []ev{{Data: ""}}},
		{name: "two empty data lines", in: "data\ndata\n\n", want: []ev{{Data: "\n"}}},
		{name: "unknown field ignored", in: "retry: 10\nfoo: bar\ndata: x\n\n", want: []ev{{Data: "x"}}},
		{name: "field name is case sensitive", in: "Data: x\n\n"},
		{name: "colon in value kept", in: "data: a: b\n\n", want: []ev{{Data: "a: b"}}},
		{name: "bom stripped", in: "\xEF\xBB\xBFdata: x\n\n", want: []ev{{Data: "x"}}},
		{name: "bom only at start", in: "data: x\n\n\xEF\xBB\xBFdata: y\n\n", want: []ev{{Data: "x"}}},
		{name: "done", in: "data: [DONE]\n\n", want: []ev{{Data: "[DONE]"}}},
		{name: "flush pending event", in: "data: x\n", want: []ev{{Data: "x"}}, incomplete: true},
		{name: "flush partial line", in: "data: x\n\ndata: y", want: []ev{{Data: "x"}, {Data: "y"}}, incomplete: true},
		{name: "flush partial cr", in: "data: x\r", want: []ev{{Data: "x"}}, incomplete: true},
		{name: "complete ending in cr", in: "data: x\r\r", want: []ev{{Data: "x"}}},
		{name: "truncated field name", in: "data: x\n\nda", want: []ev{{Data: "x"}}, incomplete: true},
		{name: "trailing comment is not incomplete", in: "data: x\n\n: bye\n", want: []ev{{Data: "x"}}},
		{name: "blank lines between", in: "\n\n\ndata: x\n\n\n\n", want: []ev{{Data: "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, inc := collect([]byte(tt.in))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if inc != tt.incomplete {
				t.Errorf("incomplete = %v, want %v", inc, tt.incomplete)
			}
		})
	}
}

func TestScannerReuse(t *testing.T) {
	var s Scanner
	var got []string
	fn := func(e Event) { got = append(got, string(e.Name)+"|"+string(e.ID)+"|"+string(e.Data)) }
	s.Feed([]byte("\xEF\xBB\xBFid: 1\nevent: a\ndata: x"), fn)
	s.Reset()
	s.Feed([]byte("\xEF\xBB\xBFdata: y\n\n"), fn)
	want := []string{"||y"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after Reset (-want +got):\n%s", diff)
	}
}

func fixtures(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.sse")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	m := make(map[string][]byte)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(p)] = b
	}
	return m
}

func TestFixturesSplitAnywhere(t *testing.T) {
	wantCounts := map[string]int{"openai_usage.sse": 7, "openai_tools.sse": 6, "crlf.sse": 4}
	for name, in := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			want, inc := collect(in)
			if inc {
				t.Fatalf("whole stream reported incomplete")
			}
			if n, ok := wantCounts[name]; ok && len(want) != n {
				t.Fatalf("got %d events, want %d: %q", len(want), n, want)
			}
			for i := 0; i <= len(in); i++ {
				got, inc := collect(in[:i], in[i:])
				if inc {
					t.Fatalf("split at %d: incomplete", i)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("split at %d (-want +got):\n%s", i, diff)
				}
			}
			bytewise := make([][]byte, len(in))
			for i := range in {
				bytewise[i] = in[i : i+1]
			}
			got, _ := collect(bytewise...)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("1-byte chunks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCRLFFixture(t *testing.T) {
	got, _ := collect(fixtures(t)["crlf.sse"])
	if len(got) != 4 {
		t.Fatalf("got %d events", len(got))
	}
	if got[0].ID != "1" || got[0].Name != "message" || got[1].ID != "2" || got[3].ID != "2" {
		t.Errorf("ids/names wrong: %+v", got)
	}
	if !bytes.Contains([]byte(got[1].Data), []byte("\"model\":\"llama-3.1-8b-instruct\",\n\"choices\"")) {
		t.Errorf("multi-line data not joined with \\n: %q", got[1].Data)
	}
	if got[3].Data != "[DONE]" {
		t.Errorf("last event %q", got[3].Data)
	}
}

func TestAppend(t *testing.T) {
	tests := []struct {
		name, event, data, want string
	}{
		{name: "plain", data: `{"a":1}`, want: "data: {\"a\":1}\n\n"},
		{name: "empty", data: "", want: "data: \n\n"},
		{name: "multi-line", data: "a\nb", want: "data: a\ndata: b\n\n"},
		{name: "crlf in data", data: "a\r\nb\rc", want: "data: a\ndata: b\ndata: c\n\n"},
		{name: "trailing newline", data: "a\n", want: "data: a\ndata: \n\n"},
		{name: "named", event: "error", data: "{}", want: "event: error\ndata: {}\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			if tt.event == "" {
				got = AppendData([]byte("x"), []byte(tt.data))
			} else {
				got = AppendEvent([]byte("x"), tt.event, []byte(tt.data))
			}
			if string(got) != "x"+tt.want {
				t.Errorf("got %q, want %q", got, "x"+tt.want)
			}
			// What is written reads back as written (line breaks become \n).
			evs, inc := collect(got[1:])
			wantData := string(bytes.ReplaceAll(bytes.ReplaceAll([]byte(tt.data), []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n")))
			if inc || len(evs) != 1 || evs[0].Data != wantData || evs[0].Name != tt.event {
				t.Errorf("round trip: %+v incomplete=%v", evs, inc)
			}
		})
	}
}

func FuzzScanner(f *testing.F) {
	for _, in := range fixtures(f) {
		f.Add(in, uint16(len(in)/2))
	}
	f.Add([]byte("data: a\r\n\r\ndata: b\r\r"), uint16(9))
	f.Add([]byte("event: x\nid: 1\ndata\n\n:c\n"), uint16(3))
	f.Fuzz(func(t *testing.T, in []byte, at uint16) {
		cut := int(at) % (len(in) + 1)
		want, wantInc := collect(in)
		got, gotInc := collect(in[:cut], in[cut:])
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("split at %d (-whole +split):\n%s", cut, diff)
		}
		if wantInc != gotInc {
			t.Fatalf("incomplete: whole %v, split %v", wantInc, gotInc)
		}
	})
}

// stream200 builds a 200-chunk OpenAI stream, one event per chunk, with the
// chunk boundaries shifted off the event boundaries.
func stream200() [][]byte {
	var all []byte
	for i := 0; i < 199; i++ {
		all = fmt.Appendf(all, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"tok%d "},"finish_reason":null}],"usage":null}`+"\n\n", i)
	}
	all = append(all, "data: [DONE]\n\n"...)
	chunks := make([][]byte, 0, 200)
	size := len(all) / 200
	for len(all) > size {
		chunks = append(chunks, all[:size])
		all = all[size:]
	}
	return append(chunks, all)
}

// BenchmarkScanner scans a 200-chunk stream per op. Compare runs with
// benchstat: go test -bench Scanner -count 10 ./filter/sse > new.txt
func BenchmarkScanner(b *testing.B) {
	chunks := stream200()
	var total int
	for _, c := range chunks {
		total += len(c)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	var s Scanner
	n := 0
	fn := func(e Event) { n += len(e.Data) }
	for b.Loop() {
		for _, c := range chunks {
			s.Feed(c, fn)
		}
		s.Flush(fn)
	}
	if n == 0 {
		b.Fatal("no events")
	}
}
