package identity

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func TestCreateAuthenticateRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	exp := t0.Add(time.Hour)
	key, k, err := Create(path, Key{Tenant: "a", Team: "ml", Expires: &exp}, t0, bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, Prefix+k.ID+"_") || len(key) != len(Prefix)+12+1+64 {
		t.Fatalf("key %q, id %q", key, k.ID)
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte(key[len(Prefix)+13:])) {
		t.Fatal("the keys file holds the secret")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	other, _, err := Create(path, Key{Tenant: "b"}, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	wrongSecret := key[:len(key)-1] + "0"
	if key[len(key)-1] == '0' {
		wrongSecret = key[:len(key)-1] + "1"
	}
	for _, tc := range []struct {
		name, key string
		now       time.Time
		result    string
		tenant    string
	}{
		{"valid", key, t0, ResultOK, "a"},
		{"other tenant", other, t0, ResultOK, "b"},
		{"missing", "", t0, ResultMissing, ""},
		{"provider key", "sk-proj-abc", t0, ResultMalformed, ""},
		{"short secret", key[:len(key)-2], t0, ResultMalformed, ""},
		{"wrong secret", wrongSecret, t0, ResultUnknown, ""},
		{"unknown id", Prefix + "0123456789ab_" + strings.Repeat("0", 64), t0, ResultUnknown, ""},
		{"expired", key, exp, ResultExpired, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, res := keys.Authenticate(tc.key, tc.now)
			if res != tc.result {
				t.Fatalf("result %q, want %q", res, tc.result)
			}
			if (got == nil) != (tc.tenant == "") || (got != nil && got.Tenant != tc.tenant) {
				t.Fatalf("key %+v, want tenant %q", got, tc.tenant)
			}
		})
	}
	if err := Revoke(path, k.ID, t0); err != nil {
		t.Fatal(err)
	}
	if keys, err = Load(path); err != nil {
		t.Fatal(err)
	}
	if _, id, res := keys.Authenticate(key, t0); res != ResultRevoked || id != k.ID {
		t.Fatalf("after revoke: %q %q", id, res)
	}
	if _, _, res := keys.Authenticate(other, t0); res != ResultOK {
		t.Fatalf("the other key: %q", res)
	}
	if err := Revoke(path, "0123456789ab", t0); err == nil {
		t.Fatal("revoking an unknown id succeeded")
	}
	list, err := List(path)
	if err != nil || len(list) != 2 || list[0].Revoked == nil || list[1].Revoked != nil {
		t.Fatalf("list %+v %v", list, err)
	}
}

func TestParseErrors(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, tc := range []struct{ name, file, want string }{
		{"not json", `keys: []`, "keys file:"},
		{"unknown field", `{"keys":[],"key":1}`, "unknown field"},
		{"bad id", `{"keys":[{"id":"xyz","sha256":"` + sum + `","tenant":"a"}]}`, "keys[0].id: want 12 hex digits"},
		{"duplicate id", `{"keys":[{"id":"0123456789ab","sha256":"` + sum + `","tenant":"a"},{"id":"0123456789ab","sha256":"` + sum + `","tenant":"a"}]}`, "keys[1].id: duplicate"},
		{"bad hash", `{"keys":[{"id":"0123456789ab","sha256":"00","tenant":"a"}]}`, "keys[0].sha256"},
		{"no tenant", `{"keys":[{"id":"0123456789ab","sha256":"` + sum + `"}]}`, "keys[0].tenant: is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCredential(t *testing.T) {
	for _, tc := range []struct{ auth, xkey, goog, want string }{
		{"Bearer llmp_x", "", "", "llmp_x"},
		{"bearer  llmp_x ", "other", "", "llmp_x"},
		{"Basic abc", "llmp_y", "", "llmp_y"},
		{"", "", "llmp_z", "llmp_z"},
		{"", "", "", ""},
	} {
		if got := Credential(tc.auth, tc.xkey, tc.goog); got != tc.want {
			t.Errorf("Credential(%q, %q, %q) = %q, want %q", tc.auth, tc.xkey, tc.goog, got, tc.want)
		}
	}
}

func FuzzAuthenticate(f *testing.F) {
	keys, err := Parse([]byte(`{"keys":[{"id":"0123456789ab","sha256":"` + strings.Repeat("ab", 32) + `","tenant":"a"}]}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("llmp_0123456789ab_" + strings.Repeat("0", 64))
	f.Add("llmp__")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, s string) {
		k, _, res := keys.Authenticate(s, t0)
		if k != nil || res == ResultOK {
			t.Fatalf("%q authenticated", s)
		}
	})
}

// FuzzParse: any keys file either parses into keys that authenticate only
// their own key, or is refused; never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"keys":[{"id":"0123456789ab","sha256":"` + strings.Repeat("ab", 32) + `","tenant":"a"}]}`))
	f.Add([]byte(`{"keys":[{"id":"0123456789ab","sha256":"00","tenant":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := Parse(data)
		if err != nil {
			return
		}
		if _, _, res := k.Authenticate(Prefix+"0123456789ab_"+strings.Repeat("0", 64), t0); res == ResultOK {
			t.Fatal("a key whose hash is not in the file authenticated")
		}
	})
}

// BenchmarkAuthenticate is one request's key check in a file of 10,000 keys.
func BenchmarkAuthenticate(b *testing.B) {
	f := file{}
	var key string
	for i := range 10000 {
		k, id, err := Generate(bytes.NewReader(bytes.Repeat([]byte{byte(i), byte(i >> 8), 1, 2, 3, 4}, 8)))
		if err != nil {
			b.Fatal(err)
		}
		f.Keys = append(f.Keys, Key{ID: id, SHA256: Hash(k), Tenant: "t"})
		key = k
	}
	data, _ := json.Marshal(f)
	keys, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, res := keys.Authenticate(key, t0); res != ResultOK {
			b.Fatal(res)
		}
	}
}
