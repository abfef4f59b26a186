package translate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

const gcDir = "testdata/client_gemini"

// indentJSON pretty-prints a JSON body for a readable golden file.
func indentJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return append(out.Bytes(), '\n')
}

// TestGeminiClientRequestGolden: each req_*.in.json, a Gemini
// GenerateContentRequest, becomes the chat-completions body in its
// .out.json (streamed: the stream options Gemini clients always get); each
// bad_*.in.json is refused with the Google error in its .out.json.
func TestGeminiClientRequestGolden(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join(gcDir, "req_*.in.json"))
	bad, _ := filepath.Glob(filepath.Join(gcDir, "bad_*.in.json"))
	if len(ins) == 0 || len(bad) == 0 {
		t.Fatal("no goldens")
	}
	for _, in := range append(ins, bad...) {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			body := readFile(t, in)
			out, err := GeminiRequestToOpenAI(body, "gemini-2.5-pro", strings.Contains(name, "cli"))
			if strings.HasPrefix(name, "bad_") {
				if err == nil {
					t.Fatalf("accepted:\n%s", out)
				}
				e := apierr.From(err)
				if e.Status != 400 {
					t.Errorf("status %d", e.Status)
				}
				golden(t, filepath.Join(gcDir, name+".out.json"), indentJSON(t, GeminiError(e)))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !gjson.ValidBytes(out) {
				t.Fatalf("invalid JSON:\n%s", out)
			}
			golden(t, filepath.Join(gcDir, name+".out.json"), indentJSON(t, out))
			// The backends' translators take the hub form (Anthropic with
			// the sampling parameters it lacks dropped, as a config would;
			// it has no audio input).
			for _, schema := range []string{"openai", "anthropic"} {
				if schema == "anthropic" && strings.Contains(name, "media") {
					continue
				}
				tr, _ := For(schema)
				be := &config.RBackend{Name: schema, Schema: schema, DropParams: []string{"seed", "presence_penalty"}}
				if _, err := tr.Request(&Request{Body: out, Backend: be, Model: "m", ClientModel: "gemini-2.5-pro"}); err != nil {
					t.Errorf("%s refuses the hub form: %v", schema, err)
				}
			}
		})
	}
}

// TestGeminiClientAnswerGolden: chat.completion answers (resp_*.in.json)
// become GenerateContentResponses; an error answer Google's error.
func TestGeminiClientAnswerGolden(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join(gcDir, "resp_*.in.json"))
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			status := 200
			if strings.Contains(name, "err_429") {
				status = 429
			}
			got := splitEverywhere(t, readFile(t, in), func() Body { return GeminiResponse(GeminiJSON, status, "gpt-4o-mini") })
			golden(t, filepath.Join(gcDir, name+".out.json"), indentJSON(t, got))
		})
	}
}

// TestGeminiClientStreamGolden: OpenAI streams, split at every byte, become
// Gemini's SSE stream and its JSON-array stream alike.
func TestGeminiClientStreamGolden(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join(gcDir, "stream_*.in.sse"))
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.sse")
		t.Run(name, func(t *testing.T) {
			input := readFile(t, in)
			sse := splitEverywhere(t, input, func() Body { return GeminiResponse(GeminiSSE, 200, "") })
			golden(t, filepath.Join(gcDir, name+".out.sse"), sse)
			arr := splitEverywhere(t, input, func() Body { return GeminiResponse(GeminiArray, 200, "") })
			if !gjson.ValidBytes(arr) || !gjson.ParseBytes(arr).IsArray() {
				t.Fatalf("not a JSON array:\n%s", arr)
			}
			golden(t, filepath.Join(gcDir, name+".out.array.json"), arr)
			// The array holds the SSE stream's responses, in order.
			var events []string
			for _, ev := range strings.Split(strings.TrimSpace(string(sse)), "\r\n\r\n") {
				events = append(events, strings.TrimPrefix(ev, "data: "))
			}
			if want := "[" + strings.Join(events, ",\r\n") + "]"; string(arr) != want {
				t.Errorf("array\n%s\nSSE events\n%s", arr, want)
			}
			// Reframing a native SSE stream gives the same array.
			if re := splitEverywhere(t, sse, GeminiArrayStream); !bytes.Equal(re, arr) {
				t.Errorf("GeminiArrayStream:\n%s", re)
			}
		})
	}
}

// TestGeminiErrorShape: llmproc's errors as Google renders them.
func TestGeminiErrorShape(t *testing.T) {
	for status, want := range map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
		413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"} {
		b := GeminiError(apierr.New(status, apierr.TypeForStatus(status), "x", "boom \"%d\"", status))
		e := gjson.ParseBytes(b)
		if e.Get("error.code").Int() != int64(status) || e.Get("error.status").Str != want || !strings.HasPrefix(e.Get("error.message").Str, "boom") {
			t.Errorf("%d: %s", status, b)
		}
	}
}

// FuzzGeminiClientRequest: the Gemini request converter never panics, and what
// it accepts is one JSON object naming the model.
func FuzzGeminiClientRequest(f *testing.F) {
	for _, g := range []string{"req_*.in.json", "bad_*.in.json"} {
		ins, _ := filepath.Glob(filepath.Join(gcDir, g))
		for _, in := range ins {
			b, err := readFileErr(in)
			if err == nil {
				f.Add(b, true)
			}
		}
	}
	f.Add([]byte(`{"contents":[{"role":"model","parts":[{"functionCall":{"name":"a"}}]},{"parts":[{"functionResponse":{"name":"a"}}]}]}`), false)
	f.Fuzz(func(t *testing.T, body []byte, stream bool) {
		out, err := GeminiRequestToOpenAI(body, "m", stream)
		if err != nil {
			if e := apierr.From(err); e.Status != 400 {
				t.Fatalf("status %d for %q: %v", e.Status, body, err)
			}
			return
		}
		if !gjson.ValidBytes(out) || gjson.GetBytes(out, "model").Str != "m" || !gjson.GetBytes(out, "messages").IsArray() {
			t.Fatalf("%q became %s", body, out)
		}
	})
}

func readFileErr(path string) ([]byte, error) { return os.ReadFile(path) }
