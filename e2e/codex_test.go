package e2e

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakegemini"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// codexConfig is Codex CLI's config.toml: one model provider, llmproc,
// speaking the Responses API, with the key in LLMPROC_KEY; no update check,
// no analytics, no feedback upload, so Codex needs no network beyond it.
const codexConfig = `model = %q
model_provider = "llmproc"
check_for_update_on_startup = false

[model_providers.llmproc]
name = "llmproc"
base_url = "%s/v1"
env_key = "LLMPROC_KEY"
wire_api = "responses"

[analytics]
enabled = false

[feedback]
enabled = false
`

// runCodex runs the real Codex CLI (npm @openai/codex, the version
// e2e/clients/package.json pins) once, non-interactively, in work, against
// llmproc at baseURL with model, sandbox and approvals off. It returns the
// JSONL events Codex printed.
func runCodex(t *testing.T, baseURL, model, work, prompt string) []gjson.Result {
	t.Helper()
	bin := clientBin(t, "codex")
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte(fmt.Sprintf(codexConfig, model, baseURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
		"--ephemeral", "--json", "--color", "never", prompt)
	cmd.Dir = work
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "CODEX_HOME=" + home, "LLMPROC_KEY=sk-llmproc-client"}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("codex did not finish in time\nstdout: %s\nstderr: %s", stdout.Bytes(), stderr.Bytes())
	}
	if err != nil {
		t.Fatalf("codex: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	var events []gjson.Result
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if gjson.Valid(line) {
			events = append(events, gjson.Parse(line))
		}
	}
	for _, ev := range events {
		if ev.Get("type").Str == "turn.failed" || ev.Get("type").Str == "error" {
			t.Errorf("codex reported %s\nstderr: %s", ev.Raw, stderr.Bytes())
		}
	}
	return events
}

// codexTask is the task every Codex test gives: one shell command that
// writes a file, then a final answer.
const (
	codexPrompt = "Create hello.txt in the current directory containing: hi from codex"
	codexFinal  = "I wrote hello.txt."
)

// codexCommand is the exec_command call the scripted model makes.
func codexCommand(work string) string {
	return fmt.Sprintf(`{"cmd":"printf 'hi from codex\\n' > hello.txt","workdir":%q}`, work)
}

// checkCodexRun checks what every Codex run must show: the file written,
// Codex's last message the scripted final answer.
func checkCodexRun(t *testing.T, work string, events []gjson.Result) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(work, "hello.txt")); err != nil || string(b) != "hi from codex\n" {
		t.Errorf("hello.txt: %q, %v", b, err)
	}
	var last string
	for _, ev := range events {
		if ev.Get("type").Str == "item.completed" && ev.Get("item.type").Str == "agent_message" {
			last = ev.Get("item.text").Str
		}
	}
	if last != codexFinal {
		t.Errorf("codex's last message %q, want %q", last, codexFinal)
	}
}

const codexOpenAIConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 4194304, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
models:
  - {name: codex-openai, pool: openai}
pools:
  - {name: openai, backends: [{backend: openai, model: gpt-backend}]}
`

// TestCodexOpenAI runs the real Codex CLI (codex exec) through llmproc to
// an OpenAI backend (Responses passed through): the scripted model calls
// exec_command, Codex runs it and sends the result back, the model answers.
// The file exists, and OpenAI got the tool's output in the follow-up
// request, under the call's id, beside the function_call it answers.
func TestCodexOpenAI(t *testing.T) {
	oa := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { oa.Close() })
	work := t.TempDir()
	oa.Turns(
		func([]fake.ToolResult) fakeopenai.Behaviour {
			return fakeopenai.Behaviour{Content: "Writing the file.", ToolCalls: []fakeopenai.ToolCall{
				{ID: "call_codex1", Name: "exec_command", Arguments: codexCommand(work)}}}
		},
		func([]fake.ToolResult) fakeopenai.Behaviour { return fakeopenai.Behaviour{Content: codexFinal} },
	)
	st, _, _ := startStack(t, fmt.Sprintf(codexOpenAIConfig, oa.URL()), map[string]string{"OPENAI_KEY": "sk-openai"})
	checkCodexRun(t, work, runCodex(t, st.URL(), "codex-openai", work, codexPrompt))

	got := oa.Requests()
	if len(got) != 2 {
		t.Fatalf("OpenAI got %d requests, want 2 (the tool call, the answer)", len(got))
	}
	for i, r := range got {
		b := gjson.ParseBytes(r.Body)
		if r.Path != "/v1/responses" || r.Header.Get("authorization") != "Bearer sk-openai" || b.Get("model").Str != "gpt-backend" || !b.Get("stream").Bool() {
			t.Errorf("request %d: %s %v %s", i, r.Path, r.Header, b.Get("model"))
		}
	}
	wantToolResult(t, "OpenAI", fakeopenai.ToolResults(got[1]), "call_codex1")
	follow := gjson.ParseBytes(got[1].Body)
	if follow.Get(`input.#(type=="function_call").call_id`).Str != "call_codex1" {
		t.Errorf("the follow-up lacks the function_call it answers:\n%s", follow.Get("input").Raw)
	}
}

