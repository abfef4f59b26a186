package extproc

import (
	"errors"
	"fmt"
	"io"

	"github.com/llmproc/llmproc/filter/decode"
)

// streamDecoder undoes a provider answer's content codings chunk by chunk,
// as Envoy hands the answer over (response body in STREAMED mode). The
// decoders of filter/decode read from an io.Reader, so one goroutine per
// answer runs them over the chunks fed so far; Feed hands it a chunk and
// waits until it has decoded all it can and asks for more, so every event
// a provider flushed comes out in the reply to the chunk that carried it.
// What one chunk decodes to is bounded: past limit bytes Feed reports
// decode.ErrTooLarge (a compression bomb ends there, not in memory).
type streamDecoder struct {
	in       chan []byte   // chunks to decode; closed at the end of the answer
	hungry   chan struct{} // the decoders consumed every chunk fed and want more
	finished chan struct{} // the goroutine returned
	limit    int

	// Written by the goroutine, read by Feed only after hungry or finished.
	out []byte
	err error

	closed bool
}

func newStreamDecoder(codings []string, limit int) *streamDecoder {
	d := &streamDecoder{in: make(chan []byte), hungry: make(chan struct{}), finished: make(chan struct{}), limit: limit}
	go d.run(codings)
	return d
}

// Feed decodes chunk and returns its decoded bytes; eos ends the answer and
// reports a stream cut inside the compressed data. After an error every
// later Feed returns it again.
func (d *streamDecoder) Feed(chunk []byte, eos bool) ([]byte, error) {
	if d.closed {
		if d.err == nil && len(chunk) > 0 {
			d.err = fmt.Errorf("%w: data after the end of the compressed answer", decode.ErrCorrupt)
		}
		return nil, d.err
	}
	if len(chunk) > 0 {
		select {
		case d.in <- chunk:
			select {
			case <-d.hungry:
			case <-d.finished:
				d.closed = true
			}
		case <-d.finished:
			d.closed = true
			if d.err == nil {
				d.err = fmt.Errorf("%w: data after the end of the compressed answer", decode.ErrCorrupt)
			}
		}
	}
	if eos && !d.closed {
		d.Close()
		if errors.Is(d.err, errStopped) {
			d.err = fmt.Errorf("%w: the answer ends inside its compressed data", decode.ErrCorrupt)
		}
	}
	out := d.out
	d.out = nil
	return out, d.err
}

// Close stops the decoder; the answer is over (or abandoned).
func (d *streamDecoder) Close() {
	if d.closed {
		return
	}
	d.closed = true
	close(d.in)
	<-d.finished
}

// errStopped: Close ended the input before the decoders reached the end of
// their data.
var errStopped = errors.New("decoder stopped before the end of its data")

func (d *streamDecoder) run(codings []string) {
	defer close(d.finished)
	src := &chunkSource{d: d}
	var r io.Reader = src
	for i := len(codings) - 1; i >= 0; i-- {
		rc, err := decode.Reader(codings[i], r)
		if err != nil {
			d.err = d.stopped(src, err)
			return
		}
		defer rc.Close()
		r = rc
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		d.out = append(d.out, buf[:n]...)
		if len(d.out) > d.limit {
			d.err = fmt.Errorf("%w: one chunk decodes to more than %d bytes", decode.ErrTooLarge, d.limit)
			return
		}
		switch {
		case errors.Is(err, io.EOF):
			return
		case err != nil:
			d.err = d.stopped(src, err)
			return
		}
	}
}

// stopped tells a decoder that ran out of input because Close ended it from
// one that failed on its data.
func (d *streamDecoder) stopped(src *chunkSource, err error) error {
	if src.eof {
		return errStopped
	}
	return err
}

// chunkSource is the decoders' input: the chunks Feed hands over.
type chunkSource struct {
	d       *streamDecoder
	cur     []byte
	started bool
	eof     bool
}

func (s *chunkSource) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if s.eof {
			return 0, io.EOF // Close ended the input; nobody waits for hungry now
		}
		if s.started {
			s.d.hungry <- struct{}{}
		}
		s.started = true
		c, ok := <-s.d.in
		if !ok {
			s.eof = true
			return 0, io.EOF
		}
		s.cur = c
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}
