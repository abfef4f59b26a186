package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The real clients the tests drive (Claude Code, Codex CLI, Gemini CLI and
// the official SDKs) are npm packages pinned by e2e/clients/package.json and
// its lockfile, installed into .cache/clients (outside the go tool's view);
// `make clients` installs them, and the first test that needs one installs
// them when they are missing. Node scripts that drive an SDK live beside the
// package.json, in e2e/clients/*.mjs. Without npm a real-client test is
// skipped, except under CI=true, where it fails.

var clientsInstall struct {
	once sync.Once
	err  error
	out  []byte
}

// clientsPrefix returns the npm prefix with the pinned clients installed.
func clientsPrefix(t *testing.T) string {
	t.Helper()
	prefix, err := installedClients()
	if errors.Is(err, exec.ErrNotFound) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the real clients are not installed in %s and npm is missing (run make clients)", prefix)
		}
		t.Skip("the real clients are not installed and npm is missing (make clients installs them)")
	}
	if err != nil {
		t.Fatalf("installing the real clients: %v\n%s", err, clientsInstall.out)
	}
	return prefix
}

// installedClients installs the pinned clients once per test binary when
// they are missing or stale. TestMain calls it before any test runs, so no
// test's deadline counts an install's minutes.
func installedClients() (string, error) {
	prefix, err := filepath.Abs(filepath.Join("..", ".cache", "clients"))
	if err != nil {
		return "", err
	}
	clientsInstall.once.Do(func() {
		lock, err := os.ReadFile(filepath.Join("clients", "package-lock.json"))
		if err != nil {
			clientsInstall.err = err
			return
		}
		marker := filepath.Join(prefix, "node_modules", ".lock-installed")
		if installed, _ := os.ReadFile(marker); bytes.Equal(lock, installed) {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			clientsInstall.err = err
			return
		}
		clientsInstall.err = installClients(npm, prefix, lock, marker)
	})
	return prefix, clientsInstall.err
}

func installClients(npm, prefix string, lock []byte, marker string) error {
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return err
	}
	pkg, err := os.ReadFile(filepath.Join("clients", "package.json"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(prefix, "package.json"), pkg, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(prefix, "package-lock.json"), lock, 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--prefix", prefix, "--no-audit", "--no-fund")
	if clientsInstall.out, err = cmd.CombinedOutput(); err != nil {
		return err
	}
	return os.WriteFile(marker, lock, 0o644)
}

// clientBin returns the path of a real client's binary (claude, codex,
// gemini), installing the clients when needed.
func clientBin(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(clientsPrefix(t), "node_modules", ".bin", name)
}

// nodeScript returns a command that runs e2e/clients/<name>, an ES module
// that imports the SDKs. It is copied into the npm prefix first, since node
// resolves a module's imports from where the module lives.
func nodeScript(t *testing.T, ctx context.Context, name string, args ...string) *exec.Cmd {
	t.Helper()
	prefix := clientsPrefix(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is missing although npm is installed")
	}
	src, err := os.ReadFile(filepath.Join("clients", name))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(prefix, name)
	if err := os.WriteFile(dst, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, node, append([]string{dst}, args...)...)
	cmd.Dir = t.TempDir()
	return cmd
}
