package fake

import (
	"encoding/base64"
	"encoding/binary"
	"math"

	"github.com/llmproc/llmproc/filter/semantic"
)

// EmbedDims is how many numbers a fake embedding has unless asked for
// another size.
const EmbedDims = 4

// Vector is the embedding every fake provider answers for text: dims
// numbers (EmbedDims when dims <= 0), semantic.StandIn's hashed character
// trigram bag of the text divided by 256, so a test knows each fake's answer
// without asking it, and texts that share most of their characters get
// near vectors (what the semantic cache tier's e2e needs). Each number is a
// multiple of 1/256, exact in float32 and in JSON, so floats and base64
// decode to the same values whatever the path.
func Vector(text string, dims int) []float64 {
	if dims <= 0 {
		dims = EmbedDims
	}
	counts := semantic.StandIn(text, dims)
	out := make([]float64, dims)
	for i, c := range counts {
		out[i] = float64(c) / 256
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
