package translate

import (
	"bytes"
	"os"
	"testing"
)

// Shared helpers for the providers' golden and stream tests. The -update
// flag is declared in openai_test.go.

// golden compares got with the file at path byte for byte, or rewrites the
// file with got when the tests run with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		writeFile(t, path, got)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs\n got %s\nwant %s", path, got, want)
	}
}

// feedBody sends chunks through b in order, the last one with eos, and
// returns everything the client would receive.
func feedBody(b Body, chunks ...[]byte) []byte {
	var out []byte
	for i, c := range chunks {
		o, pass := b.Chunk(c, i == len(chunks)-1)
		if pass {
			o = c
		}
		out = append(out, o...)
	}
	return out
}

// splitEverywhere feeds input through a fresh Body whole, then split in two
// at every byte boundary (and as an empty end-of-stream chunk after it), and
// fails unless every split yields the same output as the whole. It returns
// the whole output.
func splitEverywhere(t *testing.T, input []byte, newBody func() Body) []byte {
	t.Helper()
	want := feedBody(newBody(), input)
	if got := feedBody(newBody(), input, nil); !bytes.Equal(got, want) {
		t.Fatalf("with an empty eos chunk after the input:\n got %s\nwant %s", got, want)
	}
	for i := 0; i <= len(input); i++ {
		got := feedBody(newBody(), input[:i:i], input[i:])
		if !bytes.Equal(got, want) {
			t.Fatalf("split at byte %d:\n got %s\nwant %s", i, got, want)
		}
	}
	return want
}
