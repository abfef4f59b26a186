package route

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// The corpus, under filter/route/testdata: the shipped model is trained on
// TrainFiles and measured on HeldOutFiles (the corpus's test split, whose
// templates training never sees, and the keyword classifier's fixtures).
var (
	TrainFiles   = []string{"corpus/train.jsonl", "corpus/dev.jsonl"}
	HeldOutFiles = []string{"corpus/test.jsonl", "classify.jsonl"}
)

// ReadExampleFiles reads and concatenates labelled request files.
func ReadExampleFiles(paths ...string) ([]Example, error) {
	var out []Example
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		exs, err := ReadExamples(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, exs...)
	}
	return out, nil
}

// TrainCorpus trains the shipped model from the corpus in dir (the
// testdata directory) and writes, to report, its record on the held-out
// files. The model's bytes are what classifier.model must hold.
func TrainCorpus(dir string, report io.Writer) (*Model, error) {
	exs, err := ReadExampleFiles(joinAll(dir, TrainFiles)...)
	if err != nil {
		return nil, err
	}
	m, err := Train(exs, DefaultTrainConfig())
	if err != nil {
		return nil, err
	}
	if report != nil {
		fmt.Fprintf(report, "trained on %d examples (%s)\n", len(exs), strings.Join(TrainFiles, ", "))
		for _, f := range HeldOutFiles {
			held, err := ReadExampleFiles(filepath.Join(dir, f))
			if err != nil {
				return nil, err
			}
			e, err := Evaluate(m, held)
			if err != nil {
				return nil, err
			}
			e.Format(report, "held out "+f)
		}
	}
	return m, nil
}

func joinAll(dir string, files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = filepath.Join(dir, f)
	}
	return out
}

// Example is one labelled request.
type Example struct {
	Name  string
	Class Class
	Body  []byte // the request body
}

// ReadExamples reads labelled requests, one JSON object a line: the
// route-test format ({"name", "body", "expect": {"class"}}) or a bare body
// with a "class" member (testdata/classify.jsonl). Blank lines and lines
// starting with # or // are skipped; a line without a class is an error.
func ReadExamples(r io.Reader) ([]Example, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var out []Example
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' || bytes.HasPrefix(text, []byte("//")) {
			continue
		}
		var row struct {
			Name   string          `json:"name"`
			Body   json.RawMessage `json:"body"`
			Class  Class           `json:"class"`
			Expect struct {
				Class Class `json:"class"`
			} `json:"expect"`
		}
		if err := json.Unmarshal(text, &row); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		ex := Example{Name: row.Name, Class: row.Expect.Class, Body: row.Body}
		if row.Body == nil {
			ex.Class, ex.Body = row.Class, slices.Clone(text)
		}
		if ex.Name == "" {
			ex.Name = fmt.Sprintf("line %d", line)
		}
		if ex.Class == "" {
			return nil, fmt.Errorf("line %d: no class (want expect.class)", line)
		}
		if err := ValidClassName(string(ex.Class)); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		if err := checkBody(ex.Body); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		out = append(out, ex)
	}
	return out, sc.Err()
}

// ValidClassName checks a class name: 1 to 32 bytes of lowercase letters,
// digits, '_' and '-', starting with a letter.
func ValidClassName(s string) error {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return fmt.Errorf("class %q: want 1 to 32 lowercase letters, digits, _ or -, starting with a letter", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("class %q: want 1 to 32 lowercase letters, digits, _ or -, starting with a letter", s)
		}
	}
	return nil
}

var inputClassifier = NewClassifier(ClassifierConfig{Kind: KindKeywords})

// checkBody is Features' check: a valid JSON object.
func checkBody(body []byte) error {
	if !gjson.ValidBytes(body) {
		return apierr.BadRequest("invalid_json", "the request body is not valid JSON")
	}
	if i := skipSpace(body, 0); i == len(body) || body[i] != '{' {
		return apierr.BadRequest("invalid_json", "the request body must be a JSON object")
	}
	return nil
}

