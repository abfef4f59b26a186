package feedback

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// full is a record with every field set.
func full() Record {
	return Record{
		Attempts: 2, RequestID: "req-1", Tenant: "acme", Model: "gpt-4o-mini",
		RequestedModel: "auto", Backend: "openai", Pool: "cheap", Route: "by-model",
		Class: "code", Client: "chat", Cache: "miss", Status: 200,
		AttemptBackends: []string{"azure", "openai"},
		TraceID:         "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
		Time: time.Date(2026, 12, 8, 2, 41, 16, 123456789, time.UTC),
	}
}

// TestEncodeIsJSON: Encode writes exactly what encoding/json writes, for
// records that take the appending path and those that fall back to it.
func TestEncodeIsJSON(t *testing.T) {
	zone := time.FixedZone("x", -(5*3600 + 30*60))
	cases := map[string]Record{
		"full":           full(),
		"zero":           {},
		"cache hit":      {RequestID: "r", Tenant: "t", Model: "m", Pool: "p", Route: "r", Client: "chat", Cache: "hit", Time: time.Unix(1, 0).UTC()},
		"empty backends": func() Record { r := full(); r.AttemptBackends = []string{}; return r }(),
		"one backend":    func() Record { r := full(); r.AttemptBackends = []string{"a"}; return r }(),
		"negative":       func() Record { r := full(); r.Attempts, r.Status = -1, -500; return r }(),
		"zone":           func() Record { r := full(); r.Time = r.Time.In(zone); return r }(),
		"no nanos":       func() Record { r := full(); r.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC); return r }(),
		"local time":     func() Record { r := full(); r.Time = time.Now(); return r }(),
		"html":           func() Record { r := full(); r.Tenant = "<a&b>"; return r }(),
		"quote":          func() Record { r := full(); r.RequestID = `a"b\c`; return r }(),
		"control":        func() Record { r := full(); r.Route = "a\nb\x00\x7f"; return r }(),
		"unicode":        func() Record { r := full(); r.Model = "modèle\u2028"; return r }(),
		"invalid utf8":   func() Record { r := full(); r.Class = "\xff\xfe"; return r }(),
		"odd backend":    func() Record { r := full(); r.AttemptBackends = []string{"a", "<b>"}; return r }(),
		"year 10000":     func() Record { r := full(); r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC); return r }(),
		"year -1":        func() Record { r := full(); r.Time = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC); return r }(),
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			want, _ := json.Marshal(r)
			if got := r.Encode(); string(got) != string(want) {
				t.Fatalf("Encode:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func FuzzEncodeIsJSON(f *testing.F) {
	f.Add(2, "req-1", "acme", "gpt", "openai", "code", 200, "a", int64(1765161676123456789))
	f.Add(0, "<", "\xff", "\u2028", "", "\n", 0, "\"", int64(-62135596800000000))
	f.Fuzz(func(t *testing.T, attempts int, id, tenant, model, backend, class string, status int, ab string, nanos int64) {
		r := Record{Attempts: attempts, RequestID: id, Tenant: tenant, Model: model, RequestedModel: model,
			Backend: backend, Pool: backend, Route: class, Class: class, Client: id, Cache: tenant,
			Status: status, TraceID: ab, SpanID: id, Time: time.Unix(0, nanos).UTC()}
		if ab != "" {
			r.AttemptBackends = []string{ab, backend}
		}
		want, _ := json.Marshal(r)
		if got := r.Encode(); string(got) != string(want) {
			t.Fatalf("Encode:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	r := full()
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Encode()
	}
}

// BenchmarkEncodeJSON is the encoding/json encoding Encode replaces.
func BenchmarkEncodeJSON(b *testing.B) {
	r := full()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = json.Marshal(r)
	}
}

// TestKeys: the tier keys are the prefix and the hex SHA-256 of tenant, a
// zero byte and id — the names records are stored under, also in Redis
// across replicas and versions.
func TestKeys(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, c := range [][2]string{{"acme", "req-1"}, {"", ""}, {long, long}, {"a\x00b", "c"}} {
		h := sha256.Sum256([]byte(c[0] + "\x00" + c[1]))
		want := hex.EncodeToString(h[:])
		if got := recordKey(c[0], c[1]); got != "feedback:r:"+want {
			t.Errorf("recordKey(%q, %q) = %s, want feedback:r:%s", c[0], c[1], got, want)
		}
		if got := claimKey(c[0], c[1]); got != "feedback:c:"+want {
			t.Errorf("claimKey(%q, %q) = %s, want feedback:c:%s", c[0], c[1], got, want)
		}
	}
}

func BenchmarkKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = recordKey("acme", "5f0c6a2e-8d7b-4e1a-9c3f-2b6d7e8f9a0b")
	}
}
