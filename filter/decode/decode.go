// Package decode undoes HTTP content codings (gzip, deflate, br, zstd) with
// a bound on the decoded size, for request bodies the router must read and
// for provider answers the upstream role must read. It owns no policy: the
// caller decides what a failure means for its client.
package decode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Errors Body and Reader return; test them with errors.Is.
var (
	// ErrUnsupported: a coding this package does not decode.
	ErrUnsupported = errors.New("unsupported content-encoding")
	// ErrTooLarge: the decoded body is larger than the limit.
	ErrTooLarge = errors.New("decoded body too large")
	// ErrCorrupt: the body is not valid data of the coding it claims.
	ErrCorrupt = errors.New("body does not match its content-encoding")
)

// Codings splits a Content-Encoding value into its codings, lowercased, in
// the order they were applied, leaving out identity. It reports
// ErrUnsupported for any other coding than gzip (x-gzip), deflate, br, zstd.
func Codings(contentEncoding string) ([]string, error) {
	var out []string
	for c := range strings.SplitSeq(contentEncoding, ",") {
		switch c = strings.ToLower(strings.TrimSpace(c)); c {
		case "", "identity":
		case "gzip", "x-gzip", "deflate", "br", "zstd":
			out = append(out, c)
		default:
			return nil, fmt.Errorf("%w %q", ErrUnsupported, c)
		}
	}
	return out, nil
}

// Body returns body with every coding of contentEncoding undone (the last
// applied first), refusing a result larger than limit bytes. With no coding
// (or only identity) it returns body itself.
func Body(contentEncoding string, body []byte, limit int64) ([]byte, error) {
	codings, err := Codings(contentEncoding)
	if err != nil || len(codings) == 0 {
		return body, err
	}
	for i := len(codings) - 1; i >= 0; i-- {
		r, err := reader(codings[i], bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		body, err = readAll(r, limit)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", codings[i], err)
		}
	}
	return body, nil
}

// Reader returns a reader of r's decoded bytes for one coding, as Codings
// names it. Reads report ErrCorrupt (wrapped) when the data is not valid; the
// caller bounds how much it reads. Close releases the decoder.
func Reader(coding string, r io.Reader) (io.ReadCloser, error) {
	return reader(coding, r)
}

func reader(coding string, r io.Reader) (io.ReadCloser, error) {
	switch coding {
	case "gzip", "x-gzip":
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, corrupt(err)
		}
		return corruptReader{z}, nil
	case "deflate":
		// RFC 9110 deflate is zlib (RFC 1950); some clients send raw
		// deflate (RFC 1951), which browsers accept too.
		br := bufio.NewReader(r)
		if h, _ := br.Peek(2); len(h) == 2 && h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
			z, err := zlib.NewReader(br)
			if err != nil {
				return nil, corrupt(err)
			}
			return corruptReader{z}, nil
		}
		return corruptReader{flate.NewReader(br)}, nil
	case "br":
		return corruptReader{io.NopCloser(brotli.NewReader(r))}, nil
	case "zstd":
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			// RFC 9659: HTTP zstd windows are at most 8 MB.
			zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			return nil, corrupt(err)
		}
		return corruptReader{zstdCloser{z}}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnsupported, coding)
}

// readAll reads r to its end, refusing more than limit bytes.
func readAll(r io.ReadCloser, limit int64) ([]byte, error) {
	defer r.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	switch {
	case err != nil:
		return nil, err
	case n > limit:
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return buf.Bytes(), nil
}

func corrupt(err error) error { return fmt.Errorf("%w: %v", ErrCorrupt, err) }

// corruptReader marks every failure but io.EOF as ErrCorrupt.
type corruptReader struct{ io.ReadCloser }

func (c corruptReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = corrupt(err)
	}
	return n, err
}

type zstdCloser struct{ *zstd.Decoder }

func (z zstdCloser) Close() error { z.Decoder.Close(); return nil }
