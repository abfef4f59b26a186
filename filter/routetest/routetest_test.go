package routetest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/llmproc/llmproc/filter/config"
)

const cfg = `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
backends:
  - {name: openai, schema: openai, url: https://api.openai.com}
models:
  - {name: gpt-4o-mini, pool: cheap}
  - {name: claude-sonnet-4-5, aliases: [sonnet, "claude-sonnet-4-5*"], pool: cheap}
pools:
  - {name: cheap, backends: [{backend: openai}]}
  - {name: code, backends: [{backend: openai, model: gpt-4.1}]}
routing:
  tenant_header: X-Tenant
routes:
  - {name: blocked, match: {when: 'tenant == "blocked"'}, deny: suspended}
  - {name: code, match: {model: auto, when: 'class == "code"'}, pool: code}
  - {name: rest, match: {model: auto}, pool: cheap}
`

func runtime(t *testing.T) *config.Runtime {
	t.Helper()
	c, err := config.Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Topology(c)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestRun(t *testing.T) {
	in := strings.Join([]string{
		`# comment`,
		``,
		`{"model":"auto","messages":[{"role":"user","content":"hello"}]}`,
		`{"name":"code","body":{"model":"auto","messages":[{"role":"user","content":"` + "```go\\nfunc f() {}\\n```" + `"}]},"expect":{"rule":"code","pool":"code","class":"code"}}`,
		`{"name":"tenant","headers":{"X-Tenant":"blocked"},"body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]},"expect":{"error":"request_denied"}}`,
		`{"name":"wrong","body":{"model":"auto","messages":[{"role":"user","content":"hi"}]},"expect":{"pool":"code","class":"code"}}`,
		`{"name":"unexpected error","body":{"model":"nope","messages":[{"role":"user","content":"hi"}]},"expect":{"pool":"cheap"}}`,
		`{"name":"bad body","body":{"messages":[]},"expect":{"error":"missing_required_parameter"}}`,
	}, "\n")
	var out bytes.Buffer
	failed, err := Run(runtime(t), strings.NewReader(in), &out, true)
	if err != nil {
		t.Fatal(err)
	}
	if failed != 2 {
		t.Errorf("failed = %d, want 2\n%s", failed, out.String())
	}
	var got []Result
	dec := json.NewDecoder(&out)
	for dec.More() {
		var r Result
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	want := []struct {
		line     int
		rule     string
		pool     string
		errCode  string
		mismatch int
	}{
		{3, "rest", "cheap", "", 0},
		{4, "code", "code", "", 0},
		{5, "blocked", "", "request_denied", 0},
		{6, "rest", "cheap", "", 2},
		{7, "", "", "model_not_found", 2},
		{8, "", "", "missing_required_parameter", 0},
	}
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line || g.Rule != w.rule || g.Pool != w.pool || g.Error != w.errCode || len(g.Mismatch) != w.mismatch {
			t.Errorf("result %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestRunBadLine(t *testing.T) {
	_, err := Run(runtime(t), strings.NewReader("{\"model\":\n"), &bytes.Buffer{}, false)
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("err = %v, want one naming line 1", err)
	}
	_, err = Run(runtime(t), strings.NewReader(`{"body":{},"expekt":{}}`), &bytes.Buffer{}, false)
	if err == nil || !strings.Contains(err.Error(), "expekt") {
		t.Errorf("err = %v, want one naming the unknown field", err)
	}
}

// TestRunEntry: a result names the registry entry the model matched, a
// glob alias for Claude Code's dated and suffixed names.
func TestRunEntry(t *testing.T) {
	in := strings.Join([]string{
		`{"body":{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user","content":"hi"}]},"expect":{"entry":"models[1].aliases[1]","pool":"cheap"}}`,
		`{"body":{"model":"claude-sonnet-4-5[1m]","messages":[{"role":"user","content":"hi"}]},"expect":{"entry":"models[1].aliases[1]"}}`,
		`{"body":{"model":"sonnet","messages":[{"role":"user","content":"hi"}]},"expect":{"entry":"models[1].aliases[0]"}}`,
		`{"body":{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]},"expect":{"entry":"models[1].aliases[1]"}}`,
	}, "\n")
	var out bytes.Buffer
	failed, err := Run(runtime(t), strings.NewReader(in), &out, false)
	if err != nil {
		t.Fatal(err)
	}
	if failed != 1 || !strings.Contains(out.String(), `FAIL entry: want "models[1].aliases[1]", got "models[1].name"`) ||
		!strings.Contains(out.String(), "entry: models[1].aliases[1] (claude-sonnet-4-5)") {
		t.Errorf("failed = %d, want 1 (the exact name wins)\n%s", failed, out.String())
	}
}

// TestRunExplains: each classified case carries the model's explanation
// (probability, runner-up, top features), and a file whose cases expect
// classes ends with the classifier's accuracy and confusion matrix.
func TestRunExplains(t *testing.T) {
	in := strings.Join([]string{
		`{"name":"poem","body":{"model":"auto","messages":[{"role":"user","content":"Write a poem about the autumn rain."}]},"expect":{"class":"creative"}}`,
		`{"name":"hi","body":{"model":"auto","messages":[{"role":"user","content":"Hello! How are you?"}]},"expect":{"class":"code"}}`,
	}, "\n")
	var out bytes.Buffer
	if _, err := Run(runtime(t), strings.NewReader(in), &out, false); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"class: creative ", "(runner-up ", "    because: ", "classes expected: accuracy 1/2 = 50.0%", "confusion (rows labelled, columns predicted)"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	out.Reset()
	if _, err := Run(runtime(t), strings.NewReader(in), &out, true); err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.NewDecoder(&out).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if e := r.Explanation; e == nil || e.Class != "creative" || e.RunnerUp == "" || len(e.Top) == 0 || e.Probabilities["creative"] != e.Confidence {
		t.Errorf("explanation %+v", r.Explanation)
	}
}
