package validate

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var apis = []struct {
	name     string
	validate func([]byte, Options) error
	// shapes are real request bodies from other packages' testdata, each
	// of which must pass.
	shapes []string
}{
	{"chat", Chat, []string{
		"../translate/testdata/[^c]*/req_[^e]*.in.json", // not client_anthropic
		"../translate/testdata/compat/*.in.json",
		"../translate/testdata/client_anthropic/req_*.out.json",  // what the Anthropic client translator sends on
		"../translate/testdata/client_responses/req_*.chat.json", // what the Responses client translator sends on
		"../extproc/testdata/chat_*.json",
		"../../e2e/load/testdata/*.json",
	}},
	{"messages", Messages, []string{
		"../translate/testdata/client_anthropic/req_*.in.json",
	}},
	{"responses", Responses, []string{
		"../translate/testdata/client_responses/req_*.in.json",
	}},
	{"embeddings", Embeddings, nil},
	{"completions", Completions, nil},
	{"gemini", func(b []byte, o Options) error { return Gemini(b, o, "generateContent") }, []string{
		"../translate/testdata/client_gemini/req_*.in.json",
		"../extproc/testdata/gemini_*.json",
	}},
	{"gemini_embed", func(b []byte, o Options) error { return Gemini(b, o, "embedContent") }, nil},
}

// result renders a validation outcome for a golden file.
func result(err error) string {
	if err == nil {
		return "ok"
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		return "not an apierr.Error: " + err.Error()
	}
	return fmt.Sprintf("%d %s %s", e.Status, e.Code, e.Message)
}

// TestCorpus runs the hostile-request corpus of each API (testdata/<api>/:
// bad_* must be refused, ok_* must pass) against testdata/<api>.golden,
// which records each outcome's status, code and message (with the path).
func TestCorpus(t *testing.T) {
	for _, api := range apis {
		t.Run(api.name, func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join("testdata", api.name, "*.json"))
			if len(files) == 0 {
				t.Fatal("no corpus")
			}
			var out bytes.Buffer
			for _, f := range files {
				body, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				name := strings.TrimSuffix(filepath.Base(f), ".json")
				got := result(api.validate(body, Options{}))
				switch {
				case strings.HasPrefix(name, "ok_") && got != "ok":
					t.Errorf("%s: refused: %s", name, got)
				case strings.HasPrefix(name, "bad_") && !strings.HasPrefix(got, "400 "):
					t.Errorf("%s: %s, want a 400", name, got)
				}
				fmt.Fprintf(&out, "%s: %s\n", name, got)
			}
			golden := filepath.Join("testdata", api.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("outcomes differ from %s (run with -update to see the diff in git):\n%s", golden, out.Bytes())
			}
		})
	}
}

// TestRealShapes: request bodies the rest of llmproc's tests use as real
// clients' requests pass.
func TestRealShapes(t *testing.T) {
	for _, api := range apis {
		n := 0
		for _, pattern := range api.shapes {
			files, _ := filepath.Glob(pattern)
			sort.Strings(files)
			for _, f := range files {
				body, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				n++
				if err := api.validate(body, Options{}); err != nil {
					t.Errorf("%s %s: %v", api.name, f, err)
				}
			}
		}
		if api.shapes != nil && n < 5 { // the pass-through APIs have only their corpus
			t.Errorf("%s: only %d real shapes found", api.name, n)
		}
	}
}

// TestDeepNesting: bodies nested far past the limit are refused at the
// limit (no stack growth with the depth of the input), in both APIs.
func TestDeepNesting(t *testing.T) {
	deep := func(n int, open, close string) []byte {
		var b bytes.Buffer
		b.WriteString(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}],"input":"hi","prompt":"hi","contents":[{"parts":[{"text":"hi"}]}],"content":{"parts":[]},"x":`)
		b.WriteString(strings.Repeat(open, n))
		b.WriteString("1")
		b.WriteString(strings.Repeat(close, n))
		b.WriteString("}")
		return b.Bytes()
	}
	cases := []struct {
		name  string
		body  []byte
		depth int
		want  string
	}{
		{"100,000-deep arrays", deep(100_000, "[", "]"), 64, "nesting_too_deep"},
		{"50,000-deep objects", deep(50_000, `{"a":`, "}"), 64, "nesting_too_deep"},
		{"100,000-deep unclosed", []byte(`{"x":` + strings.Repeat("[", 100_000)), 64, "nesting_too_deep"},
		{"deep tool parameters", []byte(`{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":` + strings.Repeat(`{"a":`, 50_000)), 64, "nesting_too_deep"},
		{"at a lower configured limit", deep(10, "[", "]"), 8, "nesting_too_deep"},
		{"within a higher configured limit", deep(100, "[", "]"), 200, ""},
	}
	for _, tc := range cases {
		for _, api := range apis {
			err := api.validate(tc.body, Options{MaxDepth: tc.depth})
			var e *apierr.Error
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s %s: %v", api.name, tc.name, err)
			case tc.want != "" && (!errors.As(err, &e) || e.Code != tc.want || e.Status != 400):
				t.Errorf("%s %s: %v, want 400 %s", api.name, tc.name, err, tc.want)
			}
		}
	}
}

// FuzzChat: the validator never panics, and whatever it accepts is valid
// JSON whose top level is an object.
func FuzzChat(f *testing.F) {
	for _, dir := range []string{"chat", "messages", "responses", "embeddings", "completions", "gemini", "gemini_embed"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		for _, file := range files {
			b, _ := os.ReadFile(file)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, api := range apis {
			var members []string
			err := api.validate(body, Options{MaxDepth: 16, Member: func(k string, v []byte) {
				members = append(members, k+"\x00"+string(v))
			}})
			if err == nil && utf8.Valid(body) {
				// Member reports what gjson finds at the top level. (Keys
				// with escapes and invalid UTF-8 are decoded as
				// encoding/json does, with U+FFFD; gjson keeps the bytes.
				// No such key is one the validator knows.)
				var want []string
				gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
					want = append(want, k.Str+"\x00"+v.Raw)
					return true
				})
				if !slices.Equal(members, want) {
					t.Fatalf("%s: members %q, gjson finds %q", api.name, members, want)
				}
			}
			var e *apierr.Error
			if err != nil && (!errors.As(err, &e) || e.Status != 400) {
				t.Fatalf("%s: %v, not a 400", api.name, err)
			}
			if err == nil && !jsonObject(body) {
				t.Fatalf("%s accepted %q, which is not a JSON object", api.name, body)
			}
			if err != nil && e.Code == "invalid_json" && jsonObject(body) {
				t.Fatalf("%s: %v for %q, a JSON object", api.name, err, body)
			}
		}
	})
}

func TestCountTokens(t *testing.T) {
	const body = `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}],"thinking":{"type":"adaptive"}}`
	if err := CountTokens([]byte(body), Options{}); err != nil {
		t.Errorf("count_tokens body without max_tokens: %v", err)
	}
	if err := Messages([]byte(body), Options{}); err == nil {
		t.Error("a Messages body without max_tokens passed")
	}
	if err := CountTokens([]byte(`{"model":"m"}`), Options{}); err == nil || !strings.Contains(err.Error(), "messages") {
		t.Errorf("count_tokens without messages: %v", err)
	}
}
