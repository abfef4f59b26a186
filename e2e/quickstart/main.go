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
	"syscall"

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
	fmt.Printf("llmproc ext_proc on %s, metrics on http://%s/metrics\n\n", st.LLMProc.GRPC, st.LLMProc.HTTP)
	fmt.Printf("Try:\n  curl -s %s/v1/chat/completions -H 'content-type: application/json' \\\n"+
		"    -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'\n\nCtrl-C stops.\n", st.URL())
	<-ctx.Done()
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
