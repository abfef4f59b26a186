// Command quickstart is what `make run` starts: fake OpenAI-style providers on
// the config's loopback backend URLs, llmproc, and Envoy in front — a real
// Envoy when ENVOY_BIN is set or `envoy` is on PATH, otherwise the Envoy-side
// harness from e2e/harness, which it says plainly.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/stack"
	"github.com/llmproc/llmproc/filter/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfgPath := flag.String("config", "examples/quickstart/llmproc.yaml", "llmproc config")
	fakes := flag.Bool("fakes", true, "start fake providers on loopback backend URLs")
	flag.Parse()

	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	getenv := func(k string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return "sk-fake-" + k // the fake providers accept any key
	}
	if *fakes {
		for _, b := range cfg.Backends {
			u, err := url.Parse(b.URL)
			if err != nil || !isLoopback(u.Hostname()) {
				continue
			}
			// Fixed usage figures, so /metrics shows tokens and cost.
			s, err := fakeopenai.Listen(u.Host, fakeopenai.Options{Default: fakeopenai.Behaviour{
				Usage: fakeopenai.Usage{Prompt: 25, Completion: 6},
			}})
			if err != nil {
				return fmt.Errorf("fake provider for backend %q: %w", b.Name, err)
			}
			s.Script(agentTurns)
			defer s.Close()
			fmt.Printf("fake provider %-10s on %s\n", b.Name, s.URL())
		}
	}

	bin := os.Getenv("ENVOY_BIN")
	if bin == "" {
		bin, _ = exec.LookPath("envoy")
	}
	// With envoy.xds, Envoy starts from the ADS bootstrap and takes its
	// listener, routes and clusters from llmproc.
	st, err := stack.Start(ctx, stack.Options{ConfigPath: *cfgPath, Getenv: getenv, EnvoyBin: bin,
		LLMProcLog: os.Stderr, AccessLog: os.Stdout, ADS: cfg.Envoy.XDS})
	if err != nil {
		return err
	}
	defer st.Close()
	if st.Real {
		fmt.Printf("Envoy (%s) listening on %s\n", bin, st.Proxy.Addr())
	} else {
		fmt.Printf("No Envoy binary found (set ENVOY_BIN): the Envoy-side test harness stands in for Envoy on %s,\n"+
			"driven by the same rendered bootstrap.\n", st.Proxy.Addr())
	}
	fmt.Printf("llmproc ext_proc on %s, metrics on http://%s/metrics, status page on http://%s/\n\n", st.LLMProc.GRPC, st.LLMProc.HTTP, st.LLMProc.HTTP)
	fmt.Printf("Try:\n  curl -s %s/v1/chat/completions -H 'content-type: application/json' \\\n"+
		"    -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'\n"+
		"  curl -s %s/v1/responses -H 'content-type: application/json' -d '{\"model\":\"gpt-4o-mini\",\"input\":\"Hello\"}'\n"+
		"  curl -s %s/v1/embeddings -H 'content-type: application/json' -d '{\"model\":\"text-embedding-3-small\",\"input\":\"Hello\"}'\n"+
		"Codex CLI: see the README's quickstart (a model provider with base_url %s/v1 and wire_api = \"responses\").\n\nCtrl-C stops.\n",
		st.URL(), st.URL(), st.URL(), st.URL())
	<-ctx.Done()
	return nil
}

// agentTurns scripts the fakes for coding agents such as Codex CLI: a
// request that offers the exec_command tool gets a call of it (an echo),
// and the request that brings its result back gets an answer quoting it.
// Any other request gets the default answer.
func agentTurns(r fakeopenai.Request) fakeopenai.Behaviour {
	usage := fakeopenai.Usage{Prompt: 25, Completion: 6}
	if rs := fakeopenai.ToolResults(r); len(rs) > 0 {
		out := rs[len(rs)-1].Output
		if _, after, ok := strings.Cut(out, "Output:\n"); ok { // Codex's exec_command result
			out = after
		}
		return fakeopenai.Behaviour{Content: "The command said: " + strings.TrimSpace(out), Usage: usage}
	}
	if gjson.GetBytes(r.Body, `tools.#(name=="exec_command")`).Exists() {
		return fakeopenai.Behaviour{Content: "Running a command through llmproc.", Usage: usage,
			ToolCalls: []fakeopenai.ToolCall{{ID: "call_quickstart", Name: "exec_command", Arguments: `{"cmd":"echo hello from llmproc"}`}}}
	}
	return fakeopenai.Behaviour{Usage: usage}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
