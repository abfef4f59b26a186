// Package stack starts llmproc with Envoy in front of it, for the e2e tests
// and for `make run`: llmproc in-process, then a real Envoy when a binary is
// given, otherwise the Envoy-side harness, both driven by the bootstrap that
// `llmproc envoy-config` renders from the same config (or, with ADS, by the
// one `llmproc envoy-config -ads` renders, the rest coming over ADS).
package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/llmproc/llmproc/e2e/harness"
	"github.com/llmproc/llmproc/envoy"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/server"
)

// Options configures Start.
type Options struct {
	ConfigPath string
	// Getenv resolves credential env vars for llmproc; os.Getenv when nil.
	Getenv func(string) string
	// EnvoyBin runs a real Envoy; "" uses the harness.
	EnvoyBin string
	// EnvoyListen overrides the config's envoy.listen ("127.0.0.1:0" picks a free port).
	EnvoyListen string
	// LLMProcLog receives llmproc's log; AccessLog the proxy's access log.
	LLMProcLog io.Writer
	AccessLog  io.Writer
	// WorkDir holds the rendered bootstrap for a real Envoy; a temp dir when "".
	WorkDir string
	// LLMProcBin, when set, runs llmproc as its own process (`serve`) with
	// LLMProcEnv as its environment, instead of in-process; the config's
	// listen addresses must then be concrete (no port 0).
	LLMProcBin string
	LLMProcEnv []string
	// ADS renders the ADS bootstrap (envoy.ADSBootstrap) instead of the
	// static one: Envoy takes its clusters, listener and routes from
	// llmproc over ADS, so the config must set envoy.xds. The listener is
	// then the one llmproc serves, at the config's envoy.listen;
	// EnvoyListen can move only the harness's.
	ADS bool
	// EditBootstrap, when set, changes the rendered bootstrap before the
	// proxy starts: for tests that need a threshold or timeout the config
	// cannot express (a circuit breaker that refuses every retry).
	EditBootstrap func(*bootstrapv3.Bootstrap)
	// PeerURISAN, for the harness, gives each request's client-certificate
	// URI SAN (identity.source mesh): it listens without TLS.
	PeerURISAN func(*http.Request) string
}

// Proxy is Envoy or its stand-in.
type Proxy interface {
	Addr() string
	// Counters are Envoy stats by name (the harness's, or a real Envoy's /stats).
	Counters() map[string]uint64
	Close() error
}

// Stack is a running llmproc behind a proxy.
type Stack struct {
	LLMProc   server.Addrs
	Proxy     Proxy
	Bootstrap []byte // the rendered bootstrap YAML
	Real      bool   // Proxy is a real Envoy
	cancel    context.CancelFunc
	stopLLM   context.CancelFunc // ends llmproc alone
	done      chan error
}

// URL is the proxy's base URL.
func (s *Stack) URL() string { return "http://" + s.Proxy.Addr() }

// MetricsURL is llmproc's /metrics.
func (s *Stack) MetricsURL() string { return "http://" + s.LLMProc.HTTP + "/metrics" }

// StopLLMProc stops llmproc (its drain included) and leaves the proxy
// running, as when llmproc is down: Envoy's ext_proc streams then fail.
func (s *Stack) StopLLMProc() error {
	s.stopLLM()
	err := <-s.done
	s.done <- err // for Close
	return err
}

// Close stops the proxy and llmproc.
func (s *Stack) Close() error {
	perr := s.Proxy.Close()
	s.cancel()
	return errors.Join(perr, <-s.done)
}

// Start runs llmproc from the config, renders the bootstrap pointing at it,
// and starts the proxy.
func Start(ctx context.Context, o Options) (*Stack, error) {
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	if o.ADS && !cfg.Envoy.XDS {
		return nil, fmt.Errorf("%s: ADS needs envoy.xds: true", o.ConfigPath)
	}
	ctx, cancel := context.WithCancel(ctx)
	lctx, stopLLM := context.WithCancel(ctx)
	st := &Stack{cancel: cancel, stopLLM: stopLLM, done: make(chan error, 1)}
	if o.LLMProcBin != "" {
		st.LLMProc = server.Addrs{GRPC: cfg.Listen.GRPC, HTTP: cfg.Listen.HTTP}
		if err := startProcess(lctx, o, st); err != nil {
			cancel()
			return nil, err
		}
	} else {
		ready := make(chan server.Addrs, 1)
		go func() {
			st.done <- server.Run(lctx, server.Options{ConfigPath: o.ConfigPath, Getenv: o.Getenv, LogOutput: o.LLMProcLog,
				Ready: func(a server.Addrs) { ready <- a }})
		}()
		select {
		case st.LLMProc = <-ready:
		case err := <-st.done:
			cancel()
			return nil, fmt.Errorf("llmproc: %w", err)
		}
	}

	cfg.Envoy.LLMProc = st.LLMProc.GRPC
	if o.EnvoyListen != "" && !o.ADS {
		cfg.Envoy.Listen = o.EnvoyListen
	}
	if o.EnvoyBin != "" {
		// A real Envoy needs concrete ports up front (with ADS, llmproc
		// serves the listener; its address is read back from the admin).
		if !o.ADS {
			cfg.Envoy.Listen, err = concretePort(cfg.Envoy.Listen)
		} else if o.EnvoyListen != "" {
			err = errors.New("with ADS, a real Envoy listens where the config's envoy.listen says; EnvoyListen cannot move it")
		}
		if err == nil {
			cfg.Envoy.Admin, err = concretePort("127.0.0.1:0")
		}
		if err != nil {
			cancel()
			<-st.done
			return nil, err
		}
	}
	rt, err := config.Topology(cfg)
	if err != nil {
		cancel()
		<-st.done
		return nil, err
	}
	render := envoy.Bootstrap
	if o.ADS {
		render = envoy.ADSBootstrap
	}
	bs, err := render(rt)
	if err == nil && o.EditBootstrap != nil {
		o.EditBootstrap(bs)
	}
	if err == nil {
		st.Bootstrap, err = envoy.YAML(bs)
	}
	if err != nil {
		cancel()
		<-st.done
		return nil, err
	}
	if o.EnvoyBin != "" {
		listen := cfg.Envoy.Listen
		if o.ADS {
			listen = ""
		}
		st.Proxy, err = startEnvoy(ctx, o, st.Bootstrap, listen, cfg.Envoy.Admin)
		st.Real = true
	} else {
		st.Proxy, err = startHarness(ctx, o, st.Bootstrap)
	}
	if err != nil {
		cancel()
		<-st.done
		return nil, err
	}
	return st, nil
}

