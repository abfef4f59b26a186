package semantic

import (
	"container/list"
	"slices"
	"sync"
	"time"
)

// Record is one stored answer of a bucket, as the semantic tier knows it.
type Record struct {
	Entry     [32]byte // the cache.Key its answer is stored under
	RequestID string   // the request that was answered
	Text      string   // its latest user turn, for the guard
	Vector    []float32
	Stored    time.Time
}

// Match is a record and its cosine similarity to the vector searched for.
type Match struct {
	Record
	Similarity float32
}

// Index is the in-process search: per bucket, a flat array of unit vectors
// scanned in full (see bench_test.go for why flat, not HNSW), at most
// maxBucket records a bucket (the oldest go first) and maxEntries in all
// (the least recently used bucket gives up its oldest). Records older than
// ttl are never returned and are dropped as new ones arrive. Safe for
// concurrent use.
type Index struct {
	mu                    sync.Mutex
	buckets               map[Bucket]*bucket
	lru                   list.List // of *bucket, most recently used at the front
	total                 int
	maxEntries, maxBucket int
	ttl                   time.Duration
}

type bucket struct {
	id   Bucket
	recs []Record
	// vecs holds recs[i].Vector at [i*dims:(i+1)*dims], contiguous for the
	// scan; every record of a bucket has the bucket's dims.
	vecs   []float32
	dims   int
	cursor string // the shared stream's last id read into the bucket
	el     *list.Element
}

// NewIndex returns an empty index with the given bounds (each at least 1).
func NewIndex(maxEntries, maxBucket int, ttl time.Duration) *Index {
	maxEntries, maxBucket = max(maxEntries, 1), max(maxBucket, 1)
	return &Index{buckets: map[Bucket]*bucket{}, maxEntries: maxEntries, maxBucket: min(maxBucket, maxEntries), ttl: ttl}
}

// Len is the number of records held.
func (ix *Index) Len() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.total
}

// Search returns up to k records of bucket b whose similarity to v (a unit
// vector) is at least min and which are younger than the ttl at now, best
// first.
func (ix *Index) Search(b Bucket, v []float32, minSim float32, k int, now time.Time) []Match {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	bk := ix.buckets[b]
	if bk == nil || bk.dims != len(v) || k <= 0 {
		return nil
	}
	ix.lru.MoveToFront(bk.el)
	notBefore := now.Add(-ix.ttl)
	var out []Match
	for i := range bk.recs {
		s := dot(v, bk.vecs[i*bk.dims:(i+1)*bk.dims])
		if s < minSim || !bk.recs[i].Stored.After(notBefore) {
			continue
		}
		if len(out) == k && s <= out[k-1].Similarity {
			continue
		}
		m := Match{Record: bk.recs[i], Similarity: s}
		m.Vector = nil // the array is the index's
		at, _ := slices.BinarySearchFunc(out, s, func(m Match, s float32) int {
			switch {
			case m.Similarity > s:
				return -1
			case m.Similarity < s:
				return 1
			}
			return 0
		})
		if len(out) < k {
			out = append(out, Match{})
		}
		copy(out[at+1:], out[at:len(out)-1])
		out[at] = m
	}
	return out
}

// Add stores r in bucket b (replacing a record for the same entry).
func (ix *Index) Add(b Bucket, r Record, now time.Time) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.add(b, r, now)
}

// cursor is the shared stream id bucket b has read up to ("" for none).
func (ix *Index) cursor(b Bucket) string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if bk := ix.buckets[b]; bk != nil {
		return bk.cursor
	}
	return ""
}

// addSynced adds records read from the shared stream of b up to id cursor.
func (ix *Index) addSynced(b Bucket, recs []Record, cursor string, now time.Time) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, r := range recs {
		ix.add(b, r, now)
	}
	// When every record read had expired no bucket exists, and the next
	// sync reads them again: the stream itself expires with the ttl.
	if bk := ix.buckets[b]; bk != nil {
		bk.cursor = cursor
	}
}

// bucket returns b's bucket, created (for vectors of dims) if absent.
func (ix *Index) bucket(b Bucket, dims int) *bucket {
	bk := ix.buckets[b]
	if bk == nil {
		bk = &bucket{id: b, dims: dims}
		bk.el = ix.lru.PushFront(bk)
		ix.buckets[b] = bk
	}
	return bk
}

func (ix *Index) add(b Bucket, r Record, now time.Time) {
	if len(r.Vector) == 0 || !r.Stored.After(now.Add(-ix.ttl)) {
		return
	}
	bk := ix.bucket(b, len(r.Vector))
	ix.lru.MoveToFront(bk.el)
	if bk.dims != len(r.Vector) { // the embeddings model changed: start over
		ix.total -= len(bk.recs)
		bk.recs, bk.vecs, bk.dims = bk.recs[:0], bk.vecs[:0], len(r.Vector)
	}
	// Drop expired records from the front (they arrive in about Stored order).
	n := 0
	for n < len(bk.recs) && !bk.recs[n].Stored.After(now.Add(-ix.ttl)) {
		n++
	}
	ix.dropFront(bk, n)
	for i := range bk.recs {
		if bk.recs[i].Entry == r.Entry {
			copy(bk.vecs[i*bk.dims:], r.Vector)
			r.Vector = bk.vecs[i*bk.dims : (i+1)*bk.dims]
			bk.recs[i] = r
			return
		}
	}
	if len(bk.recs) >= ix.maxBucket {
		ix.dropFront(bk, len(bk.recs)-ix.maxBucket+1)
	}
	bk.vecs = append(bk.vecs, r.Vector...)
	bk.recs = append(bk.recs, r)
	ix.total++
	// Re-point every record's Vector into the (possibly moved) array.
	for i := range bk.recs {
		bk.recs[i].Vector = bk.vecs[i*bk.dims : (i+1)*bk.dims : (i+1)*bk.dims]
	}
	for ix.total > ix.maxEntries {
		victim := ix.lru.Back().Value.(*bucket)
		if len(victim.recs) == 0 || (victim == bk && ix.lru.Len() > 1) {
			victim = ix.evictable(bk)
		}
		ix.dropFront(victim, 1)
		if len(victim.recs) == 0 && victim != bk {
			ix.lru.Remove(victim.el)
			delete(ix.buckets, victim.id)
		}
	}
}

// evictable is the least recently used bucket other than keep that holds a
// record, else keep.
func (ix *Index) evictable(keep *bucket) *bucket {
	for e := ix.lru.Back(); e != nil; e = e.Prev() {
		if bk := e.Value.(*bucket); bk != keep && len(bk.recs) > 0 {
			return bk
		}
	}
	return keep
}

// dropFront removes bk's n oldest records.
func (ix *Index) dropFront(bk *bucket, n int) {
	if n <= 0 {
		return
	}
	n = min(n, len(bk.recs))
	bk.recs = append(bk.recs[:0], bk.recs[n:]...)
	bk.vecs = append(bk.vecs[:0], bk.vecs[n*bk.dims:]...)
	for i := range bk.recs {
		bk.recs[i].Vector = bk.vecs[i*bk.dims : (i+1)*bk.dims : (i+1)*bk.dims]
	}
	ix.total -= n
}
