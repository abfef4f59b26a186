package semantic

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// recordMagic and recordVersion start an encoded Record.
const (
	recordMagic   = 'S'
	recordVersion = 1
)

// errBadRecord is returned by decodeRecord for bytes that are no record.
var errBadRecord = errors.New("semantic: not an encoded record")

// encode is r's wire form in the shared stream: magic, version, Stored
// (Unix nanoseconds), Entry, then RequestID and Text length-prefixed, then
// the vector's length and its little-endian float32s.
func (r Record) encode() []byte {
	b := make([]byte, 0, 2+8+32+len(r.RequestID)+len(r.Text)+4*len(r.Vector)+16)
	b = append(b, recordMagic, recordVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Stored.UnixNano()))
	b = append(b, r.Entry[:]...)
	b = binary.AppendUvarint(b, uint64(len(r.RequestID)))
	b = append(b, r.RequestID...)
	b = binary.AppendUvarint(b, uint64(len(r.Text)))
	b = append(b, r.Text...)
	b = binary.AppendUvarint(b, uint64(len(r.Vector)))
	for _, x := range r.Vector {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func decodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) < 2+8+32 || b[0] != recordMagic || b[1] != recordVersion {
		return r, errBadRecord
	}
	r.Stored = time.Unix(0, int64(binary.BigEndian.Uint64(b[2:10])))
	copy(r.Entry[:], b[10:42])
	b = b[42:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	var ok bool
	if r.RequestID, ok = str(); !ok {
		return r, errBadRecord
	}
	if r.Text, ok = str(); !ok {
		return r, errBadRecord
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > uint64(len(b)-k)/4 || uint64(len(b)-k) != 4*n {
		return r, errBadRecord
	}
	b = b[k:]
	r.Vector = make([]float32, n)
	for i := range r.Vector {
		r.Vector[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return r, nil
}

// encodeVector and decodeVector are a vector's form in the embeddings
// cache: little-endian float32s.
func encodeVector(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func decodeVector(b []byte) ([]float32, bool) {
	if len(b) == 0 || len(b)%4 != 0 {
		return nil, false
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, true
}
