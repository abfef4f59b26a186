package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakeanthropic"
	"github.com/llmproc/llmproc/e2e/fakebedrock"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// claudeBin returns the installed Claude Code (npm @anthropic-ai/claude-code,
// the version e2e/clients/package.json pins).
func claudeBin(t *testing.T) string { return clientBin(t, "claude") }

// recorder is a reverse proxy in front of the harness that keeps every
// request body as the client sent it.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
	paths  []string
}

func (rec *recorder) start(t *testing.T, target string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.FlushInterval = -1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		rec.bodies, rec.paths = append(rec.bodies, b), append(rec.paths, r.URL.RequestURI())
		rec.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

const claudeCodeConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 4194304, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
backends:
  - {name: claude, schema: anthropic, url: "%s", credential: {env: ANTHROPIC_KEY}}
models:
  - {name: claude-sonnet-4-5, aliases: ["claude-*"], pool: claude}
pools:
  - {name: claude, backends: [{backend: claude, model: claude-backend-model}]}
`

// claudeCodeRun is one run of the real Claude Code through llmproc.
type claudeCodeRun struct {
	target         string // the file the task writes
	result         gjson.Result
	stdout, stderr []byte
	sent           [][]byte // the bodies Claude Code sent, in order
	paths          []string
}

// runClaudeCode has Claude Code (`claude -p … --output-format json`) create
// hello.txt in a fresh directory through llmproc at e (through a recording
// proxy), with the llmproc client key and no nonessential traffic; work is
// where the task writes. It fails the test unless claude exits cleanly.
func runClaudeCode(t *testing.T, e *env, work string) claudeCodeRun {
	t.Helper()
	bin := claudeBin(t)
	rec := &recorder{}
	proxy := rec.start(t, e.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-p", "Create hello.txt in the current directory containing: hi from llmproc",
		"--output-format", "json", "--model", "claude-sonnet-4-5", "--allowedTools", "Write", "--permission-mode", "acceptEdits")
	cmd.Dir = work
	cmd.Env = []string{
		"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"),
		"ANTHROPIC_BASE_URL=" + proxy.URL, "ANTHROPIC_API_KEY=sk-llmproc-client",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_TELEMETRY=1", "DISABLE_AUTOUPDATER=1",
	}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("claude did not finish in time\nstdout: %s\nstderr: %s", stdout.Bytes(), stderr.Bytes())
	}
	if err != nil {
		t.Fatalf("claude: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return claudeCodeRun{target: filepath.Join(work, "hello.txt"), result: gjson.GetBytes(stdout.Bytes(), "@this"),
		stdout: stdout.Bytes(), stderr: stderr.Bytes(), sent: rec.bodies, paths: rec.paths}
}

// checkTask fails unless the task completed: Claude Code's result says the
// final answer, and hello.txt holds what the tool call wrote.
func (r claudeCodeRun) checkTask(t *testing.T, final string) {
	t.Helper()
	if r.result.Get("is_error").Bool() || !strings.Contains(r.result.Get("result").Str, final) {
		t.Errorf("claude's result: %s\nstderr: %s", r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(r.target); err != nil || string(b) != "hi from llmproc\n" {
		t.Errorf("hello.txt: %q, %v", b, err)
	}
}

// writeInput is the Write tool call's input for the task in work.
func writeInput(work string) string {
	return fmt.Sprintf(`{"file_path":%q,"content":"hi from llmproc\n"}`, filepath.Join(work, "hello.txt"))
}

// TestClaudeCode runs the real Claude Code (npm @anthropic-ai/claude-code)
// through llmproc against a scripted Anthropic fake: a Write tool use, then
// a final answer. Every body the fake receives is the one Claude Code sent
// but for the model (the pool member's pin), with thinking, cache_control
// and tools intact, and the thinking block's signature comes back on the
// second turn.
func TestClaudeCode(t *testing.T) {
	claudeBin(t) // skips before anything starts when the clients cannot be installed
	fake := fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant-backend"})
	t.Cleanup(func() { fake.Close() })
	work := t.TempDir()
	fake.Script(func(r fakeanthropic.Request) fakeanthropic.Behaviour {
		last := gjson.GetBytes(r.Body, "messages.@reverse.0.content")
		for _, b := range last.Array() {
			if b.Get("type").Str == "tool_result" {
				return fakeanthropic.Behaviour{Content: "I wrote hello.txt."}
			}
		}
		return fakeanthropic.Behaviour{Thinking: "A Write call does it.", Content: "Writing the file.",
			ToolUses: []fakeanthropic.ToolUse{{ID: "toolu_cc1", Name: "Write", Input: writeInput(work)}}}
	})
	st, accessLog, log := startStack(t, fmt.Sprintf(claudeCodeConfig, fake.URL()), map[string]string{"ANTHROPIC_KEY": "sk-ant-backend"})
	run := runClaudeCode(t, &env{Stack: st, accessLog: accessLog, log: log}, work)
	run.checkTask(t, "I wrote hello.txt.")

	got := fake.Requests()
	sent, paths := run.sent, run.paths
	if len(got) < 2 || len(got) != len(sent) {
		t.Fatalf("the fake got %d requests, Claude Code sent %d (%v)", len(got), len(sent), paths)
	}
	for i, g := range got {
		if !strings.HasPrefix(paths[i], "/v1/messages") || g.Path != "/v1/messages" {
			t.Errorf("request %d: Claude Code sent %s, the fake got %s", i, paths[i], g.Path)
		}
		want, _ := sjson.SetBytes(bytes.Clone(sent[i]), "model", "claude-backend-model")
		if !bytes.Equal(g.Body, want) {
			t.Errorf("request %d: the fake got\n%s\nClaude Code sent (model replaced)\n%s", i, g.Body, want)
		}
		if g.Header.Get("x-api-key") != "sk-ant-backend" || g.Header.Get("anthropic-beta") == "" {
			t.Errorf("request %d: headers %v", i, g.Header)
		}
	}
	first, second := gjson.ParseBytes(got[0].Body), gjson.ParseBytes(got[len(got)-1].Body)
	if !first.Get("thinking").Exists() || !strings.Contains(first.Raw, `"cache_control"`) || first.Get("tools.#").Int() == 0 {
		t.Errorf("Claude Code's first request lacks thinking, cache_control or tools:\n%s", first.Raw)
	}
	if !strings.Contains(second.Raw, `"signature":"sig-fake"`) {
		t.Errorf("the thinking signature did not come back on the second turn:\n%s", second.Raw)
	}
}

const claudeCodeOpenAIConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 4194304, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
models:
  - {name: claude-sonnet-4-5, aliases: ["claude-*"], pool: gpt}
pools:
  - {name: gpt, backends: [{backend: openai, model: gpt-5}]}
`

// TestClaudeCodeOpenAI: the real Claude Code completes the task through
// llmproc against an OpenAI backend: its Messages requests are translated
// to chat completions (its tools as functions, its thinking as
// reasoning_effort, the Claude-only fields dropped), the fake's tool call
// comes back as a tool_use block Claude Code runs, and the tool result
// reaches OpenAI under the call's id.
func TestClaudeCodeOpenAI(t *testing.T) {
	claudeBin(t)
	prov := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { prov.Close() })
	work := t.TempDir()
	prov.Turns(
		func([]fake.ToolResult) fakeopenai.Behaviour {
			return fakeopenai.Behaviour{Content: "Writing the file.",
				ToolCalls: []fakeopenai.ToolCall{{ID: "call_cc1", Name: "Write", Arguments: writeInput(work)}}}
		},
		func([]fake.ToolResult) fakeopenai.Behaviour {
			return fakeopenai.Behaviour{Content: "I wrote hello.txt."}
		})
	st, accessLog, log := startStack(t, fmt.Sprintf(claudeCodeOpenAIConfig, prov.URL()), map[string]string{"OPENAI_KEY": "sk-openai"})
	run := runClaudeCode(t, &env{Stack: st, accessLog: accessLog, log: log}, work)
	run.checkTask(t, "I wrote hello.txt.")

	got := prov.Requests()
	if len(got) < 2 {
		t.Fatalf("OpenAI got %d requests", len(got))
	}
	first, last := gjson.ParseBytes(got[0].Body), gjson.ParseBytes(got[len(got)-1].Body)
	if first.Get("model").Str != "gpt-5" || !first.Get("stream").Bool() || first.Get("thinking").Exists() || first.Get("cache_control").Exists() {
		t.Errorf("the first OpenAI request:\n%s", first.Raw)
	}
	if first.Get(`tools.#(function.name=="Write")`).Raw == "" {
		t.Errorf("Claude Code's Write tool did not reach OpenAI:\n%s", first.Get("tools").Raw)
	}
	if effort := first.Get("reasoning_effort").Str; effort == "" {
		t.Errorf("Claude Code's thinking did not become reasoning_effort:\n%s", first.Raw)
	}
	if rs := fakeopenai.ToolResults(got[len(got)-1]); len(rs) != 1 || rs[0].CallID != "call_cc1" {
		t.Errorf("the tool result did not reach OpenAI under the call's id: %+v\n%s", rs, last.Raw)
	}
}

const claudeCodeBedrockConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 4194304, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
backends:
  - {name: bedrock, schema: bedrock, url: "%s", credential: {env: BEDROCK_KEYS}, bedrock: {region: us-west-2}}
models:
  - {name: claude-sonnet-4-5, aliases: ["claude-*"], pool: bedrock}
pools:
  - {name: bedrock, backends: [{backend: bedrock, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}]}
`

// TestClaudeCodeBedrock: the real Claude Code completes the task through
// llmproc against Claude on Bedrock, natively: InvokeModelWithResponseStream,
// SigV4-signed, each body the one Claude Code sent but model and stream
// (anthropic_version and its betas added), the event stream decoded into
// the Anthropic SSE Claude Code reads, and the thinking signature back on
// the second turn.
func TestClaudeCodeBedrock(t *testing.T) {
	claudeBin(t)
	prov := fakebedrock.New(fakebedrock.Options{AccessKeyID: "AKIDCC", Secret: "cc-secret", Region: "us-west-2", HostIsAddr: true})
	t.Cleanup(func() { prov.Close() })
	work := t.TempDir()
	prov.Turns(
		func([]fake.ToolResult) fakebedrock.Behaviour {
			return fakebedrock.Behaviour{Reasoning: "A Write call does it.", Content: "Writing the file.",
				Tool: &fakebedrock.ToolUse{ID: "toolu_cc1", Name: "Write", Input: writeInput(work)}}
		},
		func([]fake.ToolResult) fakebedrock.Behaviour {
			return fakebedrock.Behaviour{Content: "I wrote hello.txt."}
		})
	st, accessLog, log := startStack(t, fmt.Sprintf(claudeCodeBedrockConfig, prov.URL()), map[string]string{"BEDROCK_KEYS": "AKIDCC:cc-secret"})
	run := runClaudeCode(t, &env{Stack: st, accessLog: accessLog, log: log}, work)
	run.checkTask(t, "I wrote hello.txt.")

	got := prov.Requests()
	if len(got) < 2 || len(got) != len(run.sent) {
		t.Fatalf("Bedrock got %d requests, Claude Code sent %d", len(got), len(run.sent))
	}
	for i, g := range got {
		if g.Op != "invoke-with-response-stream" || g.ModelID != "us.anthropic.claude-sonnet-4-5-20250929-v1:0" {
			t.Errorf("request %d: %s %s", i, g.Op, g.ModelID)
		}
		want, _ := sjson.DeleteBytes(bytes.Clone(run.sent[i]), "model")
		want, _ = sjson.DeleteBytes(want, "stream")
		sent := gjson.ParseBytes(g.Body)
		gjson.ParseBytes(want).ForEach(func(k, v gjson.Result) bool {
			if sent.Get(k.Str).Raw != v.Raw {
				t.Errorf("request %d: %s sent as %.200s, Claude Code's %.200s", i, k.Str, sent.Get(k.Str).Raw, v.Raw)
			}
			return true
		})
		if sent.Get("anthropic_version").Str != "bedrock-2023-05-31" || !sent.Get("anthropic_beta").IsArray() {
			t.Errorf("request %d: anthropic_version %s, anthropic_beta %s", i, sent.Get("anthropic_version").Raw, sent.Get("anthropic_beta").Raw)
		}
	}
	first, second := gjson.ParseBytes(got[0].Body), gjson.ParseBytes(got[len(got)-1].Body)
	if !first.Get("thinking").Exists() || !strings.Contains(first.Raw, `"cache_control"`) || first.Get("tools.#").Int() == 0 {
		t.Errorf("Claude Code's first request lacks thinking, cache_control or tools:\n%s", first.Raw)
	}
	if !strings.Contains(second.Raw, `"signature":"sig-fake"`) {
		t.Errorf("the thinking signature did not come back on the second turn:\n%s", second.Raw)
	}
}

const claudeCodeVertexConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 4194304, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1}
backends:
  - {name: vertex, schema: vertex, url: "%s", credential: {env: VERTEX_TOKEN}, vertex: {project: proj-cc, region: us-east5}}
models:
  - {name: claude-sonnet-4-5, aliases: ["claude-*"], pool: vertex}
pools:
  - {name: vertex, backends: [{backend: vertex, model: "claude-sonnet-4-5@20250929"}]}
`

