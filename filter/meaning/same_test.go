package meaning

import (
	"slices"
	"strings"
	"testing"
)

// checkSame fails unless Normalize and Tokens give the reference's
// (meaning_ref_test.go) outputs for s.
func checkSame(t *testing.T, s string) {
	t.Helper()
	if got, want := Normalize(s), refNormalize(s); got != want {
		t.Fatalf("Normalize(%q) = %q, the reference gives %q", s, got, want)
	}
	if got, want := Tokens(s), refTokens(s); !slices.Equal(got, want) {
		t.Fatalf("Tokens(%q) = %q, the reference gives %q", s, got, want)
	}
}

// sameSeeds are texts every rule of Normalize touches.
var sameSeeds = []string{
	"", " ", "\n\n", "Hi, what's your refund policy for orders over 50 dollars, please? ",
	"HELLO THERE, WHAT IS THE TIME", "Please tell me about Paris. Thanks!", "I can't do it; it isn't mine, won't you?",
	"Um, what is the `x := 1` thing at https://example.com/a?b=c or www.Example.com?", "Bonjour, qu'est-ce que c'est ? Merci",
	"¿Qué hora es? ¡Hola!", "Kannst du bitte erklären, was das ist?", "这是什么。请告诉我、谢谢", "東京の天気は？", "안녕하세요, 날씨 어때요?",
	"Привет, как дела?", "x² + y³ ≤ ﬁve “quoted text” «guillemets» 「コーナー」 ‘single’ it's 'quoted here' don’t",
	"func main() { return }", "Tell me\r\nabout\n it", "Hello there, can you please help", "Thanks", "please",
	"Hi,\n\nwhat is 2+2?\n", "C: drive? a; b: c.", "ain't it NOT so", "Ça va? L'homme est là. D'accord.",
	"Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ", "e-mail me at a@b.co, thanks", "```\ncode\n``` and then?", "\xff\xfe bad bytes",
}

func TestSameNormalize(t *testing.T) {
	for _, s := range sameSeeds {
		checkSame(t, s)
	}
	pairs, err := LoadPairs("testdata/pairs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		checkSame(t, p.A)
		checkSame(t, p.B)
	}
}

func FuzzSameNormalize(f *testing.F) {
	for _, s := range sameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkSame(t, s) })
}

// BenchmarkNormalizeRef is BenchmarkNormalize for the reference, measured
// in the same run (the machine's load moves absolute figures).
func BenchmarkNormalizeRef(b *testing.B) {
	turn := strings.Repeat("Hi, what's your refund policy for orders over 50 dollars, please? ", 5)
	b.ReportAllocs()
	b.SetBytes(int64(len(turn)))
	for b.Loop() {
		refNormalize(turn)
	}
}
