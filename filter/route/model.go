package route

import (
	"cmp"
	_ "embed"
	"encoding/binary"
	"math"
	"slices"
	"sync"
)

// The learned classifier: a multinomial logistic regression over hashed
// features of the request (see extract), trained offline by Train from
// testdata/corpus and shipped as classifier.model (model_format.go).
//
// Scoring a request is a pass over the latest user turn (at most
// wordWindow bytes of it for words, charWindow for characters: its head and
// tail) and the system prompt: each
// feature hashes to a row of int8 weights, one per class, summed per feature
// group in int32. A class's logit is its bias plus, per group, the group's
// sum times the model's scale over the square root of the group's feature
// count (so long and short texts weigh alike). Softmax gives the
// probabilities. Nothing on that path allocates.

//go:embed classifier.model
var shippedModel []byte

var shipped struct {
	once sync.Once
	m    *Model
}

// ShippedModel returns the model embedded in llmproc (classifier.model).
// It panics if that file does not parse, which TestShippedModel rules out.
func ShippedModel() *Model {
	shipped.once.Do(func() {
		m, err := ParseModel(shippedModel)
		if err != nil {
			panic("route: the embedded classifier.model: " + err.Error())
		}
		shipped.m = m
	})
	return shipped.m
}

// MaxModelClasses bounds the classes of a model (the built-in five plus
// custom ones from routing.classifier.examples).
const MaxModelClasses = 16

// wordWindow bounds the bytes of the latest user turn the model reads for
// words, charWindow for character n-grams and shapeWindow for its shape: a
// longer turn is read at its first and last window/2 bytes (instructions
// sit at either end; the cost stays bounded on big bodies). Character
// n-grams, three for each character, are most of the model's features and
// of its time, so their window is the smallest.
const (
	wordWindow  = 4 << 10
	charWindow  = 512
	shapeWindow = 1 << 10
)

// shape.scan counts kinds of byte in 16-bit lanes over one piece, at most
// shapeWindow bytes.
const _ = uint16(shapeWindow)

// Feature groups, each normalised on its own.
const (
	groupWord   = iota // word unigrams and bigrams of the latest user turn
	groupChar          // character 3-, 4- and 5-grams of the latest user turn
	groupSystem        // word unigrams of the system prompt
	groupShape         // structural features (value 1 each, not normalised)
	groupHead          // word unigrams and bigrams of the latest turn's first line (the instruction)
	numGroups
)

var groupNames = [numGroups]string{"word", "char", "system", "shape", "head"}

// Model is a trained linear classifier. It is immutable and safe for
// concurrent use.
type Model struct {
	classes []Class
	bits    uint8
	scale   float32   // weight = int8 × scale
	bias    []float32 // by class
	w       []int8    // row-major: bucket × len(classes)
	lanes   []byte    // w biased for the scorer: each byte w+128, 8 bytes of padding (prepare)
}

// Classes returns the model's classes, in its order.
func (m *Model) Classes() []Class { return m.classes }

// scorer sums a model's weights per group and class.
type scorer struct {
	m    *Model
	sums [numGroups][MaxModelClasses]int32
}

// add adds the weights of the features hs (at most 256) to group's sums.
//
// For up to 8 classes it reads a row as one 8-byte word of biased weights
// (lanes: each weight plus 128, as a byte) and sums the even and the odd
// bytes in two words of four 16-bit lanes each (SWAR): 256 bytes of at most
// 255 cannot overflow a lane. The bytes past the row's K belong to the next
// row and land in lanes nobody reads.
func (s *scorer) add(group int, hs []uint32) {
	m := s.m
	k := len(m.classes)
	sums := &s.sums[group]
	if k <= 8 && len(m.lanes) == len(m.w)+8 && len(hs) <= 256 {
		const even = 0x00FF00FF00FF00FF
		var lo, hi uint64
		if k == 5 && m.bits == 16 { // the shipped model's shape: constants the compiler can check
			lanes := (*[5<<16 + 8]byte)(m.lanes)
			for _, h := range hs {
				i := int(h*0x9E3779B1>>16) * 5
				x := binary.LittleEndian.Uint64(lanes[i : i+8])
				lo += x & even
				hi += x >> 8 & even
			}
		} else {
			lanes, shift := m.lanes, (32-m.bits)&31
			for _, h := range hs {
				i := int(h*0x9E3779B1>>shift) * k
				x := binary.LittleEndian.Uint64(lanes[i : i+8 : i+8])
				lo += x & even
				hi += x >> 8 & even
			}
		}
		bias := int32(128 * len(hs))
		for c := 0; c < k; c += 2 {
			sums[c] += int32(uint16(lo>>(8*c))) - bias
			if c+1 < k {
				sums[c+1] += int32(uint16(hi>>(8*c))) - bias
			}
		}
		return
	}
	for _, h := range hs {
		row := m.w[bucket(h, m.bits)*k:][:k]
		for c, v := range row {
			sums[c] += int32(v)
		}
	}
}

