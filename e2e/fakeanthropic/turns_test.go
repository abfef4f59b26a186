package fakeanthropic

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
)

func TestToolResults(t *testing.T) {
	body := `{"messages":[{"role":"user","content":"hi"},
		{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"ls","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"a.txt"},
			{"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"b"},{"type":"text","text":"c"}]},
			{"type":"text","text":"go on"}]}]}`
	want := []fake.ToolResult{{CallID: "toolu_1", Output: "a.txt"}, {CallID: "toolu_2", Output: "bc"}}
	if diff := cmp.Diff(want, ToolResults(Request{Body: []byte(body)})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if rs := ToolResults(Request{Body: []byte(`{"messages":[{"role":"user","content":"hi"}]}`)}); rs != nil {
		t.Errorf("no results: %v", rs)
	}
}

// A tool use alone (no text block), then an answer quoting its result.
func TestTurns(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	s.Turns(
		func([]fake.ToolResult) Behaviour {
			return Behaviour{ToolUses: []ToolUse{{ID: "toolu_1", Name: "date"}}}
		},
		func(rs []fake.ToolResult) Behaviour { return Behaviour{Content: "it is " + rs[0].Output} },
	)
	ask := func(body string) string {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/v1/messages", strings.NewReader(body))
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	first := gjson.Parse(ask(`{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"date?"}]}`))
	if first.Get("content.#").Int() != 1 || first.Get("content.0.type").Str != "tool_use" || first.Get("stop_reason").Str != "tool_use" {
		t.Errorf("first turn %s", first.Raw)
	}
	second := gjson.Parse(ask(`{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"date?"},
		{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"date","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"Monday"}]}]}`))
	if second.Get("content.0.text").Str != "it is Monday" {
		t.Errorf("second turn %s", second.Raw)
	}
}
