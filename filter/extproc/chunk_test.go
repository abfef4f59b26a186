package extproc

import (
	"bytes"
	"testing"
)

// lastEventEndRef is lastEventEnd by its definition: just past the last
// "\n\n" or "\r\n\r\n", whichever ends later.
func lastEventEndRef(b []byte) int {
	end := -1
	if i := bytes.LastIndex(b, []byte("\n\n")); i >= 0 {
		end = i + 2
	}
	if j := bytes.LastIndex(b, []byte("\r\n\r\n")); j >= 0 {
		end = max(end, j+4)
	}
	return end
}

func TestLastEventEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", -1},
		{"\n", -1},
		{"data: x\n", -1},
		{"data: x\n\n", 9},
		{"data: x\r\n\r\n", 11},
		{"data: x\n\r\n", -1},
		{"data: x\r\r", -1},
		{"a\n\nb\r\n\r\nc", 8},
		{"a\r\n\r\nb\n\nc", 8},
		{"data: x\n\ndata: y", 9},
		// The scan this replaced said 3 here: past the blank line.
		{"\n\ndata: y", 2},
	} {
		if got := lastEventEnd([]byte(tc.in)); got != tc.want || got != lastEventEndRef([]byte(tc.in)) {
			t.Errorf("lastEventEnd(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func FuzzLastEventEnd(f *testing.F) {
	for _, s := range []string{"data: x\n\n", "a\r\n\r\nb\n\nc", "\r\n\n\r\r\n", "x\n\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := lastEventEnd(b), lastEventEndRef(b); got != want {
			t.Fatalf("lastEventEnd(%q) = %d, want %d", b, got, want)
		}
	})
}

// TestStripPassesUnchanged: a chunk the stripper reads (it names usage) but
// leaves as it was passes, so the reply does not echo it back.
func TestStripPassesUnchanged(t *testing.T) {
	var s usageStripper
	in := []byte(`data: {"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":1}}` + "\n\n")
	if out, pass := s.chunk(in, false); !pass {
		t.Fatalf("unchanged chunk replaced by %q", out)
	}
	only := []byte(`data: {"choices":[],"usage":{"prompt_tokens":1}}` + "\n\n")
	if out, pass := s.chunk(only, false); pass || len(out) != 0 {
		t.Fatalf("usage-only chunk: %q, pass %v", out, pass)
	}
}
