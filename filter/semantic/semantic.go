// Package semantic is the response cache's semantic tier: a request whose
// latest user turn means the same as a stored one, everything else being
// equal, is answered with the stored answer.
//
// Everything but the latest user turn is matched exactly: the request with
// that turn blanked, with its tenant, client API, endpoint, pool and model,
// hashes to a Bucket (Turn, BucketOf), and only entries of the same bucket
// are ever compared. Within a bucket the turn's embedding (Embedder, from an
// embeddings pool of the config, its own answers cached by text) is compared
// with the stored ones (Index, a bounded flat search in process, shared
// across replicas through Redis by Shared), and a candidate is served only
// when its similarity reaches the threshold and a guard (the same
// meaning-bearing-token check as the normalized tier: numbers, negations,
// entities, quoted strings) passes on the two texts. Tier puts these
// together; the extproc package calls it.
package semantic

import (
	"math"
)

// Bucket identifies the requests that share everything but their latest
// user turn: a SHA-256, as cache.Key.
type Bucket [32]byte

// Normalize scales v to unit length in place (a zero vector stays zero)
// and returns it, so that a dot product is the cosine similarity.
func Normalize(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return v
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
	return v
}

// dot is the dot product of two vectors of the same length.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}