// inputOf returns what the model reads of a request body.
func inputOf(body []byte) (modelInput, error) {
	if err := checkBody(body); err != nil {
		return modelInput{}, err
	}
	var in modelInput
	inputClassifier.features(body, &in, false)
	return in, nil
}

// TrainConfig sets the training: plain SGD on the softmax loss with L2
// regularisation, in a fixed order drawn from Seed.
type TrainConfig struct {
	Bits   uint8   // log2 of the hash buckets
	Epochs int     // passes over the examples
	LR     float64 // initial learning rate, decaying as 1/(1+t/decay)
	L2     float64 // weight decay per update
	Seed   uint64
}

// DefaultTrainConfig is what the shipped model was trained with (chosen on
// the dev split).
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{Bits: 16, Epochs: 12, LR: 0.5, L2: 1e-5, Seed: 16}
}

// sample is an example as a sparse vector.
type sample struct {
	idx []int32
	val []float64
	y   int
}

type collector struct {
	hs     []uint32
	groups []int
}

func (c *collector) add(group int, hs []uint32) {
	c.hs = append(c.hs, hs...)
	for range hs {
		c.groups = append(c.groups, group)
	}
}

// vectorOf extracts in's features as a sparse vector over 1<<bits buckets,
// each feature worth its group's scale (what Model.finish multiplies by).
func vectorOf(in *modelInput, bits uint8) ([]int32, []float64) {
	var c collector
	x := extractor{coll: &c}
	x.extract(in)
	// Sorted by bucket, then in emission order (the low bits), so the
	// sums below add in one fixed order.
	keys := make([]uint64, len(c.hs))
	for i, h := range c.hs {
		keys[i] = uint64(bucket(h, bits))<<32 | uint64(i)
	}
	slices.Sort(keys)
	idx := make([]int32, 0, len(keys))
	val := make([]float64, 0, len(keys))
	for _, k := range keys {
		b, g := int32(k>>32), c.groups[uint32(k)]
		v := groupScale(g, x.counts[g])
		if n := len(idx); n > 0 && idx[n-1] == b {
			val[n-1] += v
			continue
		}
		idx = append(idx, b)
		val = append(val, v)
	}
	return idx, val
}

// floatModel is a model being trained.
type floatModel struct {
	classes []Class
	bits    uint8
	w       []float64 // bucket × class
	bias    []float64
}