// prepare builds the scorer's view of the weights (Model.lanes); every
// constructor of a Model calls it.
func (m *Model) prepare() {
	m.lanes = make([]byte, len(m.w)+8)
	for i, v := range m.w {
		m.lanes[i] = byte(v) ^ 0x80
	}
}

// Prediction is what the model made of a request.
type Prediction struct {
	Class      Class
	Confidence float64 // the class's probability
	RunnerUp   Class
	RunnerUpP  float64
}

// predict scores in; probs receives the probabilities by class.
func (m *Model) predict(in *modelInput, probs *[MaxModelClasses]float64) Prediction {
	s := scorer{m: m}
	x := extractor{score: &s}
	x.extract(in)
	return m.finish(&s.sums, &x.counts, probs)
}

func (m *Model) finish(sums *[numGroups][MaxModelClasses]int32, counts *[numGroups]int, probs *[MaxModelClasses]float64) Prediction {
	k := len(m.classes)
	var z [MaxModelClasses]float64
	for c := 0; c < k; c++ {
		v := float64(m.bias[c])
		for g := 0; g < numGroups; g++ {
			if counts[g] == 0 {
				continue
			}
			v += float64(sums[g][c]) * float64(m.scale) * groupScale(g, counts[g])
		}
		z[c] = v
	}
	best, second := 0, -1
	for c := 1; c < k; c++ {
		if z[c] > z[best] {
			second, best = best, c
		} else if second < 0 || z[c] > z[second] {
			second = c
		}
	}
	var total float64
	for c := 0; c < k; c++ {
		probs[c] = math.Exp(z[c] - z[best])
		total += probs[c]
	}
	for c := 0; c < k; c++ {
		probs[c] /= total
	}
	p := Prediction{Class: m.classes[best], Confidence: probs[best]}
	if second >= 0 {
		p.RunnerUp, p.RunnerUpP = m.classes[second], probs[second]
	}
	return p
}

// groupScale is the factor a group's sum is multiplied by: one over the
// square root of its feature count, except for the shape features.
func groupScale(g, n int) float64 {
	if g == groupShape {
		return groupWeight[g]
	}
	return groupWeight[g] / math.Sqrt(float64(n))
}

// groupWeight weighs the groups against each other (chosen on the dev
// split).
var groupWeight = [numGroups]float64{3, 3, 1, 0.5, 3}

// Contribution is one feature's part in a decision: what it adds to the
// winning class's logit minus what it adds to the runner-up's (summed over
// its occurrences).
type Contribution struct {
	Feature string  `json:"feature"` // 'n-gram', word, word pair, system:word or #shape
	Group   string  `json:"group"`
	Weight  float64 `json:"weight"`
}

// Explanation is a prediction with the features that decided it.
type Explanation struct {
	Prediction
	Probabilities map[Class]float64 `json:"probabilities"`
	Top           []Contribution    `json:"top"`
}

// explain scores in like predict and lists the n features that pushed the
// class furthest past the runner-up. It allocates; route-test uses it, the
// router does not.
func (m *Model) explain(in *modelInput, n int) Explanation {
	var refs []featRef
	s := scorer{m: m}
	x := extractor{score: &s, refs: &refs}
	x.extract(in)
	var probs [MaxModelClasses]float64
	p := m.finish(&s.sums, &x.counts, &probs)
	e := Explanation{Prediction: p, Probabilities: map[Class]float64{}}
	k := len(m.classes)
	for c := 0; c < k; c++ {
		e.Probabilities[m.classes[c]] = probs[c]
	}
	win, run := indexOf(m.classes, p.Class), indexOf(m.classes, p.RunnerUp)
	byName := map[string]int{}
	for _, r := range refs {
		row := m.w[bucket(r.hash, m.bits)*k:][:k]
		d := float64(row[win])
		if run >= 0 {
			d -= float64(row[run])
		}
		d *= float64(m.scale) * groupScale(r.group, x.counts[r.group])
		key := groupNames[r.group] + "\x00" + r.name
		if i, ok := byName[key]; ok {
			e.Top[i].Weight += d
			continue
		}
		byName[key] = len(e.Top)
		e.Top = append(e.Top, Contribution{r.name, groupNames[r.group], d})
	}
	slices.SortStableFunc(e.Top, func(a, b Contribution) int { return cmp.Compare(b.Weight, a.Weight) })
	e.Top = e.Top[:min(n, len(e.Top))]
	return e
}

func indexOf(cs []Class, c Class) int {
	for i, x := range cs {
		if x == c {
			return i
		}
	}
	return -1
}

// Explain classifies body with the classifier's model and explains the
// decision (n top features); for kind keywords it returns the keyword
// signals as the contributions. body must be a valid request.
func (c *Classifier) Explain(body []byte, n int) (Explanation, error) {
	f, err := c.Features(body)
	if err != nil {
		return Explanation{}, err
	}
	if c.model == nil {
		e := Explanation{Prediction: Prediction{Class: f.Class, Confidence: 1}}
		for _, s := range f.Signals {
			e.Top = append(e.Top, Contribution{Feature: s, Group: "keyword"})
		}
		return e, nil
	}
	var in modelInput
	c.features(body, &in, false)
	return c.model.explain(&in, n), nil
}
