package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/filter/identity"
)

func TestKeysCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	run1 := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"keys"}, args...), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	out, errOut, err := run1("create", "-file", file, "-tenant", "a", "-team", "ml", "-models", "gpt-*,claude-*", "-expires", "24h")
	if err != nil {
		t.Fatal(err, errOut)
	}
	key := strings.TrimSpace(out)
	id, ok := identity.Split(key)
	if !ok || !strings.Contains(errOut, id) {
		t.Fatalf("create printed %q / %q", out, errOut)
	}
	data, _ := os.ReadFile(file)
	if bytes.Contains(data, []byte(key)) || !bytes.Contains(data, []byte(identity.Hash(key))) {
		t.Fatalf("the file must hold the hash, not the key:\n%s", data)
	}
	out, _, err = run1("list", "-file", file)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "gpt-*,claude-*") || !strings.Contains(out, "active") || strings.Contains(out, key) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if _, _, err := run1("revoke", "-file", file, id); err != nil {
		t.Fatal(err)
	}
	if out, _, _ = run1("list", "-file", file); !strings.Contains(out, "revoked") {
		t.Fatalf("list after revoke:\n%s", out)
	}
	for _, args := range [][]string{
		{"create", "-file", file},                 // no tenant
		{"create", "-tenant", "a"},                // no file
		{"revoke", "-file", file},                 // no id
		{"revoke", "-file", file, "0123456789ab"}, // unknown id
		{"rotate", "-file", file},
	} {
		if _, _, err := run1(args...); err == nil {
			t.Errorf("keys %q succeeded", args)
		}
	}
}

func TestValidateWarnsClientSettableTenant(t *testing.T) {
	dir := t.TempDir()
	base := "backends: [{name: p, schema: openai, url: \"http://127.0.0.1:1\"}]\nmodels: [{name: m, pool: c}]\npools: [{name: c, backends: [{backend: p}]}]\nrouting: {tenant_header: x-tenant}\n"
	for _, tc := range []struct {
		name, extra string
		warn        bool
	}{
		{"client-settable tenant allowed", "identity: {allow_client_tenant: true}\n", true},
		{"trusted setter named", "identity: {source: header, trusted_setter: istio-ingress}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(path, []byte(base+tc.extra), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			if err := validate(path, &stdout); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(stdout.String(), `warning: identity: the tenant header "x-tenant" is client-settable`); got != tc.warn {
				t.Fatalf("warning %v, want %v:\n%s", got, tc.warn, stdout.String())
			}
		})
	}
	// Without a trusted setter, or the explicit allowance, the config is refused.
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := validate(path, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "identity.trusted_setter: is required") {
		t.Fatalf("a client-settable tenant header: %v", err)
	}
}

func TestKeysCommandRedis(t *testing.T) {
	srv := redisserver.Start(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "llmproc.yaml")
	cfg := "identity: {source: client_keys, redis: {addr: \"" + srv.Addr() + "\", prefix: \"t:\"}}\n" +
		"backends: [{name: p, schema: openai, url: \"http://127.0.0.1:1\"}]\nmodels: [{name: m, pool: c}]\npools: [{name: c, backends: [{backend: p}]}]\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	run1 := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"keys"}, args...), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	out, errOut, err := run1("create", "-config", cfgPath, "-tenant", "a")
	if err != nil {
		t.Fatal(err, errOut)
	}
	key := strings.TrimSpace(out)
	id, ok := identity.Split(key)
	if !ok || !strings.Contains(errOut, "redis "+srv.Addr()) {
		t.Fatalf("create printed %q / %q", out, errOut)
	}
	// -redis with the same prefix sees the same store.
	out, _, err = run1("list", "-redis", srv.Addr(), "-redis-prefix", "t:")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "active") || strings.Contains(out, key) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if _, _, err := run1("revoke", "-config", cfgPath, id); err != nil {
		t.Fatal(err)
	}
	if out, _, _ = run1("list", "-config", cfgPath); !strings.Contains(out, "revoked") {
		t.Fatalf("list after revoke:\n%s", out)
	}
	for _, args := range [][]string{
		{"list", "-redis", srv.Addr(), "-file", "x"}, // two stores
		{"list"}, // none
		{"revoke", "-config", cfgPath, "0123456789ab"},
	} {
		if _, _, err := run1(args...); err == nil {
			t.Errorf("keys %q succeeded", args)
		}
	}
}

