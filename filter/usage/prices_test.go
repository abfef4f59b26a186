package usage

import (
	"testing"

	"github.com/llmproc/llmproc/filter/config"
)

// TestExamplePrices loads the dated price table in examples/prices and
// prices one request per model with it, so the example stays loadable and
// its Anthropic cache-write rates stay 1.25x input (2x for an hour).
func TestExamplePrices(t *testing.T) {
	c, err := config.Load("../../examples/prices/prices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Compile(c, func(string) string { return "test-key" })
	if err != nil {
		t.Fatal(err)
	}
	// 10k prompt tokens (6k read from the cache, 3k written to it, 1k of
	// those for an hour) and 1k completion tokens; pico-dollars worked out by
	// hand from the table.
	u := Usage{Input: 10_000, CachedInput: 6_000, CacheWrite: 3_000, CacheWrite1h: 1_000, Output: 1_000}
	tests := []struct {
		model string
		want  int64
	}{
		{"gpt-4o", 4_000*2_500_000 + 6_000*1_250_000 + 1_000*10_000_000},
		{"gpt-4o-mini", 4_000*150_000 + 6_000*75_000 + 1_000*600_000},
		{"o3-mini", 4_000*1_100_000 + 6_000*550_000 + 1_000*4_400_000},
		{"claude-sonnet-4-5", 1_000*3_000_000 + 6_000*300_000 + 2_000*3_750_000 + 1_000*6_000_000 + 1_000*15_000_000},
		{"claude-haiku-4-5", 1_000*1_000_000 + 6_000*100_000 + 2_000*1_250_000 + 1_000*2_000_000 + 1_000*5_000_000},
		{"gemini-2.5-flash", 4_000*300_000 + 6_000*30_000 + 1_000*2_500_000},
		{"gemini-2.5-pro", 4_000*1_250_000 + 6_000*125_000 + 1_000*10_000_000},
	}
	if len(tests) != len(c.Models) {
		t.Errorf("the example prices %d models, the test %d", len(c.Models), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			p, ok := rt.PriceFor(tt.model, tt.model)
			if !ok {
				t.Fatalf("no price for %s", tt.model)
			}
			if !p.Input.Set || !p.Output.Set || !p.CachedInput.Set {
				t.Errorf("price %+v: input, output and cached_input must be set", p)
			}
			if p.CacheWrite.Set && p.CacheWrite.PicoPerToken*4 != p.Input.PicoPerToken*5 {
				t.Errorf("cache_write %s is not 1.25x input %s", p.CacheWrite.Text, p.Input.Text)
			}
			if got := Cost(u, p); got != tt.want {
				t.Errorf("Cost = %d, want %d", got, tt.want)
			}
		})
	}
}
