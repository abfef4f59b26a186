package fake

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"math"
)

// EmbedDims is how many numbers a fake embedding has unless asked for
// another size.
const EmbedDims = 4

// Vector is the embedding every fake provider answers for text: dims
// numbers (EmbedDims when dims <= 0) derived from an FNV hash of the text,
// so a test knows each fake's answer without asking it. Each number is a
// multiple of 1/256 in [-1, 1), exact in float32 and in JSON, so floats and
// base64 decode to the same values whatever the path.
func Vector(text string, dims int) []float64 {
	if dims <= 0 {
		dims = EmbedDims
	}
	h := fnv.New64a()
	h.Write([]byte(text)) //nolint:errcheck // never fails
	seed := h.Sum64()
	out := make([]float64, dims)
	for i := range out {
		seed = seed*6364136223846793005 + 1442695040888963407
		out[i] = float64(int64(seed>>56)-128) / 256
	}
	return out
}

// Base64Vector is v as OpenAI's base64 encoding: little-endian float32s.
func Base64Vector(v []float64) string {
	raw := make([]byte, 0, 4*len(v))
	for _, x := range v {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(x)))
	}
	return base64.StdEncoding.EncodeToString(raw)
}
