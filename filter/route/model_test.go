package route

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestShippedModelReproduces retrains the model from the corpus and checks
// that it is classifier.model byte for byte: the shipped weights are what
// `llmproc classifier train` (make classifier) makes, nothing else.
func TestShippedModelReproduces(t *testing.T) {
	m, err := TrainCorpus("testdata", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, shippedModel) {
		t.Fatalf("retrained model (%d bytes) differs from classifier.model (%d bytes): run make classifier", len(got), len(shippedModel))
	}
}

// Held-out accuracy floors, just under what the shipped model scores (see
// README.md): the corpus's test split (templates training never saw) and
// the keyword classifier's fixtures (never trained on).
var heldOutFloors = map[string]float64{"corpus/test.jsonl": 0.91, "classify.jsonl": 0.90}

func TestModelHeldOut(t *testing.T) {
	m := ShippedModel()
	for _, f := range HeldOutFiles {
		exs, err := ReadExampleFiles("testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		e, err := Evaluate(m, exs)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		e.Format(&b, f)
		t.Log(b.String())
		if e.Accuracy() < heldOutFloors[f] {
			t.Errorf("%s: accuracy %.3f below the floor %.2f", f, e.Accuracy(), heldOutFloors[f])
		}
	}
}

// TestCorpus checks the corpus is what the issue asks for: enough requests,
// languages and shapes on every class, and families that never straddle
// splits; and that no fixture of classify.jsonl is in it.
func TestCorpus(t *testing.T) {
	seen := map[string]bool{}
	for _, line := range fixtures(t, "testdata/classify.jsonl") {
		var row struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		if err := json.Unmarshal(line, &row); err != nil {
			t.Fatal(err)
		}
		seen[row.Messages[len(row.Messages)-1].Content] = true
	}
	total := 0
	langs := map[string]int{}
	family := map[string]string{} // family → split
	type shape struct{ tools, format, system, multi int }
	shapes := map[Class]*shape{}
	for _, split := range []string{"train", "dev", "test"} {
		data, err := os.ReadFile("testdata/corpus/" + split + ".jsonl")
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(data) {
			var row struct {
				Name string `json:"name"`
				Body struct {
					Messages []struct{ Role, Content string } `json:"messages"`
					Tools    json.RawMessage                  `json:"tools"`
					Format   json.RawMessage                  `json:"response_format"`
				} `json:"body"`
				Expect struct{ Class Class } `json:"expect"`
			}
			if err := json.Unmarshal(line, &row); err != nil {
				t.Fatal(err)
			}
			total++
			fam, _, _ := strings.Cut(row.Name, "#")
			if s, ok := family[fam]; ok && s != split {
				t.Errorf("family %s is in %s and %s", fam, s, split)
			}
			family[fam] = split
			langs[strings.Split(row.Name, "/")[0]]++
			sh := shapes[row.Expect.Class]
			if sh == nil {
				sh = &shape{}
				shapes[row.Expect.Class] = sh
			}
			ms := row.Body.Messages
			if row.Body.Tools != nil {
				sh.tools++
			}
			if row.Body.Format != nil {
				sh.format++
			}
			if ms[0].Role == "system" {
				sh.system++
			}
			users := 0
			for _, m := range ms {
				if m.Role == "user" {
					users++
				}
			}
			if users > 1 {
				sh.multi++
			}
			if seen[ms[len(ms)-1].Content] {
				t.Errorf("%s: a classify.jsonl fixture is in the corpus", row.Name)
			}
		}
	}
	if total < 3000 {
		t.Errorf("%d requests, want at least 3000", total)
	}
	if len(langs) < 8 {
		t.Errorf("%d languages (%v), want at least 8", len(langs), langs)
	}
	for _, c := range Classes {
		sh := shapes[c]
		if sh == nil || sh.tools == 0 || sh.format == 0 || sh.system == 0 || sh.multi == 0 {
			t.Errorf("class %s: tools, response_format, system prompts and multi-turn on some requests each, got %+v", c, sh)
		}
	}
	t.Logf("%d requests, %d families, languages %v", total, len(family), langs)
}

// TestLatestTurnDecides: earlier turns are context; the latest user turn's
// task is the class.
func TestLatestTurnDecides(t *testing.T) {
	c := NewClassifier(ClassifierConfig{})
	conv := func(latest string) []byte {
		b, _ := json.Marshal(map[string]any{"model": "auto", "messages": []any{
			map[string]string{"role": "user", "content": "Write a Python function that parses a CSV file and sums the second column."},
			map[string]string{"role": "assistant", "content": "```python\nimport csv\ndef total(path):\n    with open(path) as f:\n        return sum(float(r[1]) for r in csv.reader(f))\n```"},
			map[string]string{"role": "user", "content": latest},
		}})
		return b
	}
	for _, tt := range []struct {
		latest string
		want   Class
	}{
		{"Now write a short poem about spreadsheets and the people who love them.", ClassCreative},
		{"Brilliant, thank you. Enjoy your weekend!", ClassChat},
		{"Translate this sentence into German: the report is due on Friday.", ClassExtraction},
	} {
		f := c.FeaturesOfValid(conv(tt.latest))
		if f.Class != tt.want {
			t.Errorf("%q: class %s (%.2f), want %s", tt.latest, f.Class, f.Confidence, tt.want)
		}
		if f.RunnerUp == "" || f.RunnerUp == f.Class || f.Confidence <= 0 || f.Confidence > 1 {
			t.Errorf("%q: runner-up %q, confidence %v", tt.latest, f.RunnerUp, f.Confidence)
		}
	}
}

// TestPredictAllocs: scoring a request allocates nothing.
func TestPredictAllocs(t *testing.T) {
	m := ShippedModel()
	for _, size := range []int{2 << 10, 64 << 10} {
		in, err := inputOf(benchBody(size))
		if err != nil {
			t.Fatal(err)
		}
		var probs [MaxModelClasses]float64
		if n := testing.AllocsPerRun(20, func() { m.predict(&in, &probs) }); n != 0 {
			t.Errorf("%d bytes: %v allocations per prediction, want 0", size, n)
		}
	}
}

// TestModelDeterministic: the same body gets the same class and
// probability, from any classifier built from the same model.
func TestModelDeterministic(t *testing.T) {
	body := benchBody(3000)
	a := NewClassifier(ClassifierConfig{}).FeaturesOfValid(body)
	for range 5 {
		b := NewClassifier(ClassifierConfig{}).FeaturesOfValid(body)
		if a.Class != b.Class || a.Confidence != b.Confidence || a.RunnerUp != b.RunnerUp {
			t.Fatalf("%+v then %+v", a, b)
		}
	}
}

func TestModelFormat(t *testing.T) {
	m := ShippedModel()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, shippedModel) {
		t.Fatal("marshal(parse(classifier.model)) differs from classifier.model")
	}
	for name, mutate := range map[string]func([]byte) []byte{
		"magic":     func(b []byte) []byte { b[0] = 'X'; return b },
		"checksum":  func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"truncated": func(b []byte) []byte { return b[:len(b)/3] },
		"empty":     func([]byte) []byte { return nil },
	} {
		if _, err := ParseModel(mutate(bytes.Clone(shippedModel))); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// FuzzParseModel: any bytes give a model or an error, never a panic, and a
// model that parses scores a request.
func FuzzParseModel(f *testing.F) {
	f.Add(shippedModel[:200])
	small, _ := (&Model{classes: []Class{"a", "b"}, bits: 8, scale: 1, bias: []float32{0, 0}, w: make([]int8, 2<<8)}).MarshalBinary()
	f.Add(small)
	in, _ := inputOf(user("hello there"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseModel(data)
		if err != nil {
			return
		}
		var probs [MaxModelClasses]float64
		m.predict(&in, &probs)
	})
}

// BenchmarkAdapt measures routing.classifier.examples at config load:
// reading and fine-tuning on 10,000 labelled requests.
func BenchmarkAdapt(b *testing.B) {
	exs, err := ReadExampleFiles("testdata/corpus/train.jsonl", "testdata/corpus/dev.jsonl", "testdata/corpus/test.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	for len(exs) < 10000 {
		exs = append(exs, exs...)
	}
	exs = exs[:10000]
	base := ShippedModel()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Adapt(base, exs, AdaptConfig()); err != nil {
			b.Fatal(err)
		}
	}
}
