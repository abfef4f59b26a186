package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/stack"
)

// kubeVolume lays out a directory the way the kubelet's atomic writer
// (pkg/volume/util/atomic_writer.go) keeps a Secret or ConfigMap volume:
// the files live in a timestamped directory ..<ts>, the symlink ..data
// points at it, and each visible name is a symlink <name> -> ..data/<name>.
// An update writes a new ..<ts>, points a new symlink ..data_tmp at it,
// renames ..data_tmp over ..data (one atomic step: a reader sees the old
// set or the new set, never a mix) and removes the old directory. Neither
// the visible symlink nor its own mtime change.
type kubeVolume struct {
	t   *testing.T
	dir string
	n   int
	cur string // the current ..<ts> directory's name
}

func newKubeVolume(t *testing.T, files map[string]string) *kubeVolume {
	v := &kubeVolume{t: t, dir: t.TempDir()}
	v.update(files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// path is the visible file name, as a pod mounts it.
func (v *kubeVolume) path(name string) string { return filepath.Join(v.dir, name) }

// update swaps in a new version of every file.
func (v *kubeVolume) update(files map[string]string) {
	v.t.Helper()
	v.n++
	ts := fmt.Sprintf("..2026_12_07_00_00_%02d.%09d", v.n, v.n)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		v.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(v.dir, ts, name), []byte(content), 0o644); err != nil {
			v.t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if v.cur != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.cur)); err != nil {
			v.t.Fatal(err)
		}
	}
	v.cur = ts
}

const volumeConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s, reload_interval: 100ms}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {file: "%s"}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}%s
pools:
  - {name: cheap, backends: [{backend: primary}]}
`

// TestKubernetesVolumeUpdates: the provider key in a Secret volume and the
// config in a ConfigMap volume are both updated the kubelet's way while
// requests keep flowing, one after another, with no restart. Every request
// succeeds; once a request carries the new key no later one carries the
// old; and the new config's model is served. The provider accepts both keys,
// as during a rotation. The time from each swap to its first use is logged:
// the bound is limits.reload_interval (100 ms here) plus one request.
func TestKubernetesVolumeUpdates(t *testing.T) {
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	var mu sync.Mutex
	var keys []string // the key each request reached the provider with
	provider.Script(func(r fakeopenai.Request) fakeopenai.Behaviour {
		key := strings.TrimPrefix(r.Header.Get("authorization"), "Bearer ")
		mu.Lock()
		keys = append(keys, key)
		mu.Unlock()
		if key != "sk-old" && key != "sk-new" {
			return fakeopenai.Behaviour{Status: 401, ErrorMessage: "bad key " + key}
		}
		return fakeopenai.Behaviour{}
	})
	secret := newKubeVolume(t, map[string]string{"api-key": "sk-old\n"})
	cfg := func(more string) map[string]string {
		return map[string]string{"llmproc.yaml": fmt.Sprintf(volumeConfig, provider.URL(), secret.path("api-key"), more)}
	}
	configMap := newKubeVolume(t, cfg(""))
	var log, accessLog syncBuffer
	st, err := stack.Start(context.Background(), stack.Options{
		ConfigPath: configMap.path("llmproc.yaml"), EnvoyBin: os.Getenv("ENVOY_BIN"), LLMProcLog: &log, AccessLog: &accessLog,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("stack close: %v", err)
		}
		if t.Failed() {
			t.Logf("llmproc log:\n%s\naccess log:\n%s", log.String(), accessLog.String())
		}
	})
	e := &env{Stack: st}
	ask := func(model string) result {
		t.Helper()
		return e.post(t, chat(model, false, ""))
	}
	lastKey := func() string {
		mu.Lock()
		defer mu.Unlock()
		return keys[len(keys)-1]
	}
	if r := ask("gpt-4o-mini"); r.status != 200 || lastKey() != "sk-old" {
		t.Fatalf("before any update: %d %s, key %q", r.status, r.body, lastKey())
	}

	// The Secret: requests keep going until the new key is used.
	secret.update(map[string]string{"api-key": "sk-new\n"})
	swapped := time.Now()
	deadline := swapped.Add(30 * time.Second) // a hang guard, not the bound
	for n := 0; lastKey() != "sk-new"; n++ {
		if r := ask("gpt-4o-mini"); r.status != 200 {
			t.Fatalf("request %d after the Secret update: %d %s", n, r.status, r.body)
		}
		if time.Now().After(deadline) {
			t.Fatal("the new key was never used")
		}
	}
	t.Logf("Secret update: the new key was first used %v after the swap", time.Since(swapped).Round(time.Millisecond))
	for range 5 {
		if r := ask("gpt-4o-mini"); r.status != 200 || lastKey() != "sk-new" {
			t.Fatalf("after the new key was used: %d %s, key %q", r.status, r.body, lastKey())
		}
	}

	// The ConfigMap: a new model is served once the config is re-read; the
	// old one is served before, meanwhile and after.
	configMap.update(cfg("\n  - {name: gpt-4o, pool: cheap, price: {input: 2.5, output: 10}}"))
	swapped = time.Now()
	deadline = swapped.Add(30 * time.Second)
	for n := 0; ; n++ {
		r := ask("gpt-4o")
		if r.status == 200 {
			break
		}
		wantOpenAIError(t, r, 404, "model_not_found")
		if r := ask("gpt-4o-mini"); r.status != 200 {
			t.Fatalf("request %d after the ConfigMap update, on the old model: %d %s", n, r.status, r.body)
		}
		if time.Now().After(deadline) {
			t.Fatal("the new config was never loaded")
		}
	}
	t.Logf("ConfigMap update: the new config was first used %v after the swap", time.Since(swapped).Round(time.Millisecond))
	if got := lastKey(); got != "sk-new" {
		t.Errorf("after the config reload the key is %q, want sk-new", got)
	}
	mu.Lock()
	defer mu.Unlock()
	seenNew := false
	for i, k := range keys {
		seenNew = seenNew || k == "sk-new"
		if seenNew && k != "sk-new" {
			t.Errorf("request %d used %q after the new key had been used", i, k)
		}
	}
}
