package validate

import (
	"os"
	"testing"

	"github.com/tidwall/gjson"
)

// BenchmarkChat measures the validator against gjson.ValidBytes, the
// syntax-only pass it replaces in the router, on the router benchmark's
// bodies. Compare runs with benchstat:
//
//	go test -run XXX -bench . -count 10 ./filter/validate/ > new.txt
func BenchmarkChat(b *testing.B) {
	for _, size := range []string{"2k", "64k"} {
		body, err := os.ReadFile("../extproc/testdata/chat_" + size + ".json")
		if err != nil {
			b.Fatal(err)
		}
		b.Run("validate/"+size, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := Chat(body, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("gjson.ValidBytes/"+size, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !gjson.ValidBytes(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