// A key's own limits, from the flags into its record: `list` shows them, a
// bad one is refused before anything is written.
func TestKeysCommandLimits(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	run1 := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"keys"}, args...), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	if _, errOut, err := run1("create", "-file", file, "-tenant", "a", "-budget-usd", "5", "-budget-window", "week"); err == nil ||
		!strings.Contains(errOut+err.Error(), "budget.window") {
		t.Fatalf("a bad window: %v %s", err, errOut)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a refused key was written")
	}
	out, errOut, err := run1("create", "-file", file, "-tenant", "a", "-models", "gpt-4o*", "-apis", "chat,embeddings", "-tools", "get_*",
		"-max-request-bytes", "4096", "-budget-usd", "5", "-budget-window", "day", "-tpm", "10000", "-rpm", "60")
	if err != nil {
		t.Fatal(err, errOut)
	}
	list, err := identity.List(file)
	if err != nil || len(list) != 1 {
		t.Fatal(err, list)
	}
	k := list[0]
	if k.Budget == nil || k.Budget.LimitUSD != "5" || k.Budget.Window != "day" || k.RateLimit == nil || k.RateLimit.TPM != 10000 || k.RateLimit.RPM != 60 ||
		strings.Join(k.APIs, ",") != "chat,embeddings" || k.Tools[0] != "get_*" || k.MaxRequestBytes != 4096 || k.Models[0] != "gpt-4o*" {
		t.Fatalf("record %+v (budget %+v, rate limit %+v)", k, k.Budget, k.RateLimit)
	}
	if strings.Contains(out, "$") {
		t.Fatalf("create printed more than the key: %q", out)
	}
	out, _, err = run1("list", "-file", file)
	if err != nil || !strings.Contains(out, "LIMITS") || !strings.Contains(out, "$5/day 10000 tpm 60 rpm apis=chat+embeddings tools=get_* max 4096B") {
		t.Fatalf("list: %v\n%s", err, out)
	}
}

// `keys update` changes only the flags given, ” removes a list or limit,
// a bad value is refused and the record kept; file and Redis alike.
func TestKeysCommandUpdate(t *testing.T) {
	srv := redisserver.Start(t)
	for _, store := range [][]string{{"-file", filepath.Join(t.TempDir(), "keys.json")}, {"-redis", srv.Addr(), "-redis-prefix", "upd:"}} {
		run1 := func(args ...string) (string, string, error) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append(append([]string{"keys", args[0]}, store...), args[1:]...), &stdout, &stderr)
			return stdout.String(), stderr.String(), err
		}
		out, errOut, err := run1("create", "-tenant", "a", "-models", "gpt-*", "-budget-usd", "5", "-budget-window", "day", "-rpm", "60")
		if err != nil {
			t.Fatal(err, errOut)
		}
		key := strings.TrimSpace(out)
		id, _ := identity.Split(key)
		if _, errOut, err := run1("update", "-budget-usd", "7.5", "-tpm", "1000", "-apis", "chat", id); err != nil {
			t.Fatal(store, err, errOut)
		}
		out, _, _ = run1("list")
		if !strings.Contains(out, "gpt-*") || !strings.Contains(out, "$7.5/day 1000 tpm 60 rpm apis=chat") || !strings.Contains(out, "active") {
			t.Fatalf("%v: after update:\n%s", store, out)
		}
		if _, errOut, err := run1("update", "-budget-window", "week", id); err == nil || !strings.Contains(errOut+err.Error(), "budget.window") {
			t.Fatalf("%v: a bad window: %v %s", store, err, errOut)
		}
		if _, _, err := run1("update", "-models", "", "-budget-usd", "", "-rpm", "0", "-tpm", "0", id); err != nil {
			t.Fatal(store, err)
		}
		out, _, _ = run1("list")
		if strings.Contains(out, "gpt-*") || strings.Contains(out, "$") || strings.Contains(out, "rpm") || !strings.Contains(out, "apis=chat") {
			t.Fatalf("%v: after removing:\n%s", store, out)
		}
		if _, _, err := run1("update", "-rpm", "5", "0123456789ab"); err == nil {
			t.Fatalf("%v: updating an unknown id succeeded", store)
		}
	}
}
