package translate

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/llmproc/llmproc/filter/config"
)

// Benchmarks of the embeddings translation: the request for each provider
// (16 inputs of about 200 bytes; Titan one, SigV4 signing included) and the
// answer back (16 vectors of 1536 numbers, as floats and as base64).
//
//	go test -run '^$' -bench 'Embeddings' -benchmem -count 10 ./filter/translate > new.txt
//	benchstat old.txt new.txt

func embedBenchBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"model":"text-embedding-3-small","dimensions":1536,"input":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q", strings.Repeat("the quick brown fox jumps over the lazy dog ", 4)+strconv.Itoa(i))
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func BenchmarkEmbeddingsRequest(b *testing.B) {
	s := embedSet()
	defer s.Close()
	for _, c := range []struct {
		name, schema, model string
		inputs              int
	}{
		{"gemini", "gemini", "gemini-embedding-001", 16},
		{"vertex", "vertex", "text-embedding-005", 16},
		{"cohere", "bedrock", "cohere.embed-v4:0", 16},
		{"titan", "bedrock", "amazon.titan-embed-text-v2:0", 1},
	} {
		body := embedBenchBody(c.inputs)
		be := &config.RBackend{Name: "x", Schema: c.schema, Credential: "AKIDEXAMPLE:secret", Host: "h", Port: 443, TLS: true,
			Vertex: config.VertexOptions{Project: "p", Region: "r"}, Bedrock: config.BedrockOptions{Region: "us-east-1"}}
		r := &Request{Body: body, Backend: be, Model: c.model}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Embeddings(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEmbeddingsAnswer(b *testing.B) {
	const inputs, dims = 16, 1536
	var sb strings.Builder
	sb.WriteString(`{"embeddings":[`)
	for i := range inputs {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"values":[`)
		for j := range dims {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.FormatFloat(float64(float32(float64((i*dims+j)%2001-1000)/1e5)), 'g', -1, 32))
		}
		sb.WriteString(`]}`)
	}
	sb.WriteString(`],"usageMetadata":{"promptTokenCount":800}}`)
	answer := []byte(sb.String())
	texts := make([]string, inputs)
	for _, base64 := range []bool{false, true} {
		b.Run(map[bool]string{false: "float", true: "base64"}[base64], func(b *testing.B) {
			call := &EmbeddingsCall{kind: embedGemini, req: embedRequest{texts: texts, base64: base64}, onError: gemini{}}
			b.SetBytes(int64(len(answer)))
			b.ReportAllocs()
			for b.Loop() {
				ans := call.Response(&Response{Status: 200, Model: "gemini-embedding-001"})
				if out, _ := ans.Body.Chunk(answer, true); len(out) < inputs*dims {
					b.Fatalf("answer %d bytes", len(out))
				}
			}
		})
	}
}
