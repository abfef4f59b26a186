package route

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/features.golden from the current Features")

// goldenConfigs are the classifier configurations the golden file records:
// the default (the shipped model), the keyword classifier's defaults, a small odd window (the head and tail cut through words,
// escapes and UTF-8), cues of one's own (a duplicate of a built-in word,
// short words, phrases, symbols, non-ASCII) with other limits and weights, and
// high thresholds with one hit per keyword.
var goldenConfigs = []struct {
	name string
	cfg  ClassifierConfig
}{
	{"model", ClassifierConfig{}}, // the default kind: the shipped model
	{"keywords", ClassifierConfig{Kind: KindKeywords}},
	{"window", ClassifierConfig{Kind: KindKeywords, MaxClassifyBytes: 301}},
	{"custom", ClassifierConfig{Kind: KindKeywords,
		MaxHitsPerKeyword: 7, KeywordWeight: 0.75, FenceWeight: -1, ToolsWeight: 2, LongInputTokens: 900,
		Keywords: map[Class][]string{
			ClassCode:       {"Python", "c#", "sync keep", "x", "ab", "go", "=="},
			ClassReasoning:  {"a b", "∑∑", "why does", " think "},
			ClassExtraction: {"json", "tl;dr", "__init__", "s3://"},
			ClassCreative:   {"é", "dragon", "中文", "once upon a"},
		},
	}},
	{"strict", ClassifierConfig{Kind: KindKeywords,
		MaxHitsPerKeyword: 1, CodeMinScore: 4, ReasoningMinScore: 3.5, ExtractionMinScore: 5, CreativeMinScore: 2,
		ResponseFormatWeight: -1, LongInputWeight: 9, MaxClassifyBytes: 2048,
	}},
}