// TestClaudeCodeVertex: the real Claude Code completes the task through
// llmproc against Claude on Vertex, natively: streamRawPredict with the
// bearer token, every body the one Claude Code sent but model, with
// anthropic_version, its betas in anthropic-beta.
func TestClaudeCodeVertex(t *testing.T) {
	claudeBin(t)
	prov := fakeanthropic.New(fakeanthropic.Options{VertexToken: "ya29.cc"})
	t.Cleanup(func() { prov.Close() })
	work := t.TempDir()
	prov.Turns(
		func([]fake.ToolResult) fakeanthropic.Behaviour {
			return fakeanthropic.Behaviour{Thinking: "A Write call does it.", Content: "Writing the file.",
				ToolUses: []fakeanthropic.ToolUse{{ID: "toolu_cc1", Name: "Write", Input: writeInput(work)}}}
		},
		func([]fake.ToolResult) fakeanthropic.Behaviour {
			return fakeanthropic.Behaviour{Content: "I wrote hello.txt."}
		})
	st, accessLog, log := startStack(t, fmt.Sprintf(claudeCodeVertexConfig, prov.URL()), map[string]string{"VERTEX_TOKEN": "ya29.cc"})
	run := runClaudeCode(t, &env{Stack: st, accessLog: accessLog, log: log}, work)
	run.checkTask(t, "I wrote hello.txt.")

	got := prov.Requests()
	if len(got) < 2 || len(got) != len(run.sent) {
		t.Fatalf("Vertex got %d requests, Claude Code sent %d", len(got), len(run.sent))
	}
	for i, g := range got {
		if g.Path != "/v1/projects/proj-cc/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict" ||
			g.Header.Get("anthropic-beta") == "" {
			t.Errorf("request %d: %s %v", i, g.Path, g.Header)
		}
		want, _ := sjson.DeleteBytes(bytes.Clone(run.sent[i]), "model")
		want, _ = sjson.SetBytes(want, "anthropic_version", "vertex-2023-10-16")
		if !bytes.Equal(g.Body, want) {
			t.Errorf("request %d: Vertex got\n%s\nClaude Code sent (model out, anthropic_version in)\n%s", i, g.Body, want)
		}
	}
	if !strings.Contains(string(got[len(got)-1].Body), `"signature":"sig-fake"`) {
		t.Errorf("the thinking signature did not come back on the second turn")
	}
}
