package budget

import (
	"testing"
	"time"
)

func TestWindowBounds(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		w          Window
		t          string
		start, end string
	}{
		{Minute, "2026-03-04T05:06:07.8Z", "2026-03-04T05:06:00Z", "2026-03-04T05:07:00Z"},
		{Minute, "2026-03-04T05:06:00Z", "2026-03-04T05:06:00Z", "2026-03-04T05:07:00Z"},
		{Hour, "2026-03-04T05:59:59.999Z", "2026-03-04T05:00:00Z", "2026-03-04T06:00:00Z"},
		{Day, "2026-12-31T23:59:59Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		// A zone east of UTC: the window is the UTC day, not the local one.
		{Day, "2026-03-04T01:00:00+03:00", "2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z"},
		{Month, "2026-02-15T12:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{Month, "2028-02-29T23:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		{Month, "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		start, end := tt.w.Bounds(at(tt.t))
		if !start.Equal(at(tt.start)) || !end.Equal(at(tt.end)) || start.Location() != time.UTC {
			t.Errorf("%v.Bounds(%s) = %s, %s; want %s, %s", tt.w, tt.t, start, end, tt.start, tt.end)
		}
	}
}

func TestParse(t *testing.T) {
	for s, w := range map[string]Window{"minute": Minute, "hour": Hour, "day": Day, "month": Month} {
		if got, err := ParseWindow(s); err != nil || got != w {
			t.Errorf("ParseWindow(%q) = %v, %v", s, got, err)
		}
	}
	for s, sc := range map[string]Scope{"global": Global, "tenant": Tenant, "tenant_model": TenantModel} {
		if got, err := ParseScope(s); err != nil || got != sc {
			t.Errorf("ParseScope(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseWindow("week"); err == nil {
		t.Error("ParseWindow(week): no error")
	}
	if _, err := ParseScope("team"); err == nil {
		t.Error("ParseScope(team): no error")
	}
}

func TestKey(t *testing.T) {
	start := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC) // 1767312000
	tests := []struct {
		kind, name    string
		scope         Scope
		tenant, model string
		want          string
	}{
		{"b", "all", Global, "acme", "gpt", "b:all:1767312000"},
		{"b", "team", Tenant, "acme", "gpt", `b:team:"acme":1767312000`},
		{"b", "tm", TenantModel, "acme", "gpt", `b:tm:"acme":"gpt":1767312000`},
		{"r", "rl", Tenant, "", "gpt", `r:rl:"":1767312000`},
		// A tenant holding the separator cannot forge another tenant×model key.
		{"b", "tm", TenantModel, `a":"b`, "c", `b:tm:"a\":\"b":"c":1767312000`},
		{"b", "tm", TenantModel, "a", `b":"c`, `b:tm:"a":"b\":\"c":1767312000`},
	}
	for _, tt := range tests {
		if got := key(tt.kind, tt.name, tt.scope, tt.tenant, tt.model, start); got != tt.want {
			t.Errorf("key(%q, %q, %v, %q, %q) = %s, want %s", tt.kind, tt.name, tt.scope, tt.tenant, tt.model, got, tt.want)
		}
	}
}
