package main

import (
	"context"
	"fmt"
	"net"
	"os"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/llmproc/llmproc/envoy"
	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"
)

// llmprocSpecs are the two ext_proc filters Envoy runs with llmproc's
// rendered config.
func llmprocSpecs(topo *config.Runtime) (router, upstream *filterSpec, err error) {
	if router, err = specOf("router", envoy.RouterFilter(topo)); err != nil {
		return nil, nil, err
	}
	if upstream, err = specOf("upstream", envoy.UpstreamFilter(topo)); err != nil {
		return nil, nil, err
	}
	return router, upstream, nil
}

// llmprocWorkload is case c as Envoy sends it with llmproc's rendered
// config, checked against llmproc's expected replies.
func llmprocWorkload(c caseSpec, topo *config.Runtime) (*workload, error) {
	router, upstream, err := llmprocSpecs(topo)
	if err != nil {
		return nil, err
	}
	r, err := routeFor(topo, c.model)
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", c.name, err)
	}
	w, err := newWorkload(c, router, upstream, r, llmprocAttrs(r))
	if err != nil {
		return nil, err
	}
	w.check, w.record, w.verify = true, true, verifyLlmproc
	return w, nil
}

// floorWorkload is the same message sequence for the floor, in full, with
// the upstream headers message llmproc's router replies produce (taken from
// one probe cycle against an in-process llmproc): the floor is sent what
// Envoy would send after llmproc's router, byte for byte.
func floorWorkload(ctx context.Context, c caseSpec, topo *config.Runtime, probe extprocv3.ExternalProcessorClient) (*workload, error) {
	w, err := llmprocWorkload(c, topo)
	if err != nil {
		return nil, err
	}
	w.allowMiss = true // the probe's cache is cold
	o, err := runCycle(ctx, probe, w)
	if err != nil {
		return nil, fmt.Errorf("case %s: probe cycle against an in-process llmproc: %w", c.name, err)
	}
	w.upHeaders = o.upMsg
	w.check, w.record, w.verify, w.allowMiss = false, false, nil, false
	return w, nil
}

// buildWorkloads prebuilds every case's messages for every server.
func buildWorkloads(ctx context.Context, o options, cfg *config.Config, modes []string) (map[string]map[string]*workload, error) {
	topo, err := config.Topology(cfg)
	if err != nil {
		return nil, err
	}
	var probe extprocv3.ExternalProcessorClient
	if o.target.addr == "" {
		client, stop, err := inProcessLlmproc(cfg)
		if err != nil {
			return nil, err
		}
		defer stop()
		probe = client
	}
	names := o.cases
	if o.rate > 0 && !contains(names, o.rateCase) {
		names = append(names, o.rateCase)
	}
	out := map[string]map[string]*workload{}
	for _, name := range names {
		c, _ := caseByName(name)
		out[name] = map[string]*workload{}
		for _, m := range modes {
			var w *workload
			switch {
			case o.target.addr != "":
				w, err = o.target.workload(c, m == modeTarget)
			case m == modeLlmproc:
				w, err = llmprocWorkload(c, topo)
			default:
				w, err = floorWorkload(ctx, c, topo, probe)
			}
			if err != nil {
				return nil, err
			}
			out[name][m] = w
		}
	}
	return out, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// llmprocServer is llmproc's ext_proc server for rt, with a small local
// cache tier when the config caches (as filter/server wires it).
func llmprocServer(cfg *config.Config, rt *config.Runtime) (*extproc.Server, error) {
	opts := extproc.Options{Config: fixedRuntime{rt}}
	if cfg.Cache.Mode != "off" {
		local, err := cache.NewLocal(min(cfg.Cache.MemoryMB, 16), cfg.Cache.TTL.Duration)
		if err != nil {
			return nil, err
		}
		opts.Cache = &extproc.CacheTiers{Local: local, TTL: cfg.Cache.TTL.Duration, MaxEntryBytes: cfg.Cache.MaxEntryBytes}
	}
	return extproc.New(opts), nil
}

type fixedRuntime struct{ rt *config.Runtime }

func (f fixedRuntime) Load() *config.Runtime { return f.rt }

// inProcessLlmproc serves llmproc's ext_proc server for cfg (dummy
// credentials) on 127.0.0.1 inside the driver.
func inProcessLlmproc(cfg *config.Config) (extprocv3.ExternalProcessorClient, func(), error) {
	rt, err := config.Compile(cfg, func(name string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return "sk-load-dummy"
	})
	if err != nil {
		return nil, nil, err
	}
	srv, err := llmprocServer(cfg, rt)
	if err != nil {
		return nil, nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	gs := grpcServer(cfg.Limits.MaxRequestBytes)
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	clients, closeAll, err := dial(lis.Addr().String(), 1)
	if err != nil {
		gs.Stop()
		return nil, nil, err
	}
	return clients[0], func() { closeAll(); gs.Stop() }, nil
}
