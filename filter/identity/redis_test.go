package identity

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/filter/redisconn"
)

func TestRedisStore(t *testing.T) {
	srv := redisserver.Start(t)
	c := redisconn.New(redisconn.Options{Addr: srv.Addr(), Timeout: time.Second, PoolSize: 2})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	store := NewRedisStore(c, "test:")
	ref := NewRefresher(store, nil)
	if ref.Keys() != nil {
		t.Fatal("keys before the first refresh")
	}
	if err := ref.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ref.Keys() == nil || ref.Keys().Len() != 0 {
		t.Fatalf("an empty store: %v", ref.Keys())
	}

	key, k, err := store.Create(ctx, Key{Tenant: "a", Team: "ml"}, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Create(ctx, Key{}, t0, nil); err == nil || !strings.Contains(err.Error(), "tenant") {
		t.Fatalf("a key without tenant: %v", err)
	}
	// Only the hash is stored.
	raw, _ := c.HGet(ctx, "test:keys", k.ID).Result()
	if strings.Contains(raw, key[len(Prefix)+13:]) || !strings.Contains(raw, Hash(key)) {
		t.Fatalf("stored %s", raw)
	}
	if _, _, res := ref.Keys().Authenticate(key, t0); res != ResultUnknown {
		t.Fatalf("before the refresh: %s", res)
	}
	if err := ref.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, res := ref.Keys().Authenticate(key, t0); res != ResultOK || got.Tenant != "a" || got.Team != "ml" {
		t.Fatalf("after the refresh: %v %s", got, res)
	}

	// The version gates the re-read: an entry written without bumping it is
	// not read, one written with it is.
	sneaky, sk, _ := newKey(Key{Tenant: "b"}, t0, nil)
	c.HSet(ctx, "test:keys", sk.ID, mustJSON(t, sk))
	_ = ref.Refresh(ctx)
	if _, _, res := ref.Keys().Authenticate(sneaky, t0); res != ResultUnknown {
		t.Fatalf("an unversioned write was read: %s", res)
	}

	if err := store.Revoke(ctx, k.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := store.Revoke(ctx, k.ID, t0.Add(time.Hour)); err != nil { // the first revocation stands
		t.Fatal(err)
	}
	if err := store.Revoke(ctx, "0123456789ab", t0); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Fatalf("revoking an unknown id: %v", err)
	}
	list, err := store.List(ctx)
	if err != nil || len(list) != 2 || list[0].Revoked == nil && list[1].Revoked == nil {
		t.Fatalf("list %+v, %v", list, err)
	}
	if err := ref.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, res := ref.Keys().Authenticate(key, t0.Add(2*time.Minute)); res != ResultRevoked {
		t.Fatalf("after the revocation: %s", res)
	}
	if _, _, res := ref.Keys().Authenticate(sneaky, t0); res != ResultOK { // read with the versioned write
		t.Fatalf("the other entry: %s", res)
	}

	// A bad entry is left out; the others still work.
	c.HSet(ctx, "test:keys", "ffffffffffff", "{")
	c.Incr(ctx, "test:keys:version")
	if err := ref.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, res := ref.Keys().Authenticate(sneaky, t0); res != ResultOK {
		t.Fatalf("a bad entry locked the others out: %s", res)
	}

	// Redis down: the copy last read stays, and the error is returned.
	srv.Kill()
	if err := ref.Refresh(ctx); err == nil {
		t.Fatal("no error with Redis down")
	}
	if _, _, res := ref.Keys().Authenticate(sneaky, t0); res != ResultOK {
		t.Fatalf("with Redis down: %s", res)
	}
}

func mustJSON(t *testing.T, k Key) string {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
