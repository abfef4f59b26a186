package main

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/llmproc/llmproc/filter/server"
)

// TestHold holds streams open on an in-process llmproc (filter/server.Run,
// pprof on) and reads its heap, goroutines and RSS: the streams' handlers
// show in the open reading, every held stream is finished with all its
// chunks checked, and the handlers are gone afterwards.
func TestHold(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	_, topo, _ := loadTopology(t, loadConfig)
	grpcAddr, err1 := freeAddr()
	httpAddr, err2 := freeAddr()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	cfgPath := filepath.Join(t.TempDir(), "llmproc.yaml")
	if err := writeConfig(loadConfig, cfgPath, grpcAddr, httpAddr, true); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- server.Run(t.Context(), server.Options{ConfigPath: cfgPath, Getenv: func(string) string { return "sk-test" },
			Ready: func(server.Addrs) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("llmproc did not start")
	}
	c, _ := caseByName(case2KSSE)
	w, err := llmprocWorkload(c, topo)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	r, err := holdOnce(t.Context(), &child{name: modeLlmproc, addr: grpcAddr, httpAddr: httpAddr, pid: os.Getpid()}, w,
		options{hold: n, conns: 2}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]memSample{"idle": r.idle, "open": r.open, "after": r.after} {
		if s.heapInuse <= 0 || s.heapAlloc <= 0 || s.goroutines <= 0 || s.rss <= 0 {
			t.Errorf("%s reading incomplete: %+v", name, s)
		}
	}
	// The process is the test's own: the driver's client streams count too,
	// so only the lower bound is the server's.
	if r.open.goroutines < r.idle.goroutines+n {
		t.Errorf("goroutines idle %d, open %d: want at least one more per held stream", r.idle.goroutines, r.open.goroutines)
	}
	if r.after.goroutines >= r.open.goroutines {
		t.Errorf("goroutines open %d, after %d: the held streams' handlers did not end", r.open.goroutines, r.after.goroutines)
	}
}

func TestGauges(t *testing.T) {
	got := gauges([]byte("# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 25\n" +
		"go_memstats_heap_inuse_bytes 2.3207936e+07\nllmproc_extproc_active_streams{role=\"router\"} 3\n"))
	if got["go_goroutines"] != 25 || got["go_memstats_heap_inuse_bytes"] != 2.3207936e+07 || len(got) != 2 {
		t.Errorf("gauges = %v", got)
	}
}
