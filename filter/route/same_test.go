package route

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"
)

// sameAsReference checks that the current code and the reference
// (reference_test.go) compute the same Features for a valid JSON object body
// under every golden configuration.
func sameAsReference(t *testing.T, body []byte) {
	t.Helper()
	for _, gc := range goldenConfigs {
		got := NewClassifier(gc.cfg).FeaturesOfValid(body)
		want := newRefClassifier(gc.cfg).features(body)
		if gc.cfg.Kind != KindKeywords {
			// The model classifies otherwise; every other feature is the
			// same pass and must agree.
			if got.Class == "" || got.Confidence <= 0 || got.Confidence > 1 {
				t.Fatalf("config %s, body %q: class %q, confidence %v", gc.name, body, got.Class, got.Confidence)
			}
			got.Class, got.Signals, got.Confidence, got.RunnerUp = "", nil, 0, ""
			want.Class, want.Signals, want.Confidence = "", nil, 0
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("config %s, body %q: features differ from the reference (-want +got):\n%s", gc.name, body, d)
		}
	}
}

// validObject reports whether body passes Features' checks.
func validObject(body []byte) bool {
	return gjson.ValidBytes(body) && gjson.ParseBytes(body).IsObject()
}

func TestSameFeatures(t *testing.T) {
	for _, gb := range goldenBodies(t, "keywords") {
		if validObject(gb.body) {
			sameAsReference(t, gb.body)
		}
	}
	// Texts dense with escapes, past the classify window: JSON inside a
	// string, runs of \n, \u escapes and surrogate pairs, and escapes cut
	// by the window's edges.
	for _, text := range []string{
		strings.Repeat(`{\"sku\": \"A-1002\", \"qty\": 3, \"note\": \"say \\\"hi\\\"\"}, `, 400),
		strings.Repeat(`\n`, 9000) + "prove it" + strings.Repeat(`\n\t`, 3000),
		strings.Repeat(`\u00C9\u4e2d\ud83d\ude00\u0031 `, 1500),
		strings.Repeat(`STEP BY STEP\\`, 700) + strings.Repeat(`\/`, 5000),
	} {
		body := []byte(`{"messages":[{"role":"user","content":"` + text + `"},{"role":"user","content":[{"type":"text","text":"` + text + `"}]}]}`)
		if !validObject(body) {
			t.Fatalf("not a valid JSON object: %.80s", body)
		}
		sameAsReference(t, body)
	}
}

// FuzzSameFeatures holds FeaturesOfValid to the reference on any valid JSON
// object, and checks it does not panic on anything else.
func FuzzSameFeatures(f *testing.F) {
	for _, b := range edgeBodies {
		f.Add([]byte(b))
	}
	g := newBodyGen(2)
	for i := range 8 {
		f.Add(g.body(i))
	}
	c := NewClassifier(ClassifierConfig{Kind: KindKeywords})
	f.Fuzz(func(t *testing.T, body []byte) {
		if !validObject(body) {
			c.FeaturesOfValid(body) // garbage in, garbage out, but no panic
			return
		}
		sameAsReference(t, body)
	})
}

// FuzzSameText holds the classifier to the reference on arbitrary message
// text (raw bytes, only quotes, backslashes and control characters escaped),
// with a classify window and a cue of one's own taken from the input.
func FuzzSameText(f *testing.F) {
	f.Add("Prove that ∑ x ≤ 1 step by step; then write a poem.", uint16(40), "x =")
	f.Add("```go\nfunc main() {}\n```\nWhy does this PANIC: boom? main.go c++ p(x) o(n^2)", uint16(7), "c#")
	f.Add("tl;dr: classify classifying class; extract éé 中文 \xff\x80", uint16(300), "extraction")
	f.Fuzz(func(t *testing.T, text string, window uint16, cue string) {
		var sb strings.Builder
		sb.WriteString(`{"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"`)
		for i := 0; i < len(text); i++ {
			switch ch := text[i]; {
			case ch == '"' || ch == '\\':
				sb.WriteByte('\\')
				sb.WriteByte(ch)
			case ch < ' ':
				sb.WriteString(`\u00`)
				sb.WriteByte("0123456789abcdef"[ch>>4])
				sb.WriteByte("0123456789abcdef"[ch&15])
			default:
				sb.WriteByte(ch)
			}
		}
		sb.WriteString(`"}]}`)
		body := []byte(sb.String())
		cfg := ClassifierConfig{Kind: KindKeywords, MaxClassifyBytes: int(window), Keywords: map[Class][]string{ClassCode: {cue}, ClassCreative: {cue + "s"}}}
		got := NewClassifier(cfg).FeaturesOfValid(body)
		want := newRefClassifier(cfg).features(body)
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("body %q: features differ from the reference (-want +got):\n%s", body, d)
		}
	})
}
