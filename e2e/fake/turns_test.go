package fake

import (
	"testing"

	"github.com/tidwall/gjson"
)

func TestTurns(t *testing.T) {
	// A request here is the list of its tool results' outputs.
	results := func(req []string) []ToolResult {
		var rs []ToolResult
		for i, o := range req {
			rs = append(rs, ToolResult{CallID: string(rune('a' + i)), Output: o})
		}
		return rs
	}
	script := Turns(results,
		func(rs []ToolResult) string { return "call the tool" },
		func(rs []ToolResult) string { return "the tool said " + rs[0].Output },
	)
	tests := []struct {
		req  []string
		want string
	}{
		{nil, "call the tool"},
		{[]string{"42"}, "the tool said 42"},
		{[]string{"7", "8"}, "the tool said 7"}, // more results: the last turn
	}
	for _, tt := range tests {
		if got := script(tt.req); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.req, got, tt.want)
		}
	}
	if got := Turns[[]string, string](results)(nil); got != "" {
		t.Errorf("no turns: %q, want the zero behaviour", got)
	}
	q := NewQueue[[]string]("default")
	q.Script(script)
	if b, _ := q.Next([]string{"x"}); b != "the tool said x" {
		t.Errorf("through a queue: %q", b)
	}
}

func TestResultText(t *testing.T) {
	tests := map[string]string{
		`"plain"`: "plain",
		`[{"type":"text","text":"a"},{"type":"image"},{"type":"text","text":"b"}]`: "ab",
		`[{"text":"x"},{"json":{"k":1}}]`:                                          `x{"k":1}`,
		`{"result":"ok"}`:                                                          `{"result":"ok"}`,
	}
	for in, want := range tests {
		if got := ResultText(gjson.Parse(in)); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}
