package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakegemini"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// geminiCLI runs the real Gemini CLI (npm @google/gemini-cli, the version
// e2e/clients/package.json pins) non-interactively in work with the task,
// its API at baseURL: a HOME of its own whose settings select API-key auth
// (needed with GOOGLE_GEMINI_BASE_URL in non-interactive mode) and turn off
// usage statistics, auto-update and telemetry; --skip-trust --yolo so the
// tool call runs without a prompt. It returns the CLI's JSON output.
func geminiCLI(t *testing.T, baseURL, work, model, task string) gjson.Result {
	t.Helper()
	return geminiCLIHome(t, t.TempDir(), baseURL, work, model, task)
}

// geminiCLIHome is geminiCLI with the HOME given: two runs with one HOME and
// one work directory send the same session context.
func geminiCLIHome(t *testing.T, home, baseURL, work, model, task string) gjson.Result {
	t.Helper()
	bin := clientBin(t, "gemini")
	settings := `{"security":{"auth":{"selectedType":"gemini-api-key"}},"privacy":{"usageStatisticsEnabled":false},` +
		`"general":{"enableAutoUpdate":false,"enableAutoUpdateNotification":false},"telemetry":{"enabled":false}}`
	if err := os.MkdirAll(filepath.Join(home, ".gemini"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".gemini", "settings.json"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-p", task, "-m", model, "--output-format", "json", "--skip-trust", "--yolo")
	cmd.Dir = work
	cmd.Env = []string{
		"HOME=" + home, "GEMINI_CLI_HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"GOOGLE_GEMINI_BASE_URL=" + baseURL, "GEMINI_API_KEY=AIza-llmproc-client",
		"GEMINI_CLI_NO_RELAUNCH=true", "NO_COLOR=1", "CI=true",
	}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("gemini did not finish in time\nstdout: %s\nstderr: %s", stdout.Bytes(), stderr.Bytes())
	}
	if err != nil {
		t.Fatalf("gemini: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	out := stdout.Bytes()
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	res := gjson.ParseBytes(out)
	if !res.IsObject() {
		t.Fatalf("gemini's output is not JSON:\n%s\nstderr: %s", stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("gemini stderr: %s", stderr.Bytes())
	return res
}

// isSideRequest tells Gemini CLI's own JSON-mode requests (next-speaker
// checks and the like, with a response schema) from the agent's turns.
func isSideRequest(body []byte) bool {
	mime := gjson.GetBytes(body, "generationConfig.responseMimeType").Str
	return mime == "application/json" || gjson.GetBytes(body, "generationConfig.responseJsonSchema").Exists()
}

// TestGeminiCLINative runs the real Gemini CLI through llmproc against a
// scripted Gemini fake: a write_file call, then a final answer. The fake
// receives every body exactly as the CLI sent it, only the path's model
// changed; the CLI's own call id comes back in functionResponse.id.
func TestGeminiCLINative(t *testing.T) {
	g := startGeminiClient(t)
	work := t.TempDir()
	target := filepath.Join(work, "hello.txt")
	g.gemini.Script(func(r fakegemini.Request) fakegemini.Behaviour {
		if isSideRequest(r.Body) {
			return fakegemini.Behaviour{Text: `{"reasoning":"The task is done.","next_speaker":"user"}`}
		}
		return fake.Turns(fakegemini.ToolResults,
			func([]fake.ToolResult) fakegemini.Behaviour {
				return fakegemini.Behaviour{Text: "Writing the file.", Calls: []fakegemini.FunctionCall{{Name: "write_file",
					Args: map[string]any{"file_path": target, "content": "hi from llmproc\n"}}}, Usage: fakegemini.Usage{Prompt: 900, Candidates: 20}}
			},
			func([]fake.ToolResult) fakegemini.Behaviour {
				return fakegemini.Behaviour{Text: "I wrote hello.txt.", Usage: fakegemini.Usage{Prompt: 950, Candidates: 6}}
			})(r)
	})
	rec := &recorder{}
	proxy := rec.start(t, g.URL())
	res := geminiCLI(t, proxy.URL, work, "gemini-2.5-flash", "Create hello.txt in the current directory containing: hi from llmproc")
	if !strings.Contains(res.Get("response").Str, "I wrote hello.txt.") {
		t.Errorf("gemini's result: %s", res.Raw)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "hi from llmproc\n" {
		t.Errorf("hello.txt: %q, %v", b, err)
	}
	got := g.gemini.Requests()
	rec.mu.Lock()
	sent, paths := rec.bodies, rec.paths
	rec.mu.Unlock()
	if len(got) < 2 || len(got) != len(sent) {
		t.Fatalf("the fake got %d requests, Gemini CLI sent %d (%v)", len(got), len(sent), paths)
	}
	var answered bool
	for i, r := range got {
		model, method, _ := strings.Cut(strings.TrimPrefix(strings.SplitN(paths[i], "?", 2)[0], "/v1beta/models/"), ":")
		if !strings.HasPrefix(model, "gemini-") || r.Path != "/v1beta/models/gemini-backend-model:"+method+map[bool]string{true: "?alt=sse"}[method == "streamGenerateContent"] {
			t.Errorf("request %d: Gemini CLI sent %s, the fake got %s", i, paths[i], r.Path)
		}
		if !bytes.Equal(r.Body, sent[i]) {
			t.Errorf("request %d: the fake got\n%s\nGemini CLI sent\n%s", i, r.Body, sent[i])
		}
		if r.Header.Get("x-goog-api-key") != "gemini-secret" {
			t.Errorf("request %d: x-goog-api-key %q", i, r.Header.Get("x-goog-api-key"))
		}
		for _, tr := range fakegemini.ToolResults(r) {
			answered = answered || tr.Name == "write_file" && tr.CallID != "write_file"
		}
	}
	if !answered {
		t.Errorf("no functionResponse with the CLI's own id reached the fake")
	}
}

// TestGeminiCLITranslated: the same task against an OpenAI backend, every
// request translated: the CLI's tools (parametersJsonSchema) reach OpenAI
// as functions, topK is dropped, OpenAI's call id makes the round trip.
func TestGeminiCLITranslated(t *testing.T) {
	g := startGeminiClient(t)
	work := t.TempDir()
	target := filepath.Join(work, "hello.txt")
	g.openai.Script(func(r fakeopenai.Request) fakeopenai.Behaviour {
		if gjson.GetBytes(r.Body, "response_format").Exists() {
			return fakeopenai.Behaviour{Content: `{"reasoning":"The task is done.","next_speaker":"user"}`}
		}
		return fake.Turns(fakeopenai.ToolResults,
			func([]fake.ToolResult) fakeopenai.Behaviour {
				return fakeopenai.Behaviour{Content: "Writing the file.", ToolCalls: []fakeopenai.ToolCall{{ID: "call_cli1", Name: "write_file",
					Arguments: fmt.Sprintf(`{"file_path":%q,"content":"hi from llmproc\n"}`, target)}}, Usage: fakeopenai.Usage{Prompt: 900, Completion: 20}}
			},
			func(rs []fake.ToolResult) fakeopenai.Behaviour {
				return fakeopenai.Behaviour{Content: "I wrote hello.txt.", Usage: fakeopenai.Usage{Prompt: 950, Completion: 6}}
			})(r)
	})
	res := geminiCLI(t, g.URL(), work, "gpt-4o-mini", "Create hello.txt in the current directory containing: hi from llmproc")
	if !strings.Contains(res.Get("response").Str, "I wrote hello.txt.") {
		t.Errorf("gemini's result: %s", res.Raw)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "hi from llmproc\n" {
		t.Errorf("hello.txt: %q, %v", b, err)
	}
	var sawTools, sawResult bool
	for _, r := range g.openai.Requests() {
		b := gjson.ParseBytes(r.Body)
		if b.Get("top_k").Exists() || b.Get("model").Str != "gpt-4o-mini" {
			t.Errorf("OpenAI got %s", r.Body)
		}
		sawTools = sawTools || b.Get(`tools.#(function.name=="write_file")`).Exists()
		for _, tr := range fakeopenai.ToolResults(r) {
			sawResult = sawResult || tr.CallID == "call_cli1"
		}
	}
	if !sawTools || !sawResult {
		t.Errorf("tools declared %v, call_cli1 answered %v", sawTools, sawResult)
	}
}

// TestGenAISDK drives @google/genai (httpOptions.baseUrl at the harness):
// generate, stream, a function-call round trip and countTokens, against a
// Gemini backend (passed through; countTokens answered by Gemini) and an
// OpenAI one (translated; countTokens estimated by llmproc).
func TestGenAISDK(t *testing.T) {
	g := startGeminiClient(t)
	g.gemini.Script(func(r fakegemini.Request) fakegemini.Behaviour {
		if !gjson.GetBytes(r.Body, "tools").Exists() {
			return fakegemini.Behaviour{Text: "Hello from Gemini.", Usage: fakegemini.Usage{Prompt: 3, Candidates: 4}}
		}
		return fake.Turns(fakegemini.ToolResults,
			func([]fake.ToolResult) fakegemini.Behaviour {
				return fakegemini.Behaviour{Calls: []fakegemini.FunctionCall{{Name: "get_weather", Args: map[string]any{"city": "Paris"}}}}
			},
			func(rs []fake.ToolResult) fakegemini.Behaviour {
				return fakegemini.Behaviour{Text: "Gemini says " + gjson.Get(rs[0].Output, "output").Str}
			})(r)
	})
	g.openai.Script(func(r fakeopenai.Request) fakeopenai.Behaviour {
		if !gjson.GetBytes(r.Body, "tools").Exists() {
			return fakeopenai.Behaviour{Content: "Hello from OpenAI.", Usage: fakeopenai.Usage{Prompt: 3, Completion: 4}}
		}
		return fake.Turns(fakeopenai.ToolResults,
			func([]fake.ToolResult) fakeopenai.Behaviour {
				return fakeopenai.Behaviour{ToolCalls: []fakeopenai.ToolCall{{ID: "call_sdk", Name: "get_weather", Arguments: `{"city":"Paris"}`}}}
			},
			func(rs []fake.ToolResult) fakeopenai.Behaviour {
				return fakeopenai.Behaviour{Content: "OpenAI says " + gjson.Get(rs[0].Output, "output").Str + " for " + rs[0].CallID}
			})(r)
	})
	for _, c := range []struct{ model, hello, final, callID string }{
		{"gemini-2.5-flash", "Hello from Gemini.", "Gemini says sunny", ""},
		{"gpt-4o-mini", "Hello from OpenAI.", "OpenAI says sunny for call_sdk", "call_sdk"},
	} {
		t.Run(c.model, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := nodeScript(t, ctx, "genai.mjs", g.URL(), c.model, "AIza-llmproc-client")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("genai.mjs: %v\n%s\n%s", err, out, stderr.Bytes())
			}
			r := gjson.ParseBytes(out)
			if r.Get("generate").Str != c.hello || r.Get("stream").Str != c.hello || r.Get("chunks").Int() < 2 ||
				r.Get("call.name").Str != "get_weather" || r.Get("call.args.city").Str != "Paris" || r.Get("call.id").Str != c.callID ||
				r.Get("final").Str != c.final || r.Get("totalTokens").Int() < 1 || r.Get("usage.totalTokenCount").Int() != 7 {
				t.Errorf("%s", out)
			}
		})
	}
	var counted bool
	for _, r := range g.gemini.Requests() {
		counted = counted || strings.HasSuffix(r.Path, ":countTokens")
	}
	if !counted {
		t.Errorf("countTokens never reached Gemini")
	}
}
