package identity

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A key record's access lists and limits are validated with messages that
// name the field; a bad one is never written by Create (the file would no
// longer load).
func TestLimitErrors(t *testing.T) {
	entry := func(extra string) string {
		return `{"keys":[{"id":"0123456789ab","sha256":"` + strings.Repeat("ab", 32) + `","tenant":"a",` + extra + `}]}`
	}
	for _, tc := range []struct{ name, extra, want string }{
		{"empty model", `"models":["gpt-*",""]`, "keys[0].models[1]: is empty"},
		{"empty tool", `"tools":[""]`, "keys[0].tools[0]: is empty"},
		{"unknown api", `"apis":["chat","images"]`, `keys[0].apis[1]: unknown client API "images"`},
		{"negative size", `"max_request_bytes":-1`, "keys[0].max_request_bytes: must not be negative"},
		{"bad window", `"budget":{"window":"week","limit_usd":"5"}`, `keys[0].budget.window: want one of [minute hour day month], got "week"`},
		{"bad amount", `"budget":{"limit_usd":"5$"}`, "keys[0].budget.limit_usd: want a non-negative USD amount"},
		{"negative tokens", `"budget":{"limit_tokens":-5}`, "keys[0].budget.limit_tokens: must not be negative"},
		{"empty budget", `"budget":{"window":"day"}`, "keys[0].budget: needs limit_usd or limit_tokens"},
		{"negative tpm", `"rate_limit":{"tpm":-1,"rpm":3}`, "keys[0].rate_limit.tpm: must not be negative"},
		{"empty rate limit", `"rate_limit":{}`, "keys[0].rate_limit: needs tpm or rpm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(entry(tc.extra)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, _, err := Create(path, Key{Tenant: "a", Budget: &Budget{Window: "week", LimitUSD: "1"}}, time.Now(), nil); err == nil ||
		!strings.Contains(err.Error(), "key.budget.window") {
		t.Fatalf("Create with a bad window: %v", err)
	}
	if list, err := List(path); err == nil && len(list) > 0 {
		t.Fatalf("a bad record was written: %+v", list)
	}
}

// The budget's amount is parsed exactly when the record is indexed, and
// reaches the key a lookup returns; the file keeps the text.
func TestLimitsReachTheLookup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	key, _, err := Create(path, Key{Tenant: "a", APIs: []string{"chat"}, MaxRequestBytes: 100,
		Budget: &Budget{LimitUSD: "0.25"}, RateLimit: &RateLimit{TPM: 1000}}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, res := keys.Authenticate(key, now)
	if res != ResultOK {
		t.Fatal(res)
	}
	if k.Budget.LimitPico() != 250_000_000_000 || k.Budget.WindowName() != "month" || k.RateLimit.TPM != 1000 || k.APIs[0] != "chat" {
		t.Fatalf("key %+v budget %+v", k, k.Budget)
	}
	for _, tc := range []struct {
		tenant, want int64
		byKey        bool
	}{{1000, 100, true}, {50, 50, false}, {100, 100, false}} {
		if got, byKey := k.MaxBytes(tc.tenant); got != tc.want || byKey != tc.byKey {
			t.Errorf("MaxBytes(%d) = %d, %v; want %d, %v", tc.tenant, got, byKey, tc.want, tc.byKey)
		}
	}
	var none *Key
	if got, byKey := none.MaxBytes(7); got != 7 || byKey {
		t.Errorf("nil key: MaxBytes(7) = %d, %v", got, byKey)
	}
}

// Update changes a record's lists and limits, never what identifies the
// key (id, hash, tenant, times): the key still authenticates, as the same
// tenant, with the new limits; an invalid result is not written.
func TestUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	key, k, err := Create(path, Key{Tenant: "a", Models: []string{"gpt-*"}}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Update(path, k.ID, func(k *Key) {
		k.Tenant, k.SHA256, k.Models, k.Budget = "b", Hash("other"), nil, &Budget{LimitUSD: "2", Window: "day"}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := Update(path, k.ID, func(k *Key) { k.Budget.Window = "week" }); err == nil || !strings.Contains(err.Error(), "key.budget.window") {
		t.Fatalf("an invalid update: %v", err)
	}
	keys, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got, _, res := keys.Authenticate(key, now)
	if res != ResultOK || got.Tenant != "a" || got.Models != nil || got.Budget.WindowName() != "day" || got.Budget.LimitPico() != 2_000_000_000_000 {
		t.Fatalf("after update: %s %+v", res, got)
	}
	if _, err := Update(path, "0123456789ab", func(*Key) {}); err == nil {
		t.Fatal("updating an unknown id succeeded")
	}
}
