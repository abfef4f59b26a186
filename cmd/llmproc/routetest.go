package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/routetest"
)

// errMismatch is route-test's failure: some request was routed otherwise than
// its expect said. The details are already printed.
var errMismatch = errors.New("route-test: some requests did not route as expected")

// routeTest routes every request of a JSON-lines file offline and checks the
// outcomes it expects (see package routetest).
func routeTest(cfgPath string, files []string, asJSON bool, stdout io.Writer) error {
	if len(files) == 0 {
		return fmt.Errorf("route-test: name a requests file (JSON lines)")
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	rt, err := config.Topology(cfg)
	if err != nil {
		return fmt.Errorf("config %s: %w", cfgPath, err)
	}
	failed := 0
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		n, err := routetest.Run(rt, f, stdout, asJSON)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		failed += n
	}
	if failed > 0 {
		return errMismatch
	}
	return nil
}
