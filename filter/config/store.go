package config

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// Store holds the current Runtime behind an atomic.Pointer; readers call Load() on every request.
type Store struct {
	cur atomic.Pointer[Runtime]
}

// NewStore returns a Store serving rt.
func NewStore(rt *Runtime) *Store {
	s := &Store{}
	s.cur.Store(rt)
	return s
}

// Load returns the current Runtime. It never blocks and the Runtime returned
// never changes, so a request uses one consistent config from start to end.
func (s *Store) Load() *Runtime { return s.cur.Load() }

// Watch polls the config file and every credential file (content hash, not
// only mtime — Kubernetes ConfigMaps swap symlinks) every interval until ctx
// ends; on a change it re-Loads and re-Compiles; success swaps atomically and
// calls onReload(nil); failure keeps the old Runtime and calls onReload(err).
// interval<=0 returns immediately.
//
// The config file is compared with what Load read, so a change made between
// loading the Runtime and calling Watch is noticed on the first tick;
// credential files are first hashed when Watch starts.
// A failed reload is reported once; Watch tries again when a file changes.
// onReload may be nil and is called from Watch's goroutine.
func (s *Store) Watch(ctx context.Context, path string, interval time.Duration, getenv func(string) string, onReload func(error)) {
	if interval <= 0 {
		return
	}
	w := s.watcher(path, getenv, onReload)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.poll()
		}
	}
}

// watcher is Watch's state, split out so that tests can take the first
// snapshot before they change any file.
type watcher struct {
	store    *Store
	path     string
	getenv   func(string) string
	onReload func(error)
	files    []string          // config file, then credential files
	seen     map[string]digest // what the files held at the last attempt
}

// digest is a file's content hash; a file that cannot be read hashes as its
// error text so that it becoming readable again counts as a change.
type digest struct {
	sum [sha256.Size]byte
	err string
}

func (s *Store) watcher(path string, getenv func(string) string, onReload func(error)) *watcher {
	if onReload == nil {
		onReload = func(error) {}
	}
	w := &watcher{store: s, path: path, getenv: getenv, onReload: onReload}
	var creds []string
	if rt := s.Load(); rt != nil && rt.Source != nil {
		creds = rt.Source.CredentialFiles()
	}
	w.files = append([]string{path}, creds...)
	w.seen = w.hashAll()
	if rt := s.Load(); rt != nil && rt.Source != nil && rt.Source.loaded != nil {
		w.seen[path] = *rt.Source.loaded // a change since Load is a change
	}
	return w
}

func (w *watcher) hashAll() map[string]digest {
	out := make(map[string]digest, len(w.files))
	for _, f := range w.files {
		out[f] = hashFile(f)
	}
	return out
}

func hashFile(path string) digest {
	data, err := os.ReadFile(path)
	if err != nil {
		return digest{err: err.Error()}
	}
	return digest{sum: sha256.Sum256(data)}
}

// poll reloads if any watched file differs from the last attempt.
func (w *watcher) poll() {
	now := w.hashAll()
	changed := false
	for f, d := range now {
		if w.seen[f] != d {
			changed = true
			break
		}
	}
	if !changed {
		return
	}
	// Hash the very bytes parsed, and the credential files before Compile
	// reads them, so a change racing with this reload is seen by the next
	// poll rather than lost.
	data, err := os.ReadFile(w.path)
	if err != nil {
		w.seen = now
		w.onReload(fmt.Errorf("config: %w", err))
		return
	}
	cfg, err := Parse(data)
	if err != nil {
		// Keep watching the old credential files: the new list is unknown.
		now[w.path] = digest{sum: sha256.Sum256(data)}
		w.seen = now
		w.onReload(fmt.Errorf("config %s: %w", w.path, err))
		return
	}
	w.files = append([]string{w.path}, cfg.CredentialFiles()...)
	w.seen = w.hashAll()
	w.seen[w.path] = digest{sum: sha256.Sum256(data)}
	rt, err := Compile(cfg, w.getenv)
	if err != nil {
		w.onReload(fmt.Errorf("config %s: %w", w.path, err))
		return
	}
	w.store.cur.Store(rt)
	w.onReload(nil)
}