// TestFeaturesGolden records the complete Features of every fixture line and
// of generated bodies (long texts past the classify window, mixed case,
// escapes, Unicode, code, odd structures and invalid JSON) under several
// configurations in testdata/features.golden, and checks that they do not
// change: the classifier and the token estimate may get faster, never
// different. Run with -update only when a change of results is meant.
func TestFeaturesGolden(t *testing.T) {
	var out bytes.Buffer
	for _, gc := range goldenConfigs {
		c := NewClassifier(gc.cfg)
		for _, gb := range goldenBodies(t, gc.name) {
			row := struct {
				Case     string    `json:"case"`
				Config   string    `json:"config"`
				Error    string    `json:"error,omitempty"`
				Features *Features `json:"features,omitempty"`
			}{Case: gb.name, Config: gc.name}
			f, err := c.Features(gb.body)
			if err != nil {
				row.Error = err.Error()
			} else {
				row.Features = &f
			}
			line, err := json.Marshal(row)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	const file = "testdata/features.golden"
	if *update {
		if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if bytes.Equal(out.Bytes(), want) {
		return
	}
	got, wantLines := strings.Split(out.String(), "\n"), strings.Split(string(want), "\n")
	if len(got) != len(wantLines) {
		t.Errorf("%d golden lines, want %d", len(got), len(wantLines))
	}
	shown := 0
	for i := range min(len(got), len(wantLines)) {
		if got[i] != wantLines[i] && shown < 10 {
			t.Errorf("line %d\n got: %s\nwant: %s", i+1, got[i], wantLines[i])
			shown++
		}
	}
}

type goldenBody struct {
	name string
	body []byte
}

// goldenBodies returns the bodies recorded for one configuration: the
// fixture files for the default and custom configurations, and the
// generated bodies for every configuration.
func goldenBodies(t *testing.T, config string) []goldenBody {
	var out []goldenBody
	if config == "model" || config == "keywords" || config == "custom" {
		for _, file := range []string{"testdata/classify.jsonl", "testdata/tokens.jsonl"} {
			for i, line := range fixtures(t, file) {
				out = append(out, goldenBody{fmt.Sprintf("%s:%d", file, i+1), line})
			}
		}
	}
	for i, b := range edgeBodies {
		out = append(out, goldenBody{fmt.Sprintf("edge:%d", i), []byte(b)})
	}
	g := newBodyGen(1)
	for i := range 120 {
		out = append(out, goldenBody{fmt.Sprintf("generated:%d", i), g.body(i)})
	}
	return out
}

// edgeBodies are odd but (mostly) valid request shapes, written out by hand.
var edgeBodies = []string{
	`{}`,
	" \t\r\n{ } \n",
	``, `[]`, `{`, `"x"`, `{"a":}`, `{"messages":[}`, "{\"messages\":\"\x01\"}",
	`{"model":"auto","messages":[{"role":"user","content":"Prove that \u221a2 is irrational."}]}`,
	`{"mod\u0065l":"gpt\u002d4o","m\u0065ssages":[{"r\u006fle":"sys\u0074em","c\u006fntent":"Write a poem"}]}`,
	`{"model":12.50,"user":true,"messages":[{"role":7,"content":"extract the names"}]}`,
	`{"model":{"a":[1,2]},"user":null,"metadata":{"user_id":42},"messages":[]}`,
	`{"metadata":{"user_id":"m-1"},"user":"u-1","messages":[{"content":"summarize"}]}`,
	`{"user":"u-1","metadata":{"user_id":"m-1"},"messages":[{"content":"summarize"}]}`,
	`{"user":"","metadata":{"user_id":"m-\"1\""},"messages":[{"content":"summarize"}]}`,
	`{"messages":[{"role":"user","content":"a"}],"messages":[{"role":"user","content":"prove b"}]}`,
	`{"messages":[{"role":"user","role":"assistant","content":"prove it","content":"poem"}]}`,
	`{"messages":[{"role":"assistant","content":"prove it"},{"role":"tool","content":"story"},{"role":"developer","content":"JSON only"}]}`,
	`{"messages":{"role":"user","content":"prove it"}}`,
	`{"messages":"prove it"}`,
	`{"messages":[1,"prove",null,[{"role":"user","content":"prove"}],{"role":"user","content":{"text":"prove"}}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"Write a haiku"},{"type":"image_url","image_url":{"url":"x"}},{"type":"input_text","text":"about code"},{"type":"input_image"},{"type":"image"}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text"},{"type":"text","text":12345},{"type":"text","text":{"a":"prove"}},{"type":"text","text":true},{"type":"text","text":null},{"type":"text","text":[1,"x"]},{"type":"text","text":-1.5e3}]}]}`,
	`{"messages":[{"role":"user","content":[{"text":"prove","type":"text","type":"image"},{"type":"text","text":"first","text":"second"},"loose",7,null,[{"type":"text","text":"nested"}]]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"t\u0065xt","t\u0065xt":"prove \u0041 \ud83d\ude00 \ud800 \udc00x \/ \\ \" \b\f\n\r\t"}]}]}`,
	`{"system":"You are a poet.","messages":[{"role":"user","content":"the sea"}]}`,
	`{"system":[{"type":"text","text":"Answer in JSON."},{"type":"text"},"x",{"text":99}],"messages":[{"role":"user","content":"list all cities"}]}`,
	`{"system":{"text":"poem"},"messages":[{"role":"user","content":"hi"}]}`,
	`{"system":"a","system":"b","messages":[]}`,
	`{"tools":[ ],"functions":[{}],"messages":[{"role":"user","content":"weather?"}]}`,
	`{"tools":{"a":1},"messages":[{"role":"user","content":"weather?"}]}`,
	`{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tools":[1,2],"messages":[]}`,
	`{"response_format":{"type":"json_\u006fbject"},"messages":[]}`,
	`{"response_format":{"type":"json_schema","type":"text"},"messages":[]}`,
	`{"response_format":{"type":"text","type":"json_object"},"messages":[]}`,
	`{"response_format":"json_object","messages":[]}`,
	`{"stream":"true","max_tokens":"12","messages":[]}`,
	`{"stream":true,"stream":false,"max_tokens":1e3,"messages":[]}`,
	`{"max_tokens":-5,"max_completion_tokens":0,"messages":[]}`,
	`{"max_tokens":1.9,"max_completion_tokens":-1,"messages":[]}`,
	`{"max_completion_tokens":99999999999999999999,"max_tokens":7,"messages":[]}`,
	`{"max_completion_tokens":"3","max_tokens":null,"messages":[]}`,
	`{"max_tokens":12,"max_tokens":13,"messages":[]}`,
	"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\x80\xe3 prove \xed\xa0\x80 ```go\\nfunc main() {}\\n```\"}]}",
	`{"messages":[{"role":"user","content":"123 456 7890 \u0030\u0031 ４５ 中文字 かな 한국어 ∑≤≥∫√ é"}]}`,
	`{"messages":[{"role":"user","content":"=====> -->>> };; ();(); c+++ p(p(x)) o(n o(n^2 x == 1 x = 2 tl;dr;dr .py.py main.go.go #include#include"}]}`,
	`{"messages":[{"role":"user","content":"Step By Step STEP-BY-STEP stepbystep step  by step PROVE Prove proven disprove re-prove"}]}`,
	`{"messages":[{"role":"user","content":"classify classifying class classes CLASS_ class() _class func func() funcs def def_ import imports"}]}`,
	`{"messages":[{"role":"user","content":"` + strings.Repeat("story ", 40) + strings.Repeat("poem, ", 5) + `"}]}`,
	`{"messages":[{"role":"user","content":"` + strings.Repeat("x", 9000) + ` prove ` + strings.Repeat("y", 9000) + `"}]}`,
	`{"messages":[{"role":"user","content":"` + strings.Repeat("é", 3000) + `"},{"role":"user","content":"` + strings.Repeat("\\u00e9\\n", 3000) + `"}]}`,
	`{"messages":[{"role":"system","content":"` + strings.Repeat("Be concise. ", 400) + `"},{"role":"user","content":"Write a limerick about Go."}]}`,
	"{\n  \"model\" : \"auto\" ,\n\t\"messages\" : [ { \"role\" : \"user\" , \"content\" : [ { \"type\" : \"text\" , \"text\" : \"translate this\" } ] } ] ,\r\n \"stream\" : true }\n",
}

// bodyGen builds deterministic pseudo-random request bodies. It draws from
// PCG directly (whose output is fixed by its definition), never from
// rand.Rand's helpers, so the bodies cannot change with the Go version.
type bodyGen struct {
	src   *rand.PCG
	vocab []string
}

func newBodyGen(seed uint64) *bodyGen {
	g := &bodyGen{src: rand.NewPCG(seed, 0x5eed)}
	for _, table := range keywords {
		for _, k := range table {
			g.vocab = append(g.vocab, k.s)
		}
	}
	g.vocab = append(g.vocab,
		"the", "a", "of", "please", "help", "me", "with", "this", "Hello", "world", "data", "user", "prompt",
		"```", "```python", "=>", "->", "};", "();", "c++", "p(", "o(n", "x =", "tl;dr", "^2", ".py", "#include",
		"====>", "::", "std::vector", "list<int>", "main.go", "app.tsx", "select * from t;", "panic: boom",
		"∑", "≤", "≥", "∫", "√", "é", "Ünïcödé", "中文", "日本語", "한국어", "🙂", "🧪", "ℕ", "ǅ", "İ", "ﬁ",
		"0", "42", "3.14", "1,000,000", "2026-11-22", "0x1F", "\t", "\n", "\r\n", "\"quoted\"", `back\slash`, "/path/to",
		"\x01", "\x1f", "\u007f", "\u2028", "\ufeff", "\xff", "\xc3", "\x80\x80",
	)
	return g
}

func (g *bodyGen) n(k int) int { return int(g.src.Uint64() % uint64(k)) }

func (g *bodyGen) pick(s ...string) string { return s[g.n(len(s))] }

// text returns about size bytes of keyword soup in mixed case with assorted
// separators.
func (g *bodyGen) text(size int) string {
	var sb strings.Builder
	for sb.Len() < size {
		w := g.vocab[g.n(len(g.vocab))]
		switch g.n(6) {
		case 0:
			w = strings.ToUpper(w)
		case 1:
			if w != "" {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
		case 2:
			b := []byte(w)
			for i := range b {
				if g.n(2) == 0 && 'a' <= b[i] && b[i] <= 'z' {
					b[i] -= 'a' - 'A'
				}
			}
			w = string(b)
		}
		sb.WriteString(w)
		sb.WriteString(g.pick(" ", " ", " ", " ", "", "  ", "\n", "\t", ".", ", ", "_", "-", "(", ")", ":", "/", "\\", "\"", "'", "`", "é", "1"))
	}
	return sb.String()
}

// quote writes s as a JSON string, escaping some characters that need no
// escape (\u forms, surrogate pairs, \/) and now and then adding a lone
// surrogate escape. Invalid UTF-8 bytes pass through raw, as gjson allows.
func (g *bodyGen) quote(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		raw := s[i : i+size]
		i += size
		switch {
		case r == '"' || r == '\\':
			sb.WriteString(`\` + raw)
		case r < 0x20:
			switch r {
			case '\n':
				sb.WriteString(`\n`)
			case '\t':
				sb.WriteString(`\t`)
			case '\r':
				sb.WriteString(`\r`)
			case '\b':
				sb.WriteString(`\b`)
			case '\f':
				sb.WriteString(`\f`)
			default:
				fmt.Fprintf(&sb, `\u%04x`, r)
			}
		case r == utf8.RuneError && size == 1:
			sb.WriteString(raw)
		case g.n(12) == 0:
			if r > 0xFFFF {
				r -= 0x10000
				fmt.Fprintf(&sb, `\u%04X\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
			} else {
				fmt.Fprintf(&sb, `\u%04x`, r)
			}
		case r == '/' && g.n(2) == 0:
			sb.WriteString(`\/`)
		default:
			sb.WriteString(raw)
		}
		if g.n(400) == 0 {
			sb.WriteString(g.pick(`\ud800`, `\udfff`, `\udc00\ud800`, `\uD83D`, `\u0000`))
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// key quotes an object key, now and then with an escape that gjson undoes.
func (g *bodyGen) key(k string) string {
	if g.n(10) == 0 && k != "" {
		return fmt.Sprintf(`"\u%04x%s"`, k[0], k[1:])
	}
	return `"` + k + `"`
}

// ws is optional whitespace between tokens.
func (g *bodyGen) ws() string {
	if g.n(4) != 0 {
		return ""
	}
	return g.pick(" ", "\n", "\t", "\r\n  ", "  ")
}

// obj writes a JSON object from members already rendered as values.
func (g *bodyGen) obj(members ...[2]string) string {
	var sb strings.Builder
	sb.WriteString("{" + g.ws())
	for i, m := range members {
		if i > 0 {
			sb.WriteString(g.ws() + "," + g.ws())
		}
		sb.WriteString(g.key(m[0]) + g.ws() + ":" + g.ws() + m[1])
	}
	sb.WriteString(g.ws() + "}")
	return sb.String()
}

func (g *bodyGen) arr(elems ...string) string {
	return "[" + g.ws() + strings.Join(elems, g.ws()+","+g.ws()) + g.ws() + "]"
}

// size picks a text size, with weight on the classify windows' edges.
func (g *bodyGen) size() int {
	return []int{0, 3, 40, 150, 300, 302, 1024, 2047, 2049, 4000, 8191, 8193, 12000, 24000}[g.n(14)] + g.n(20)
}

// content is a message content: a string, a parts array, or something odd.
func (g *bodyGen) content() string {
	switch g.n(10) {
	case 0, 1, 2:
		var parts []string
		for range 1 + g.n(4) {
			switch g.n(8) {
			case 0:
				parts = append(parts, g.obj([2]string{"type", `"image_url"`}, [2]string{"image_url", g.obj([2]string{"url", `"data:x"`})}))
			case 1:
				parts = append(parts, g.obj([2]string{"type", g.quote(g.pick("text", "input_text", "image", "input_image", "audio"))}))
			case 2:
				parts = append(parts, g.obj([2]string{"type", `"text"`}, [2]string{"text", g.pick("12", "-0.5", "true", "null", `{"x":"prove"}`, `["story"]`)}))
			case 3:
				parts = append(parts, g.pick(`"loose"`, `7`, `null`, `[]`))
			default:
				parts = append(parts, g.obj([2]string{"type", g.quote(g.pick("text", "input_text"))}, [2]string{"text", g.quote(g.text(g.size()))}))
			}
		}
		return g.arr(parts...)
	case 3:
		return g.pick(`null`, `17`, `{"text":"prove"}`, `true`)
	default:
		return g.quote(g.text(g.size()))
	}
}

// body returns the i-th generated request body.
func (g *bodyGen) body(i int) []byte {
	var members [][2]string
	if g.n(4) != 0 {
		members = append(members, [2]string{"model", g.quote(g.pick("auto", "gpt-4o", "claude-3-5-sonnet", "Fast\tModel"))})
	}
	if g.n(6) == 0 {
		if g.n(2) == 0 {
			members = append(members, [2]string{"system", g.quote(g.text(g.size()))})
		} else {
			members = append(members, [2]string{"system", g.arr(g.obj([2]string{"type", `"text"`}, [2]string{"text", g.quote(g.text(g.size()))}), g.obj([2]string{"type", `"text"`}))})
		}
	}
	var msgs []string
	for range g.n(5) {
		var m [][2]string
		if g.n(8) != 0 {
			m = append(m, [2]string{"role", g.quote(g.pick("user", "user", "user", "system", "developer", "assistant", "tool", ""))})
		}
		if g.n(10) != 0 {
			m = append(m, [2]string{"content", g.content()})
		}
		if g.n(5) == 0 {
			m = append(m, [2]string{"name", g.quote("n")})
		}
		if g.n(3) == 0 { // the order of members does not matter, except for duplicates
			for j := len(m) - 1; j > 0; j-- {
				k := g.n(j + 1)
				m[j], m[k] = m[k], m[j]
			}
		}
		msgs = append(msgs, g.obj(m...))
	}
	members = append(members, [2]string{"messages", g.arr(msgs...)})
	if g.n(5) == 0 {
		members = append(members, [2]string{g.pick("tools", "functions"), g.pick(`[]`, `[ ]`, `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`)})
	}
	if g.n(5) == 0 {
		members = append(members, [2]string{"response_format", g.obj([2]string{"type", g.quote(g.pick("json_object", "json_schema", "text"))})})
	}
	if g.n(3) == 0 {
		members = append(members, [2]string{"stream", g.pick("true", "false", `"true"`)})
	}
	if g.n(4) == 0 {
		members = append(members, [2]string{g.pick("max_tokens", "max_completion_tokens"), g.pick("256", "0", "-3", "1e2", `"64"`, "12.7")})
	}
	if g.n(6) == 0 {
		members = append(members, [2]string{"user", g.quote("user-" + fmt.Sprint(i))})
	}
	if g.n(6) == 0 {
		members = append(members, [2]string{"metadata", g.obj([2]string{"user_id", g.quote("meta-" + fmt.Sprint(i))})})
	}
	for j := len(members) - 1; j > 0; j-- {
		k := g.n(j + 1)
		members[j], members[k] = members[k], members[j]
	}
	return []byte(g.ws() + g.obj(members...) + g.ws())
}
