package semantic

import (
	"container/heap"
	"math"
	"math/rand/v2"
)

// hnsw is a minimal HNSW graph (Malkov & Yashunin) over unit vectors with
// inner-product similarity, written only to measure it against the flat
// scan in bench_test.go; it is not used by the tier.
type hnsw struct {
	m, efConstruction, efSearch int
	levelMult                   float64
	vecs                        [][]float32
	links                       [][][]int32 // node, layer → neighbours
	entry                       int
	top                         int
	rng                         *rand.Rand
	seen                        []uint32 // per node, the epoch it was last visited in
	epoch                       uint32
}

func newHNSW(m, efConstruction, efSearch int) *hnsw {
	return &hnsw{m: m, efConstruction: efConstruction, efSearch: efSearch, levelMult: 1 / math.Log(float64(m)),
		entry: -1, rng: rand.New(rand.NewPCG(1, 2))}
}

type cand struct {
	id  int32
	sim float32
}

// maxHeap pops the most similar first; minHeap the least similar first.
type maxHeap []cand
type minHeap []cand

func (h maxHeap) Len() int           { return len(h) }
func (h maxHeap) Less(i, j int) bool { return h[i].sim > h[j].sim }
func (h maxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *maxHeap) Push(x any)        { *h = append(*h, x.(cand)) }
func (h *maxHeap) Pop() any          { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }
func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return h[i].sim < h[j].sim }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(cand)) }
func (h *minHeap) Pop() any          { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }

func (g *hnsw) searchLayer(q []float32, entry int32, ef, layer int) []cand {
	g.epoch++
	e := cand{entry, dot(q, g.vecs[entry])}
	g.seen[entry] = g.epoch
	cands := &maxHeap{e}
	best := &minHeap{e}
	for cands.Len() > 0 {
		c := heap.Pop(cands).(cand)
		if c.sim < (*best)[0].sim && best.Len() >= ef {
			break
		}
		for _, n := range g.links[c.id][layer] {
			if g.seen[n] == g.epoch {
				continue
			}
			g.seen[n] = g.epoch
			s := dot(q, g.vecs[n])
			if best.Len() < ef || s > (*best)[0].sim {
				heap.Push(cands, cand{n, s})
				heap.Push(best, cand{n, s})
				if best.Len() > ef {
					heap.Pop(best)
				}
			}
		}
	}
	return *best
}

func (g *hnsw) add(v []float32) {
	id := int32(len(g.vecs))
	level := int(-math.Log(1-g.rng.Float64()) * g.levelMult)
	g.vecs = append(g.vecs, v)
	g.seen = append(g.seen, 0)
	g.links = append(g.links, make([][]int32, level+1))
	if g.entry < 0 {
		g.entry, g.top = int(id), level
		return
	}
	ep := int32(g.entry)
	for l := g.top; l > level; l-- {
		r := g.searchLayer(v, ep, 1, l)
		ep = r[0].id
	}
	for l := min(level, g.top); l >= 0; l-- {
		found := g.searchLayer(v, ep, g.efConstruction, l)
		sortDesc(found)
		maxN := g.m
		if l == 0 {
			maxN = 2 * g.m
		}
		for i := 0; i < len(found) && i < g.m; i++ {
			n := found[i].id
			g.links[id][l] = append(g.links[id][l], n)
			g.links[n][l] = append(g.links[n][l], id)
			if len(g.links[n][l]) > maxN { // keep the most similar
				nb := make([]cand, len(g.links[n][l]))
				for j, x := range g.links[n][l] {
					nb[j] = cand{x, dot(g.vecs[n], g.vecs[x])}
				}
				sortDesc(nb)
				g.links[n][l] = g.links[n][l][:0]
				for _, x := range nb[:maxN] {
					g.links[n][l] = append(g.links[n][l], x.id)
				}
			}
		}
		ep = found[0].id
	}
	if level > g.top {
		g.entry, g.top = int(id), level
	}
}

func (g *hnsw) search(q []float32, k int) []cand {
	ep := int32(g.entry)
	for l := g.top; l > 0; l-- {
		ep = g.searchLayer(q, ep, 1, l)[0].id
	}
	r := g.searchLayer(q, ep, max(g.efSearch, k), 0)
	sortDesc(r)
	return r[:min(k, len(r))]
}

func sortDesc(c []cand) {
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j].sim > c[j-1].sim; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}
