package extproc

import (
	"bytes"
	"errors"
	"testing"

	"github.com/llmproc/llmproc/filter/decode"
)

// feedAll feeds data to a decoder in pieces of n bytes.
func feedAll(d *streamDecoder, data []byte, n int) ([]byte, error) {
	var out []byte
	for len(data) > 0 {
		k := min(n, len(data))
		o, err := d.Feed(data[:k], false)
		out = append(out, o...)
		if err != nil {
			return out, err
		}
		data = data[k:]
	}
	o, err := d.Feed(nil, true)
	return append(out, o...), err
}

func TestStreamDecoderSplitsAnywhere(t *testing.T) {
	plain := bytes.Repeat([]byte("data: {\"choices\":[]}\n\n"), 200)
	z := gzipped(t, plain)
	for _, n := range []int{1, 7, 100, len(z)} {
		d := newStreamDecoder([]string{"gzip"}, 1<<20)
		out, err := feedAll(d, z, n)
		if err != nil || !bytes.Equal(out, plain) {
			t.Errorf("pieces of %d: %d bytes, %v", n, len(out), err)
		}
	}
}

func TestStreamDecoderFailures(t *testing.T) {
	small := gzipped(t, []byte("data: {\"choices\":[]}\n\n"))
	bomb := gzipped(t, bytes.Repeat([]byte("x"), 4<<20)) // 4 MiB in a few KiB
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"cut inside the compressed data", small[:len(small)/2], decode.ErrCorrupt},
		{"not gzip", []byte("plain text, labelled gzip"), decode.ErrCorrupt},
		{"data after the end", append(bytes.Clone(small), "tail"...), decode.ErrCorrupt},
		{"a bomb past the bound", bomb, decode.ErrTooLarge},
	}
	for _, tt := range tests {
		d := newStreamDecoder([]string{"gzip"}, 1<<20)
		_, err := feedAll(d, tt.data, 1<<20)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if _, again := d.Feed([]byte("more"), true); !errors.Is(again, tt.want) {
			t.Errorf("%s: the next Feed says %v", tt.name, again)
		}
		select {
		case <-d.finished:
		default:
			t.Errorf("%s: the decoder goroutine still runs", tt.name)
		}
	}
}

func TestStreamDecoderCloseMidAnswer(t *testing.T) {
	z := gzipped(t, []byte("hello"))
	d := newStreamDecoder([]string{"gzip"}, 1<<20)
	if _, err := d.Feed(z[:5], false); err != nil {
		t.Fatal(err)
	}
	d.Close() // the stream ends before the answer does
	<-d.finished
	d.Close()
}

func FuzzStreamDecoder(f *testing.F) {
	f.Add(gzipped(f, []byte("data: hi\n\n")), uint8(3), "gzip")
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, uint8(1), "gzip")
	f.Add([]byte{0x78, 0x9c, 1, 2, 3}, uint8(2), "deflate")
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, uint8(4), "zstd")
	f.Add([]byte{0x0b, 0x02, 0x80}, uint8(1), "br")
	f.Fuzz(func(t *testing.T, data []byte, piece uint8, coding string) {
		codings, err := decode.Codings(coding)
		if err != nil || len(codings) == 0 {
			return
		}
		d := newStreamDecoder(codings, 64<<10)
		n := int(piece) + 1
		for len(data) > 0 {
			k := min(n, len(data))
			out, err := d.Feed(data[:k], false)
			if len(out) > 64<<10+32<<10 {
				t.Fatalf("one chunk decoded to %d bytes past the bound", len(out))
			}
			if err != nil {
				return
			}
			data = data[k:]
		}
		d.Feed(nil, true) //nolint:errcheck
	})
}