// samples extracts the examples' vectors, on every CPU (each example on its
// own, so the result does not depend on the scheduling).
func (fm *floatModel) samples(exs []Example) ([]sample, error) {
	out := make([]sample, len(exs))
	errs := make([]error, len(exs))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(exs); i += workers {
				ex := exs[i]
				y := slices.Index(fm.classes, ex.Class)
				if y < 0 {
					errs[i] = fmt.Errorf("%s: class %q is not one of the model's", ex.Name, ex.Class)
					continue
				}
				in, err := inputOf(ex.Body)
				if err != nil {
					errs[i] = fmt.Errorf("%s: %v", ex.Name, err)
					continue
				}
				idx, val := vectorOf(&in, fm.bits)
				out[i] = sample{idx, val, y}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// sgd runs cfg.Epochs passes of SGD over ss. Products are rounded
// explicitly (float64(…)) so no platform fuses them: the result is the same
// bytes everywhere.
func (fm *floatModel) sgd(ss []sample, cfg TrainConfig) {
	k := len(fm.classes)
	r := rand.New(rand.NewPCG(cfg.Seed, 0x11a5_c1a5))
	order := make([]int, len(ss))
	for i := range order {
		order[i] = i
	}
	z := make([]float64, k)
	g := make([]float64, k)
	t := 0
	decay := float64(len(ss))
	// The result is the average of the weights after each epoch of the
	// second half (averaged SGD): steadier than the last iterate, and
	// better on templates it has not seen.
	avgW := make([]float64, len(fm.w))
	avgB := make([]float64, k)
	averaged := 0
	for epoch := range cfg.Epochs {
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			s := &ss[i]
			copy(z, fm.bias)
			for j, b := range s.idx {
				row := fm.w[int(b)*k:][:k]
				for c := range k {
					z[c] += float64(s.val[j] * row[c])
				}
			}
			softmax(z)
			for c := range k {
				g[c] = z[c]
			}
			g[s.y] -= 1
			lr := cfg.LR / (1 + float64(t)/decay)
			t++
			for j, b := range s.idx {
				row := fm.w[int(b)*k:][:k]
				v := s.val[j]
				for c := range k {
					row[c] -= float64(lr * (float64(g[c]*v) + float64(cfg.L2*row[c])))
				}
			}
			for c := range k {
				fm.bias[c] -= float64(lr * g[c])
			}
		}
		if epoch >= cfg.Epochs/2 {
			for i, v := range fm.w {
				avgW[i] += v
			}
			for i, v := range fm.bias {
				avgB[i] += v
			}
			averaged++
		}
	}
	for i := range fm.w {
		fm.w[i] = avgW[i] / float64(averaged)
	}
	for i := range fm.bias {
		fm.bias[i] = avgB[i] / float64(averaged)
	}
}

func softmax(z []float64) {
	m := z[0]
	for _, v := range z[1:] {
		m = max(m, v)
	}
	var total float64
	for i, v := range z {
		z[i] = math.Exp(v - m)
		total += z[i]
	}
	for i := range z {
		z[i] /= total
	}
}

// quantize returns the model with int8 weights.
func (fm *floatModel) quantize() *Model {
	var maxAbs float64
	for _, v := range fm.w {
		maxAbs = max(maxAbs, math.Abs(v))
	}
	scale := float32(maxAbs / 127)
	if scale == 0 {
		scale = 1
	}
	m := &Model{classes: slices.Clone(fm.classes), bits: fm.bits, scale: scale, w: make([]int8, len(fm.w))}
	for i, v := range fm.w {
		m.w[i] = int8(max(-127, min(127, math.Round(v/float64(scale)))))
	}
	for _, b := range fm.bias {
		m.bias = append(m.bias, float32(b))
	}
	m.prepare()
	return m
}

// classesOf returns the built-in classes, then the examples' other classes
// in order of first appearance.
func classesOf(base []Class, exs []Example) []Class {
	out := slices.Clone(base)
	for _, ex := range exs {
		if !slices.Contains(out, ex.Class) {
			out = append(out, ex.Class)
		}
	}
	return out
}

// Train trains a model from scratch on exs.
func Train(exs []Example, cfg TrainConfig) (*Model, error) {
	if len(exs) == 0 {
		return nil, errors.New("no examples to train on")
	}
	classes := classesOf(Classes, exs)
	if len(classes) > MaxModelClasses {
		return nil, fmt.Errorf("%d classes, at most %d", len(classes), MaxModelClasses)
	}
	fm := &floatModel{classes: classes, bits: cfg.Bits, w: make([]float64, len(classes)<<cfg.Bits), bias: make([]float64, len(classes))}
	ss, err := fm.samples(exs)
	if err != nil {
		return nil, err
	}
	fm.sgd(ss, cfg)
	return fm.quantize(), nil
}

// AdaptConfig is the fine-tuning Adapt runs: fewer, gentler passes than
// training, so the shipped knowledge stays.
func AdaptConfig() TrainConfig {
	return TrainConfig{Epochs: 2, LR: 0.3, L2: 1e-5, Seed: 16}
}

// Adapt fine-tunes base on exs (which may add classes), starting from its
// weights.
func Adapt(base *Model, exs []Example, cfg TrainConfig) (*Model, error) {
	if len(exs) == 0 {
		return base, nil
	}
	classes := classesOf(base.classes, exs)
	if len(classes) > MaxModelClasses {
		return nil, fmt.Errorf("%d classes, at most %d", len(classes), MaxModelClasses)
	}
	k, bk := len(classes), len(base.classes)
	fm := &floatModel{classes: classes, bits: base.bits, w: make([]float64, k<<base.bits), bias: make([]float64, k)}
	for r := 0; r < 1<<base.bits; r++ {
		for c := range bk {
			fm.w[r*k+c] = float64(base.w[r*bk+c]) * float64(base.scale)
		}
	}
	for c := range bk {
		fm.bias[c] = float64(base.bias[c])
	}
	ss, err := fm.samples(exs)
	if err != nil {
		return nil, err
	}
	fm.sgd(ss, cfg)
	return fm.quantize(), nil
}

// Eval is a model's record on labelled examples.
type Eval struct {
	Classes   []Class
	Confusion [][]int // [labelled][predicted], by Classes
	Correct   int
	Total     int
	Misses    []Miss
}

// Miss is one misclassified example.
type Miss struct {
	Name       string
	Want, Got  Class
	Confidence float64
}

// Evaluate classifies exs with m. Labels the model does not know count as
// misses in their own row.
func Evaluate(m *Model, exs []Example) (Eval, error) {
	e := NewEval(m.classes)
	var probs [MaxModelClasses]float64
	for _, ex := range exs {
		in, err := inputOf(ex.Body)
		if err != nil {
			return e, fmt.Errorf("%s: %v", ex.Name, err)
		}
		p := m.predict(&in, &probs)
		e.Add(ex.Name, ex.Class, p.Class, p.Confidence)
	}
	return e, nil
}

// NewEval starts an empty record over classes (more are added as seen).
func NewEval(classes []Class) Eval {
	e := Eval{}
	for _, c := range classes {
		e.class(c)
	}
	return e
}

// class returns c's index, adding it if new.
func (e *Eval) class(c Class) int {
	if i := slices.Index(e.Classes, c); i >= 0 {
		return i
	}
	e.Classes = append(e.Classes, c)
	for i := range e.Confusion {
		e.Confusion[i] = append(e.Confusion[i], 0)
	}
	e.Confusion = append(e.Confusion, make([]int, len(e.Classes)))
	return len(e.Classes) - 1
}

// Add records one decision.
func (e *Eval) Add(name string, want, got Class, confidence float64) {
	i, j := e.class(want), e.class(got)
	e.Confusion[i][j]++
	e.Total++
	if want == got {
		e.Correct++
	} else {
		e.Misses = append(e.Misses, Miss{name, want, got, confidence})
	}
}

// Accuracy is the share of examples classified as labelled.
func (e Eval) Accuracy() float64 {
	if e.Total == 0 {
		return 0
	}
	return float64(e.Correct) / float64(e.Total)
}

// Format writes the accuracy, per-class precision and recall, and the
// confusion matrix.
func (e Eval) Format(w io.Writer, title string) {
	fmt.Fprintf(w, "%s: accuracy %d/%d = %.1f%%\n", title, e.Correct, e.Total, 100*e.Accuracy())
	fmt.Fprintf(w, "  %-12s %9s %9s %7s\n", "class", "precision", "recall", "n")
	for i, c := range e.Classes {
		tp, labelled, predicted := e.Confusion[i][i], 0, 0
		for j := range e.Classes {
			labelled += e.Confusion[i][j]
			predicted += e.Confusion[j][i]
		}
		if labelled == 0 && predicted == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-12s %8.1f%% %8.1f%% %7d\n", c, pct(tp, predicted), pct(tp, labelled), labelled)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  confusion (rows labelled, columns predicted):\n  %-12s", "")
	for _, c := range e.Classes {
		fmt.Fprintf(&b, " %10s", c)
	}
	for i, c := range e.Classes {
		fmt.Fprintf(&b, "\n  %-12s", c)
		for j := range e.Classes {
			fmt.Fprintf(&b, " %10d", e.Confusion[i][j])
		}
	}
	fmt.Fprintln(w, b.String())
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}
