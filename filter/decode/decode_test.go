package decode

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

func encode(t testing.TB, coding string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w, _ = zlib.NewWriterLevel(&buf, zlib.DefaultCompression)
	case "rawdeflate":
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		w, _ = zstd.NewWriter(&buf)
	default:
		t.Fatalf("no encoder %q", coding)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBody(t *testing.T) {
	plain := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("hello ", 200) + `"}]}`)
	gz := encode(t, "gzip", plain)
	tests := []struct {
		name, encoding string
		body           []byte
		limit          int64
		want           []byte
		err            error
	}{
		{"none", "", plain, 1 << 20, plain, nil},
		{"identity", "identity", plain, 1 << 20, plain, nil},
		{"gzip", "gzip", gz, 1 << 20, plain, nil},
		{"x-gzip upper case", "X-GZIP", gz, 1 << 20, plain, nil},
		{"deflate (zlib)", "deflate", encode(t, "deflate", plain), 1 << 20, plain, nil},
		{"deflate (raw)", "deflate", encode(t, "rawdeflate", plain), 1 << 20, plain, nil},
		{"br", "br", encode(t, "br", plain), 1 << 20, plain, nil},
		{"zstd", "zstd", encode(t, "zstd", plain), 1 << 20, plain, nil},
		{"gzip then br", "gzip, br", encode(t, "br", gz), 1 << 20, plain, nil},
		{"exactly the limit", "gzip", gz, int64(len(plain)), plain, nil},
		{"one byte over the limit", "gzip", gz, int64(len(plain)) - 1, nil, ErrTooLarge},
		{"bomb", "gzip", encode(t, "gzip", make([]byte, 64<<20)), 1 << 20, nil, ErrTooLarge},
		{"plain body claiming gzip", "gzip", plain, 1 << 20, nil, ErrCorrupt},
		{"plain body claiming br", "br", plain, 1 << 20, nil, ErrCorrupt},
		{"plain body claiming zstd", "zstd", plain, 1 << 20, nil, ErrCorrupt},
		{"plain body claiming deflate", "deflate", plain, 1 << 20, nil, ErrCorrupt},
		{"truncated gzip", "gzip", gz[:len(gz)/2], 1 << 20, nil, ErrCorrupt},
		{"gzip with plain bytes after it", "gzip", append(bytes.Clone(gz), "{}"...), 1 << 20, nil, ErrCorrupt},
		{"empty body claiming gzip", "gzip", nil, 1 << 20, nil, ErrCorrupt},
		{"unknown coding", "compress", gz, 1 << 20, nil, ErrUnsupported},
		{"unknown among known", "gzip, snappy", gz, 1 << 20, nil, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Body(tt.encoding, tt.body, tt.limit)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && !bytes.Equal(got, tt.want) {
				t.Fatalf("decoded %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}

// FuzzBody: any bytes under any coding decode or fail with one of the
// package's errors, within the limit, without panicking.
func FuzzBody(f *testing.F) {
	plain := []byte(`{"model":"m","messages":[]}`)
	for _, c := range []string{"gzip", "deflate", "br", "zstd"} {
		f.Add(c, encode(f, c, plain))
		f.Add(c, plain)
	}
	f.Fuzz(func(t *testing.T, coding string, body []byte) {
		const limit = 1 << 16
		got, err := Body(coding, body, limit)
		switch {
		case err == nil && int64(len(got)) > limit:
			t.Fatalf("%d bytes decoded past the limit", len(got))
		case err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupported):
			t.Fatalf("unexpected error %v", err)
		}
	})
}
