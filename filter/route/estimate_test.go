package route

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tiktoken-go/tokenizer"
)

// TestEstimatorError compares the input-token estimate with a real BPE
// tokenizer (o200k_base, the GPT-4o / GPT-4.1 / o-series encoding, and
// cl100k_base, GPT-4 and GPT-3.5's) on the classifier fixtures plus the
// non-English and structured texts in testdata/tokens.jsonl. Both sides count
// message text only (and the tools JSON), no per-message framing. `go test -v
// -run EstimatorError` prints the table the README quotes; the test fails if
// the English fixtures drift past the bounds below.
func TestEstimatorError(t *testing.T) {
	c := NewClassifier(ClassifierConfig{Kind: KindKeywords})
	for _, enc := range []tokenizer.Encoding{tokenizer.O200kBase, tokenizer.Cl100kBase} {
		codec, err := tokenizer.Get(enc)
		if err != nil {
			t.Fatal(err)
		}
		groups := map[string][]float64{} // group → relative errors (estimate/true - 1)
		var order []string
		for _, file := range []string{"testdata/classify.jsonl", "testdata/tokens.jsonl"} {
			for _, line := range fixtures(t, file) {
				f, err := c.Features(line)
				if err != nil {
					t.Fatal(err)
				}
				truth := 0
				count := func(s string) {
					n, err := codec.Count(s)
					if err != nil {
						t.Fatal(err)
					}
					truth += n
				}
				gjson.GetBytes(line, "messages").ForEach(func(_, m gjson.Result) bool {
					content := m.Get("content")
					if content.Type == gjson.String {
						count(content.Str)
					} else {
						content.ForEach(func(_, p gjson.Result) bool {
							if p.Get("type").Str == "text" {
								count(p.Get("text").Str)
							}
							return true
						})
					}
					return true
				})
				if tools := gjson.GetBytes(line, "tools"); tools.Exists() {
					count(tools.Raw)
				}
				if truth == 0 {
					continue
				}
				group := gjson.GetBytes(line, "group").String()
				if group == "" {
					group = "en:" + gjson.GetBytes(line, "class").String()
				}
				if _, ok := groups[group]; !ok {
					order = append(order, group)
				}
				rel := float64(f.EstimatedInputTokens)/float64(truth) - 1
				groups[group] = append(groups[group], rel)
				groups["en:all"] = appendIf(groups["en:all"], rel, strings.HasPrefix(group, "en:"))
			}
		}
		order = append(order, "en:all")
		t.Logf("%s: estimate vs true tokens (relative error; negative = undercount)", enc)
		t.Logf("%-14s %5s %9s %9s %9s", "group", "n", "bias", "mean|e|", "p90|e|")
		for _, g := range order {
			bias, mae, p90 := stats(groups[g])
			t.Logf("%-14s %5d %+8.1f%% %8.1f%% %8.1f%%", g, len(groups[g]), 100*bias, 100*mae, 100*p90)
		}
		// The guard: the estimate stays within these bounds of o200k_base
		// (measured: see the README).
		if enc == tokenizer.O200kBase {
			for _, g := range []struct {
				group   string
				bias, e float64
			}{{"en:all", 0.15, 0.25}, {"zh", 0.25, 0.25}, {"ja", 0.25, 0.25}, {"numbers", 0.40, 0.40}, {"json", 0.35, 0.35}} {
				bias, mae, _ := stats(groups[g.group])
				if math.Abs(bias) > g.bias || mae > g.e {
					t.Errorf("%s: bias %+.1f%%, mean abs error %.1f%%; want |bias| ≤ %.0f%% and mean abs error ≤ %.0f%%",
						g.group, 100*bias, 100*mae, 100*g.bias, 100*g.e)
				}
			}
		}
	}
}

func appendIf(s []float64, v float64, ok bool) []float64 {
	if ok {
		return append(s, v)
	}
	return s
}

// stats returns the mean error, mean absolute error and 90th percentile of
// the absolute error.
func stats(errs []float64) (bias, mae, p90 float64) {
	if len(errs) == 0 {
		return 0, 0, 0
	}
	abs := make([]float64, len(errs))
	for i, e := range errs {
		bias += e
		abs[i] = math.Abs(e)
		mae += abs[i]
	}
	slices.Sort(abs)
	n := float64(len(errs))
	return bias / n, mae / n, abs[int(0.9*float64(len(abs)-1))]
}
