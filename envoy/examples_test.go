package envoy

import (
	"path/filepath"
	"testing"
)

// TestExamples renders every example config and checks the result, so no
// example in the README can drift into one Envoy would refuse.
func TestExamples(t *testing.T) {
	paths, err := filepath.Glob("../examples/*/llmproc.yaml")
	if err != nil || len(paths) < 2 {
		t.Fatalf("examples: %v %v", paths, err)
	}
	paths = append(paths, "../examples/prices/prices.yaml") // a complete config too
	for _, p := range paths {
		t.Run(filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p), func(t *testing.T) {
			rt := load(t, p)
			bs := render(t, rt)
			if err := Check(bs, rt); err != nil {
				t.Fatal(err)
			}
		})
	}
}
