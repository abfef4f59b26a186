package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeFile replaces path atomically, as a ConfigMap update does, so a poll
// never sees a half-written file.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// storeConfig is a config whose model name and credential file vary.
func storeConfig(model, keyFile string) string {
	return `
backends:
  - name: anthropic
    schema: anthropic
    url: https://api.anthropic.com
    credential: {file: "` + keyFile + `"}
models:
  - name: ` + model + `
    pool: p
pools:
  - name: p
    backends: [{backend: anthropic}]
`
}

// watchFixture runs Watch over a config in a temp dir while readers Load
// concurrently, and hands every reload result to the test over a channel.
type watchFixture struct {
	dir, cfgPath, keyPath string
	store                 *Store
	reloads               chan error
}

func newWatchFixture(t *testing.T) *watchFixture {
	t.Helper()
	dir := t.TempDir()
	f := &watchFixture{
		dir:     dir,
		cfgPath: filepath.Join(dir, "llmproc.yaml"),
		keyPath: filepath.Join(dir, "key"),
		reloads: make(chan error, 16),
	}
	writeFile(t, f.keyPath, "key-1\n")
	writeFile(t, f.cfgPath, storeConfig("model-a", f.keyPath))
	cfg, err := Load(f.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Compile(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.store = NewStore(rt)

	// Take the first snapshot here, before the test changes anything, then
	// poll as Watch does.
	w := f.store.watcher(f.cfgPath, nil, func(err error) { f.reloads <- err })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				w.poll()
			}
		}
	}()
	for range 4 { // readers, as the filter's request goroutines
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rt := f.store.Load()
				if len(rt.Models) != 1 || rt.Backends["anthropic"].Credential == "" {
					t.Errorf("reader saw an inconsistent runtime: %+v", rt)
					return
				}
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return f
}

// next waits for the next reload callback.
func (f *watchFixture) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.reloads:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s")
		return nil
	}
}

func TestStoreWatch(t *testing.T) {
	f := newWatchFixture(t)
	first := f.store.Load()

	// A valid change swaps the runtime.
	writeFile(t, f.cfgPath, storeConfig("model-b", f.keyPath))
	if err := f.next(t); err != nil {
		t.Fatalf("valid change: %v", err)
	}
	if got := f.store.Load().Models[0].Name; got != "model-b" {
		t.Errorf("after valid change model = %q, want model-b", got)
	}
	if first.Models[0].Name != "model-a" {
		t.Error("the old runtime was modified in place")
	}

	// A broken change keeps the old runtime and names the field.
	writeFile(t, f.cfgPath, strings.Replace(storeConfig("model-c", f.keyPath), "schema: anthropic", "schema: anthropik", 1))
	err := f.next(t)
	if err == nil || !strings.Contains(err.Error(), `backends[0].schema: unknown value "anthropik"`) {
		t.Fatalf("broken change: err = %v, want it to name backends[0].schema", err)
	}
	if got := f.store.Load().Models[0].Name; got != "model-b" {
		t.Errorf("after broken change model = %q, want model-b kept", got)
	}

	// A credential file change is picked up though the config is unchanged;
	// fix the config first so the failed state is left behind.
	writeFile(t, f.cfgPath, storeConfig("model-b", f.keyPath))
	if err := f.next(t); err != nil {
		t.Fatalf("fixed config: %v", err)
	}
	writeFile(t, f.keyPath, "key-2\n")
	if err := f.next(t); err != nil {
		t.Fatalf("credential change: %v", err)
	}
	if got := f.store.Load().Backends["anthropic"].Credential; got != "key-2" {
		t.Errorf("credential = %q, want key-2", got)
	}

	// An emptied credential file fails compile and keeps the old key.
	writeFile(t, f.keyPath, "")
	err = f.next(t)
	if err == nil || !strings.Contains(err.Error(), "backends[0].credential.file:") {
		t.Fatalf("empty credential: err = %v, want it to name backends[0].credential.file", err)
	}
	if got := f.store.Load().Backends["anthropic"].Credential; got != "key-2" {
		t.Errorf("credential = %q, want key-2 kept", got)
	}
	writeFile(t, f.keyPath, "key-3")
	if err := f.next(t); err != nil {
		t.Fatalf("restored credential: %v", err)
	}
	if got := f.store.Load().Backends["anthropic"].Credential; got != "key-3" {
		t.Errorf("credential = %q, want key-3", got)
	}
}

// TestStoreWatchSymlinkSwap mimics a Kubernetes Secret or ConfigMap volume
// update (the kubelet's atomic writer): the visible file is a symlink
// key -> ..data/key, ..data a symlink to a timestamped directory, and an
// update renames a new ..data over the old one and removes the old
// directory. Neither the visible symlink nor its mtime change; the e2e
// test TestKubernetesVolumeUpdates runs the same update under traffic.
func TestStoreWatchSymlinkSwap(t *testing.T) {
	f := newWatchFixture(t)
	vol := filepath.Join(f.dir, "secret")
	version := func(ts, key string) {
		if err := os.MkdirAll(filepath.Join(vol, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(vol, ts, "key"), key)
		if err := os.Symlink(ts, filepath.Join(vol, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(vol, "..data_tmp"), filepath.Join(vol, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_12_07_00_00_01.1", "key-from-v1")
	if err := os.Symlink(filepath.Join("..data", "key"), filepath.Join(vol, "key")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.cfgPath, storeConfig("model-a", filepath.Join(vol, "key")))
	if err := f.next(t); err != nil {
		t.Fatal(err)
	}
	if got := f.store.Load().Backends["anthropic"].Credential; got != "key-from-v1" {
		t.Fatalf("credential = %q, want key-from-v1", got)
	}
	version("..2026_12_07_00_00_02.2", "key-from-v2")
	if err := os.RemoveAll(filepath.Join(vol, "..2026_12_07_00_00_01.1")); err != nil {
		t.Fatal(err)
	}
	if err := f.next(t); err != nil {
		t.Fatal(err)
	}
	if got := f.store.Load().Backends["anthropic"].Credential; got != "key-from-v2" {
		t.Errorf("credential = %q, want key-from-v2", got)
	}
}

func TestStoreWatchDisabled(t *testing.T) {
	s := NewStore(&Runtime{})
	done := make(chan struct{})
	go func() {
		s.Watch(context.Background(), "/does/not/matter", 0, nil, func(error) { t.Error("onReload called") })
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch with interval 0 did not return")
	}
}

func TestStoreWatchStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "llmproc.yaml")
	writeFile(t, path, minimal)
	s := NewStore(mustCompile(t, minimal))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Watch(ctx, path, time.Millisecond, nil, nil)
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

// TestStoreWatchSeesChangeBeforeWatchStarts: a change made after Load but
// before the watcher's first look is still a change.
func TestStoreWatchSeesChangeBeforeWatchStarts(t *testing.T) {
	dir := t.TempDir()
	cfgPath, keyPath := filepath.Join(dir, "llmproc.yaml"), filepath.Join(dir, "key")
	writeFile(t, keyPath, "key-1\n")
	writeFile(t, cfgPath, storeConfig("model-a", keyPath))
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Compile(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(rt)
	writeFile(t, cfgPath, storeConfig("model-b", keyPath)) // before the watcher exists
	var got error = errors.New("no reload")
	w := s.watcher(cfgPath, nil, func(err error) { got = err })
	w.poll()
	if got != nil {
		t.Fatalf("reload: %v", got)
	}
	if name := s.Load().Models[0].Name; name != "model-b" {
		t.Errorf("model %q after reload, want model-b", name)
	}
}
