package semantic

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/llmproc/llmproc/filter/cache"
)

// Why the index is flat: BenchmarkSearch compares the flat scan (Index)
// with an HNSW graph (hnsw_test.go; M 16, efConstruction 100, efSearch 64)
// over one bucket of n unit vectors, for the stand-in's 256 dims and for
// 1536 (text-embedding-3-small). A bucket holds the requests that share
// every other byte — system prompt, earlier turns, model, tenant — so even
// a busy FAQ route's bucket holds hundreds to a few thousand turns within a
// TTL; max_bucket_entries bounds it. Figures are in the README (cache
// section) with the command; TestHNSWRecall shows what HNSW gives up.

func randomUnit(rng *rand.Rand, dims int) []float32 {
	v := make([]float32, dims)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return Normalize(v)
}

// near is v moved a little: a paraphrase's vector.
func near(rng *rand.Rand, v []float32) []float32 {
	out := make([]float32, len(v))
	sigma := 0.2 / float32(math.Sqrt(float64(len(v)))) // similarity about 0.98
	for i := range v {
		out[i] = v[i] + sigma*float32(rng.NormFloat64())
	}
	return Normalize(out)
}

func BenchmarkSearch(b *testing.B) {
	for _, dims := range []int{256, 1536} {
		for _, n := range []int{1000, 10000} {
			rng := rand.New(rand.NewPCG(uint64(n), uint64(dims)))
			vecs := make([][]float32, n)
			for i := range vecs {
				vecs[i] = randomUnit(rng, dims)
			}
			queries := make([][]float32, 64)
			for i := range queries {
				queries[i] = near(rng, vecs[rng.IntN(n)])
			}
			b.Run(fmt.Sprintf("flat/dims=%d/n=%d", dims, n), func(b *testing.B) {
				ix := NewIndex(n, n, time.Hour)
				bk := bucketOf("b")
				for i, v := range vecs {
					ix.Add(bk, Record{Entry: entryOf(fmt.Sprint(i)), Vector: v, Stored: t0}, t0)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if len(ix.Search(bk, queries[i%len(queries)], 0.9, candidates, t0)) == 0 {
						b.Fatal("no match")
					}
				}
			})
			if n > 1000 && testing.Short() {
				continue
			}
			b.Run(fmt.Sprintf("hnsw/dims=%d/n=%d", dims, n), func(b *testing.B) {
				g := newHNSW(16, 100, 64)
				for _, v := range vecs {
					g.add(v)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					g.search(queries[i%len(queries)], candidates)
				}
			})
		}
	}
}

// TestHNSWRecall: how often HNSW's best candidate is the true best one (the
// flat scan's). A miss there is a lost hit, never a wrong one.
func TestHNSWRecall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1000-vector graph")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	const n, dims = 1000, 256
	g := newHNSW(16, 100, 64)
	ix := NewIndex(n, n, time.Hour)
	bk := bucketOf("b")
	vecs := make([][]float32, n)
	for i := range vecs {
		vecs[i] = randomUnit(rng, dims)
		g.add(vecs[i])
		ix.Add(bk, Record{Entry: entryOf(fmt.Sprint(i)), Text: fmt.Sprint(i), Vector: vecs[i], Stored: t0}, t0)
	}
	agree := 0
	const q = 200
	for range q {
		i := rng.IntN(n)
		v := near(rng, vecs[i])
		flat := ix.Search(bk, v, -1, 1, t0)
		h := g.search(v, 1)
		if len(flat) == 1 && len(h) == 1 && flat[0].Text == fmt.Sprint(h[0].id) {
			agree++
		}
	}
	t.Logf("HNSW top-1 agrees with the exact scan on %d/%d queries", agree, q)
}

// BenchmarkBucket: the router's semantic work before the search, for a
// 2 KB request of each client API: the latest user turn found (Turn) and the
// bucket hashed (BucketOf) on a body already parsed for the exact key
// (cache.Parse is the exact key's cost, BenchmarkKeyOf in filter/cache).
func BenchmarkBucket(b *testing.B) {
	turn := strings.Repeat("Hi, what's your refund policy for orders over 50 dollars, please? ", 5)
	for _, a := range apiBodies {
		body := a.body(turn)
		for n := 1; len(body) < 2048; n++ {
			body = bytes.Replace(a.body(turn), []byte("You are a support agent."), []byte(strings.Repeat("You are a helpful support agent for an online shop. ", n)), 1)
		}
		in := cache.KeyInput{Tenant: "t", ClientSchema: a.schema, Endpoint: a.endpoint, Pool: "p", Model: "mini"}
		b.Run(strings.ReplaceAll(a.name, " ", "-"), func(b *testing.B) {
			d, err := cache.Parse(body)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Release()
			d.Key(in) // the canonical form is written once, by the exact key
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_, at, ok := Turn(d, a.api)
				if !ok {
					b.Fatal("no turn")
				}
				BucketOf(d, in, at)
			}
		})
	}
}
