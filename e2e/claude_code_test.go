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

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
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

// TestClaudeCode runs the real Claude Code (npm @anthropic-ai/claude-code)
// through llmproc against a scripted Anthropic fake: a Write tool use, then
// a final answer. Every body the fake receives is the one Claude Code sent
// but for the model (the pool member's pin), with thinking, cache_control
// and tools intact, and the thinking block's signature comes back on the
// second turn.
func TestClaudeCode(t *testing.T) {
	bin := claudeBin(t)
	fake := fakeanthropic.New(fakeanthropic.Options{APIKey: "sk-ant-backend"})
	t.Cleanup(func() { fake.Close() })
	work := t.TempDir()
	target := filepath.Join(work, "hello.txt")
	fake.Script(func(r fakeanthropic.Request) fakeanthropic.Behaviour {
		last := gjson.GetBytes(r.Body, "messages.@reverse.0.content")
		for _, b := range last.Array() {
			if b.Get("type").Str == "tool_result" {
				return fakeanthropic.Behaviour{Content: "I wrote hello.txt."}
			}
		}
		return fakeanthropic.Behaviour{Thinking: "A Write call does it.", Content: "Writing the file.",
			ToolUses: []fakeanthropic.ToolUse{{ID: "toolu_cc1", Name: "Write",
				Input: fmt.Sprintf(`{"file_path":%q,"content":"hi from llmproc\n"}`, target)}}}
	})
	st, accessLog, log := startStack(t, fmt.Sprintf(claudeCodeConfig, fake.URL()), map[string]string{"ANTHROPIC_KEY": "sk-ant-backend"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
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
	res := gjson.GetBytes(stdout.Bytes(), "@this")
	if res.Get("is_error").Bool() || !strings.Contains(res.Get("result").Str, "I wrote hello.txt.") {
		t.Errorf("claude's result: %s\nstderr: %s", stdout.Bytes(), stderr.Bytes())
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "hi from llmproc\n" {
		t.Errorf("hello.txt: %q, %v", b, err)
	}

	got := fake.Requests()
	rec.mu.Lock()
	sent, paths := rec.bodies, rec.paths
	rec.mu.Unlock()
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
