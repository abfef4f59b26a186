package translate

// The AWS event stream (application/vnd.amazon.eventstream) that Bedrock's
// streaming APIs answer with, read frame by frame without allocating: the
// AWS SDK's decoder builds a header map and several readers for each frame,
// tens of allocations per chunk of a stream, where llmproc reads three
// string headers and the payload in place.
//
// A frame is: total length (uint32, big endian, the whole frame), headers
// length (uint32), the CRC-32 (IEEE) of those 8 bytes, the headers, the
// payload, and the CRC-32 of everything before it. A header is its name's
// length (uint8), the name, a value type (uint8) and the value.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Event-stream header value types.
const (
	esBoolTrue = iota
	esBoolFalse
	esByte
	esInt16
	esInt32
	esInt64
	esBytes
	esString
	esTimestamp
	esUUID
)

// esMinFrame is a frame without headers or payload: prelude, its CRC and
// the message CRC.
const esMinFrame = 16

// errChecksum is a frame whose prelude or message CRC does not match (the
// AWS SDK's wording).
var errChecksum = errors.New("message checksum mismatch")

// esMessage is one frame's headers and payload, pointing into the frame:
// valid only during the callback that gets it.
type esMessage struct {
	headers []byte
	Payload []byte
}

// decodeFrame checks one whole frame (b is exactly its bytes) and returns
// its headers and payload.
func decodeFrame(b []byte) (esMessage, error) {
	total := len(b)
	hl := int(binary.BigEndian.Uint32(b[4:]))
	if crc32.ChecksumIEEE(b[:8]) != binary.BigEndian.Uint32(b[8:]) ||
		crc32.ChecksumIEEE(b[:total-4]) != binary.BigEndian.Uint32(b[total-4:]) {
		return esMessage{}, errChecksum
	}
	if hl > total-esMinFrame {
		return esMessage{}, fmt.Errorf("headers length %d exceeds the frame (%d bytes)", hl, total)
	}
	m := esMessage{headers: b[12 : 12+hl], Payload: b[12+hl : total-4]}
	for h := m.headers; len(h) > 0; {
		_, _, rest, err := nextHeader(h)
		if err != nil {
			return esMessage{}, err
		}
		h = rest
	}
	return m, nil
}

// nextHeader splits the first header off h: its name, its value when it is
// a string or bytes (nil otherwise), and the headers after it.
func nextHeader(h []byte) (name, value, rest []byte, err error) {
	n := int(h[0])
	if len(h) < 1+n+1 {
		return nil, nil, nil, errors.New("header truncated")
	}
	name, typ, h := h[1:1+n], h[1+n], h[2+n:]
	size := 0
	switch typ {
	case esBoolTrue, esBoolFalse:
	case esByte:
		size = 1
	case esInt16:
		size = 2
	case esInt32:
		size = 4
	case esInt64, esTimestamp:
		size = 8
	case esUUID:
		size = 16
	case esBytes, esString:
		if len(h) < 2 {
			return nil, nil, nil, errors.New("header truncated")
		}
		l := int(binary.BigEndian.Uint16(h))
		if len(h) < 2+l {
			return nil, nil, nil, errors.New("header truncated")
		}
		return name, h[2 : 2+l], h[2+l:], nil
	default:
		return nil, nil, nil, fmt.Errorf("unable to decode header of unknown value type %d", typ)
	}
	if len(h) < size {
		return nil, nil, nil, errors.New("header truncated")
	}
	return name, nil, h[size:], nil
}

// header returns the string (or bytes) value of the header named name, nil
// when the frame has none or its value is of another type; of a name given
// twice, the last (as the AWS SDK reads it). It points into the frame.
func (m esMessage) header(name string) (value []byte) {
	for h := m.headers; len(h) > 0; {
		n, v, rest, err := nextHeader(h)
		if err != nil {
			return nil
		}
		if string(n) == name {
			value = v
		}
		h = rest
	}
	return value
}

// frames splits an AWS event stream into its messages, carrying a partial
// frame over to the next chunk.
type frames struct {
	buf []byte
}

// feed appends chunk and calls fn with every whole frame, in order, until fn
// returns false; the rest is then dropped, as after a frame that does not
// decode (the error). A message is valid only during fn.
func (f *frames) feed(chunk []byte, fn func(esMessage) bool) error {
	data := chunk
	if len(f.buf) > 0 {
		f.buf = append(f.buf, chunk...)
		data = f.buf
	}
	off := 0
	for len(data)-off >= 12 {
		total := int(binary.BigEndian.Uint32(data[off:]))
		if total < esMinFrame || total > bedrockMaxFrame {
			f.buf = nil
			return fmt.Errorf("frame length %d", total)
		}
		if len(data)-off < total {
			break
		}
		msg, err := decodeFrame(data[off : off+total])
		off += total
		if err != nil {
			f.buf = nil
			return err
		}
		if !fn(msg) {
			f.buf = nil
			return nil
		}
	}
	// Keep the partial frame: whole chunks of whole frames, as Envoy
	// mostly hands them over, are read in place.
	if len(f.buf) > 0 {
		f.buf = f.buf[:copy(f.buf, f.buf[off:])]
	} else {
		f.buf = append(f.buf, data[off:]...)
	}
	return nil
}
