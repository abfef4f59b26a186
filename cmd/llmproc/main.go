// Command llmproc is an Envoy ext_proc server that turns an Envoy or Istio mesh
// into an LLM gateway. main only wires signals; run holds the subcommands so
// tests can call it in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/llmproc/llmproc/envoy"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/server"
	"github.com/llmproc/llmproc/filter/translate"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// go-redis logs every failed dial to its own global logger; llmproc
	// counts shared-cache errors and logs them rate-limited instead.
	redis.SetLogger(quietRedis{})
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "llmproc:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage: llmproc <command> [flags]

commands:
  serve         -config FILE           run the ext_proc server (both filter roles), /metrics and /healthz
  validate      -config FILE           load and compile the config; print every problem
  envoy-config  -config FILE [-o OUT]  render the Envoy bootstrap for the config
                [-ads]                 one that takes listener, routes and clusters from llmproc (envoy.xds)
                [-target istio|kubernetes|envoy] [-namespace NS] [-gateway NAME] ...
                                       or the Istio gateway and EnvoyFilters, llmproc's own
                                       Kubernetes objects, or a plain Envoy Deployment
  route-test    -config FILE [-json] REQUESTS.jsonl...
                                       route requests offline: features, class, rule, pool;
                                       exits 1 when one is routed otherwise than it expects
  classifier    train [-corpus DIR] [-o FILE]
                                       train the task classifier's model from the corpus
                                       (byte for byte the shipped one); print held-out accuracy
                eval [-model FILE] [-misses] REQUESTS.jsonl...
                                       per-class precision, recall and confusion matrix
  keys          create STORE -tenant T [-team T] [-user U] [-models GLOBS] [-expires DUR] [LIMITS]
                                       make a client key: printed once, only its hash stored
                                       LIMITS, each within its tenant's: -apis LIST -tools GLOBS
                                       -max-request-bytes N -budget-usd USD -budget-tokens N
                                       -budget-window minute|hour|day|month -tpm N -rpm N
                update STORE [-models GLOBS] [LIMITS] ID
                                       change a key's lists and limits (the flags given; '' removes)
                list STORE             the keys: id, tenant, team, user, models, limits, created,
                                       expires, status
                revoke STORE ID        revoke a key (refused within limits.reload_interval for
                                       a file, identity.refresh for Redis)
                STORE is -file F, -redis HOST:PORT [-redis-prefix P] (password from
                $LLMPROC_REDIS_PASSWORD), or -config FILE (its identity.redis, else keys_file)
  version                              print the version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("llmproc "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "llmproc.yaml", "config file")
	switch cmd {
	case "serve":
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		// Once serving, the binary's pages that only starting needed
		// leave llmproc's resident memory (server.ReleaseStartupPages).
		return server.Run(ctx, server.Options{ConfigPath: *cfgPath, LogOutput: stderr, Version: version,
			Ready: func(server.Addrs) { server.ReleaseStartupPages() }})
	case "validate":
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		return validate(*cfgPath, stdout)
	case "envoy-config":
		out := fs.String("o", "-", "output file, - for stdout")
		ads := fs.Bool("ads", false, "render the bootstrap for llmproc's ADS server (envoy.xds): only the llmproc cluster is static")
		target := targetFlags(fs)
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		if target.name != targetBootstrap {
			return target.render(*cfgPath, *out, stdout)
		}
		return envoyConfig(*cfgPath, *out, *ads, stdout)
	case "route-test":
		asJSON := fs.Bool("json", false, "print one JSON result per request")
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		return routeTest(*cfgPath, fs.Args(), *asJSON, stdout)
	case "keys":
		return keys(args, stdout, stderr)
	case "classifier":
		return classifier(args, stdout, stderr)
	case "version":
		v := version
		if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		fmt.Fprintln(stdout, "llmproc", v)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "llmproc: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

// validate loads and compiles the config, credentials included, and lists
// every problem, one per line.
func validate(path string, stdout io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	_, cerr := config.Compile(cfg, os.Getenv)
	if err := errors.Join(cerr, translate.CheckBackends(cfg)); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "%s: ok (%d backends, %d models, %d pools, %d routes)\n",
		path, len(cfg.Backends), len(cfg.Models), len(cfg.Pools), len(cfg.Routes))
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "%s: warning: %s\n", path, w)
	}
	return nil
}

func envoyConfig(path, out string, ads bool, stdout io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	rt, err := config.Topology(cfg)
	if err != nil {
		return err
	}
	render, check := envoy.Bootstrap, envoy.Check
	if ads {
		render, check = envoy.ADSBootstrap, envoy.CheckADSBootstrap
	}
	bs, err := render(rt)
	if err != nil {
		return err
	}
	if err := check(bs, rt); err != nil {
		return fmt.Errorf("rendered Envoy config is invalid: %w", err)
	}
	y, err := envoy.YAML(bs)
	if err != nil {
		return err
	}
	return writeOut(out, y, stdout)
}

// writeOut writes a rendering to the file out, or to stdout for "-".
func writeOut(out string, y []byte, stdout io.Writer) error {
	if out == "-" {
		_, err := stdout.Write(y)
		return err
	}
	return os.WriteFile(out, y, 0o644)
}

// quietRedis discards go-redis's internal log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