func startHarness(ctx context.Context, o Options, bootstrap []byte) (Proxy, error) {
	bs, err := harness.LoadBootstrapYAML(bootstrap)
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	ho := harness.Options{AccessLog: o.AccessLog, Logger: slog.New(slog.DiscardHandler), PeerURISAN: o.PeerURISAN}
	if o.ADS {
		ho.ListenAddr = o.EnvoyListen
	}
	return harness.Start(ctx, bs, ho)
}

// concretePort replaces port 0 with a free port.
func concretePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return addr, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// realEnvoy is an Envoy process started from the rendered bootstrap.
type realEnvoy struct {
	cmd   *exec.Cmd
	addr  string
	admin string
}

// startEnvoy runs Envoy and waits until it is ready; listen "" reads the
// listener's address from the admin (a listener served over ADS).
func startEnvoy(ctx context.Context, o Options, bootstrap []byte, listen, admin string) (Proxy, error) {
	if err := checkEnvoyVersion(ctx, o.EnvoyBin); err != nil {
		return nil, err
	}
	dir := o.WorkDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "llmproc-envoy-"); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(dir, "bootstrap.yaml")
	if err := os.WriteFile(path, bootstrap, 0o644); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(admin)
	cmd := exec.CommandContext(ctx, o.EnvoyBin, "-c", path, "--base-id", port, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = o.AccessLog, o.AccessLog
	if cmd.Stdout == nil {
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("envoy: %w", err)
	}
	e := &realEnvoy{cmd: cmd, addr: listen, admin: admin}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if e.addr == "" {
					if e.addr, err = listenerAddr(admin); err != nil {
						_ = e.Close()
						return nil, err
					}
				}
				return e, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = e.Close()
	return nil, errors.New("envoy did not become ready within 30s")
}

// checkEnvoyVersion runs `bin --version` and refuses an Envoy older than
// the rendered config needs (envoy.MinVersion).
func checkEnvoyVersion(ctx context.Context, bin string) error {
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %v: %s", bin, err, strings.TrimSpace(string(out)))
	}
	if err := envoy.CheckVersion(string(out)); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	return nil
}

// listenerAddr is the address of Envoy's one listener, from the admin's
// /listeners.
func listenerAddr(admin string) (string, error) {
	resp, err := http.Get("http://" + admin + "/listeners?format=json")
	if err != nil {
		return "", fmt.Errorf("envoy admin /listeners: %w", err)
	}
	defer resp.Body.Close()
	var ls struct {
		ListenerStatuses []struct {
			Name         string `json:"name"`
			LocalAddress struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue int    `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ls); err != nil {
		return "", fmt.Errorf("envoy admin /listeners: %w", err)
	}
	if len(ls.ListenerStatuses) != 1 {
		return "", fmt.Errorf("envoy admin /listeners: %d listeners, want one", len(ls.ListenerStatuses))
	}
	sa := ls.ListenerStatuses[0].LocalAddress.SocketAddress
	return net.JoinHostPort(sa.Address, strconv.Itoa(sa.PortValue)), nil
}

func (e *realEnvoy) Addr() string { return e.addr }

func (e *realEnvoy) Counters() map[string]uint64 {
	out := map[string]uint64{}
	resp, err := http.Get("http://" + e.admin + "/stats?format=text")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

func (e *realEnvoy) Close() error {
	if e.cmd.Process != nil {
		_ = e.cmd.Process.Kill()
	}
	_ = e.cmd.Wait()
	return nil
}

// startProcess runs `llmproc serve` as a child process and waits for its
// /healthz; the process is stopped (SIGTERM) when ctx ends.
func startProcess(ctx context.Context, o Options, st *Stack) error {
	cmd := exec.Command(o.LLMProcBin, "serve", "-config", o.ConfigPath)
	cmd.Env = o.LLMProcEnv
	cmd.Stdout, cmd.Stderr = o.LLMProcLog, o.LLMProcLog
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("llmproc: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				st.done <- err
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				st.done <- <-exited
			}
		case err := <-exited:
			st.done <- fmt.Errorf("llmproc exited early: %v", err)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + st.LLMProc.HTTP + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return errors.New("llmproc did not become healthy within 20s")
}
