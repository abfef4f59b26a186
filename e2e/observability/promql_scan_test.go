package observability

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSelectors(t *testing.T) {
	tests := []struct {
		expr     string
		want     []selector
		grouping []string
		wantErr  bool
	}{
		{expr: `up`, want: []selector{{name: "up"}}},
		{expr: `rate(x_total[5m])`, want: []selector{{name: "x_total"}}},
		{
			expr:     `sum by (le, model) (rate(h_bucket{error_type="", pool=~"$pool"}[$__rate_interval]))`,
			want:     []selector{{name: "h_bucket", labels: []string{"error_type", "pool"}}},
			grouping: []string{"le", "model"},
		},
		{
			expr:     `max by (budget) (a) / max by (budget) (b > 0) >= 0.8 < 1`,
			want:     []selector{{name: "a"}, {name: "b"}},
			grouping: []string{"budget", "budget"},
		},
		{
			expr: "sum(rate(a[5m])) > 4 * sum(rate(a[1h] offset 1h)) and sum(rate(a[5m])) > 0.5",
			want: []selector{{name: "a"}, {name: "a"}, {name: "a"}},
		},
		{
			expr:     `a * on (x) group_left (y) b unless ignoring(z) c or bool d`,
			want:     []selector{{name: "a"}, {name: "b"}, {name: "c"}, {name: "d"}},
			grouping: []string{"x", "y", "z"},
		},
		{expr: `histogram_quantile (0.99, x) > 1e+3 * 0x1f`, want: []selector{{name: "x"}}},
		{expr: `count_values("a_b{c", x{l='it\'s'}) @ start()`, want: []selector{{name: "x", labels: []string{"l"}}}},
		{expr: `label_replace(x, "dst", "$1", "src", "(.*)")`, want: []selector{{name: "x"}}},
		{expr: `colon:recorded:rate5m{a!~"b",}`, want: []selector{{name: "colon:recorded:rate5m", labels: []string{"a"}}}},
		{expr: `{__name__="x"}`, wantErr: true},
		{expr: `rate(x[$__rate_interval)`, wantErr: true},
		{expr: `x{a="b}`, wantErr: true},
		{expr: `x{a=b}`, wantErr: true},
		{expr: `x / $divisor`, wantErr: true},
	}
	for _, tt := range tests {
		got, grouping, err := selectors(tt.expr)
		if (err != nil) != tt.wantErr {
			t.Errorf("selectors(%q) error = %v, want error %v", tt.expr, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(selector{})); !tt.wantErr && diff != "" {
			t.Errorf("selectors(%q) (-want +got):\n%s", tt.expr, diff)
		}
		if diff := cmp.Diff(tt.grouping, grouping); !tt.wantErr && diff != "" {
			t.Errorf("selectors(%q) grouping (-want +got):\n%s", tt.expr, diff)
		}
	}
}