// wantToolResult checks that a provider got exactly one tool result, for
// callID, saying the command exited 0.
func wantToolResult(t *testing.T, provider string, rs []fake.ToolResult, callID string) {
	t.Helper()
	if len(rs) != 1 || rs[0].CallID != callID || !strings.Contains(rs[0].Output, "exited with code 0") {
		t.Errorf("%s got the tool results %+v, want one for %s saying exited with code 0", provider, rs, callID)
	}
}

const codexTranslatedConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 4194304, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
backends:
  - {name: claude, schema: anthropic, url: "%s", credential: {env: ANTHROPIC_KEY}}
  - {name: gemini, schema: gemini, url: "%s", credential: {env: GEMINI_KEY}}
models:
  - {name: codex-anthropic, pool: claude}
  - {name: codex-gemini, pool: gemini}
pools:
  - {name: claude, backends: [{backend: claude, model: claude-backend}]}
  - {name: gemini, backends: [{backend: gemini, model: gemini-backend}]}
`

// TestCodexTranslated runs the real Codex CLI through llmproc to an
// Anthropic and to a Gemini backend: Codex's Responses requests are
// translated both ways, the scripted model's tool call reaches Codex as a
// function_call, Codex runs it, and the provider gets the command's output
// as its own tool result in the follow-up, under the call's id (Gemini: the
// function's name) and, from Gemini, the call's thought signature, then
// answers.
func TestCodexTranslated(t *testing.T) {
	claude := fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant"})
	gem := fakegemini.New(fakegemini.Options{Key: "gm-key"})
	t.Cleanup(func() { claude.Close(); gem.Close() })
	st, _, _ := startStack(t, fmt.Sprintf(codexTranslatedConfig, claude.URL(), gem.URL()),
		map[string]string{"ANTHROPIC_KEY": "sk-ant", "GEMINI_KEY": "gm-key"})

	t.Run("anthropic", func(t *testing.T) {
		work := t.TempDir()
		claude.Turns(
			func([]fake.ToolResult) fakeanthropic.Behaviour {
				return fakeanthropic.Behaviour{Content: "Writing the file.", ToolUses: []fakeanthropic.ToolUse{
					{ID: "toolu_codex1", Name: "exec_command", Input: codexCommand(work)}}}
			},
			func([]fake.ToolResult) fakeanthropic.Behaviour { return fakeanthropic.Behaviour{Content: codexFinal} },
		)
		checkCodexRun(t, work, runCodex(t, st.URL(), "codex-anthropic", work, codexPrompt))
		got := claude.Requests()
		if len(got) != 2 {
			t.Fatalf("Anthropic got %d requests, want 2", len(got))
		}
		for i, r := range got {
			b := gjson.ParseBytes(r.Body)
			if b.Get("model").Str != "claude-backend" || !b.Get("stream").Bool() || !b.Get(`tools.#(name=="exec_command")`).Exists() {
				t.Errorf("request %d: model %s stream %s, tools %s", i, b.Get("model"), b.Get("stream"), b.Get("tools.#.name"))
			}
		}
		wantToolResult(t, "Anthropic", fakeanthropic.ToolResults(got[1]), "toolu_codex1")
	})

	t.Run("gemini", func(t *testing.T) {
		work := t.TempDir()
		gem.Turns(
			func([]fake.ToolResult) fakegemini.Behaviour {
				var args map[string]any
				if err := json.Unmarshal([]byte(codexCommand(work)), &args); err != nil {
					t.Fatal(err)
				}
				return fakegemini.Behaviour{Text: "Writing the file.", Calls: []fakegemini.FunctionCall{{Name: "exec_command", Args: args, Signature: "c2lnLWNvZGV4"}}}
			},
			func([]fake.ToolResult) fakegemini.Behaviour { return fakegemini.Behaviour{Text: codexFinal} },
		)
		checkCodexRun(t, work, runCodex(t, st.URL(), "codex-gemini", work, codexPrompt))
		got := gem.Requests()
		if len(got) != 2 {
			t.Fatalf("Gemini got %d requests, want 2", len(got))
		}
		for i, r := range got {
			if r.Model != "gemini-backend" || r.Action != "streamGenerateContent" {
				t.Errorf("request %d: %s:%s", i, r.Model, r.Action)
			}
		}
		rs := fakegemini.ToolResults(got[1])
		if len(rs) != 1 || rs[0].Name != "exec_command" || !strings.Contains(rs[0].Output, "exited with code 0") {
			t.Errorf("Gemini got the tool results %+v", rs)
		}
		// The call's thought signature came back through Codex, inside the
		// reasoning item's encrypted_content, on the functionCall part.
		call := gjson.GetBytes(got[1].Body, `contents.#(role=="model").parts.#(functionCall.name=="exec_command")`)
		if sig := call.Get("thoughtSignature").Str; sig != "c2lnLWNvZGV4" {
			t.Errorf("Gemini got the call back as %s", call.Raw)
		}
	})
}
