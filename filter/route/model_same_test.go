package route

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// emitted is the features an extractor emitted, in order, with their
// groups, and its per-group counts.
type emitted struct {
	hs     []uint32
	groups []int
	counts [numGroups]int
}

func emittedBy(in *modelInput) emitted {
	var c collector
	x := extractor{coll: &c}
	x.extract(in)
	return emitted{c.hs, c.groups, x.counts}
}

func refEmittedBy(in *modelInput) emitted {
	var c collector
	x := refExtractor{coll: &c}
	x.extract(in)
	return emitted{c.hs, c.groups, x.counts}
}

// sameModelFeatures checks, for one request body, that the extractor emits
// the reference's features (model_ref_test.go) in the reference's order, and
// that the scorer's sums for m are the sums of those features' weights.
func sameModelFeatures(t *testing.T, m *Model, body []byte) {
	t.Helper()
	in, err := inputOf(body)
	if err != nil {
		return
	}
	got, want := emittedBy(&in), refEmittedBy(&in)
	if got.counts != want.counts || !slices.Equal(got.hs, want.hs) || !slices.Equal(got.groups, want.groups) {
		for i := range min(len(got.hs), len(want.hs)) {
			if got.hs[i] != want.hs[i] || got.groups[i] != want.groups[i] {
				t.Fatalf("body %.200q: feature %d is %x (group %d), the reference's %x (group %d); counts %v, reference %v",
					body, i, got.hs[i], got.groups[i], want.hs[i], want.groups[i], got.counts, want.counts)
			}
		}
		t.Fatalf("body %.200q: %d features (counts %v), the reference %d (counts %v)", body, len(got.hs), got.counts, len(want.hs), want.counts)
	}
	// Explaining reads every rune on its own (textWalk.char), and names
	// each feature as it emits it: the same features, in the same order.
	var refs []featRef
	var ec collector
	xe := extractor{coll: &ec, refs: &refs}
	xe.extract(&in)
	if !slices.Equal(ec.hs, want.hs) || len(refs) != len(want.hs) {
		t.Fatalf("body %.200q: explaining emits %d features (%d named), scoring %d", body, len(ec.hs), len(refs), len(want.hs))
	}
	for i, r := range refs {
		if r.hash != want.hs[i] || r.group != want.groups[i] || r.name == "" {
			t.Fatalf("body %.200q: feature %d named %q (group %d, %x), emitted %x (group %d)", body, i, r.name, r.group, r.hash, want.hs[i], want.groups[i])
		}
	}
	k := len(m.classes)
	var sums [numGroups][MaxModelClasses]int32
	for i, h := range want.hs {
		row := m.w[bucket(h, m.bits)*k:][:k]
		for c, v := range row {
			sums[want.groups[i]][c] += int32(v)
		}
	}
	s := scorer{m: m}
	x := extractor{score: &s}
	x.extract(&in)
	if s.sums != sums || x.counts != want.counts {
		t.Fatalf("body %.200q: scorer sums %v, want %v", body, s.sums, sums)
	}
}

// randomModel is a model with k classes and random weights.
func randomModel(k int, bits uint8, seed uint64) *Model {
	r := rand.New(rand.NewPCG(seed, 1))
	m := &Model{bits: bits, scale: 0.01, w: make([]int8, k<<bits)}
	for c := range k {
		m.classes = append(m.classes, Class(fmt.Sprintf("c%d", c)))
		m.bias = append(m.bias, 0)
	}
	for i := range m.w {
		m.w[i] = int8(r.IntN(255) - 127)
	}
	m.prepare()
	return m
}

// modelsUnderTest are the shipped model and random ones with other class
// counts (the scorer has a path for up to 8 classes and one past that).
func modelsUnderTest() []*Model {
	return []*Model{ShippedModel(), randomModel(2, 8, 1), randomModel(7, 12, 2), randomModel(8, 10, 3), randomModel(MaxModelClasses, 9, 4)}
}

// edgeTexts are latest turns that reach the corners of the passes: fences
// at piece ends, invalid UTF-8, colons before newlines, CJK next to ASCII,
// texts past both windows with multi-byte runes cut by their edges.
var edgeTexts = []string{
	"", "`", "``", "```", "````", "``````", "a```", "```go\nx\n```", "x:\n", ":\n:\n", "\n\n\n",
	"\xff\x80\xe3\x81", "\xe3\x81A\x81", "中文abc日本語", "Привет, мир! 123", "é\u0301",
	"quick question: if 3 cats catch 3 mice in 3 minutes, how long for 100 cats?",
	strings.Repeat("héllo wörld 中 ", 700),
	strings.Repeat("`", 2000),
	strings.Repeat("x:\n```\n{a;b}=(c+d)*'e' \"f\"\n", 300),
	strings.Repeat("\xe4\xb8\xad", 3000) + "tail",
	strings.Repeat("a", 5000) + "\xe4\xb8",
}

// bodyOf is a chat body whose latest user turn is text (as one or as two
// content parts) after an earlier exchange, with a system prompt.
func bodyOf(system, text string, parts bool) []byte {
	q := func(s string) string { // raw bytes, only quotes, backslashes and controls escaped
		var b strings.Builder
		b.WriteByte('"')
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < ' ':
				fmt.Fprintf(&b, `\u%04x`, c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
		return b.String()
	}
	content := q(text)
	if parts {
		h := len(text) / 2
		content = `[{"type":"text","text":` + q(text[:h]) + `},{"type":"text","text":` + q(text[h:]) + `}]`
	}
	return []byte(`{"model":"auto","messages":[{"role":"system","content":` + q(system) +
		`},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":` + content + `}]}`)
}

func TestSameModelFeatures(t *testing.T) {
	ms := modelsUnderTest()
	var bodies [][]byte
	for _, f := range append(slices.Clone(TrainFiles), HeldOutFiles...) {
		exs, err := ReadExampleFiles("testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range exs {
			bodies = append(bodies, ex.Body)
		}
	}
	for _, text := range edgeTexts {
		for _, parts := range []bool{false, true} {
			bodies = append(bodies, bodyOf(text, text, parts))
		}
	}
	for i, body := range bodies {
		sameModelFeatures(t, ms[i%len(ms)], body)
		if i%len(ms) != 0 {
			sameModelFeatures(t, ms[0], body)
		}
	}
}

// FuzzSameModelFeatures holds the extractor to the reference on arbitrary
// texts.
func FuzzSameModelFeatures(f *testing.F) {
	for _, text := range edgeTexts[:17] {
		f.Add("Be brief.", text, false)
	}
	ms := modelsUnderTest()
	f.Fuzz(func(t *testing.T, system, text string, parts bool) {
		for _, m := range ms {
			sameModelFeatures(t, m, bodyOf(system, text, parts))
		}
	})
}
