package route

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// The model file, version 1, little-endian:
//
//	"LLMPCLS" 0x00           magic
//	u8  version              1 (the feature extractor's version too)
//	u8  bits                 log2 of the hash buckets
//	u8  classes              K, 2..MaxModelClasses
//	K × (u8 len, name)       class names, in the model's order
//	f32 scale                a weight is its int8 value times scale
//	K × f32 bias
//	uvarint rows             buckets with a non-zero weight
//	rows × (uvarint gap, K × i8)  gap from the previous row's bucket (+1)
//	u32 crc32 (IEEE) of everything before it
//
// Buckets whose weights all quantise to zero are left out.
const (
	modelMagic   = "LLMPCLS\x00"
	modelVersion = 1
)

// MarshalBinary encodes the model in the format above.
func (m *Model) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(modelMagic)
	b.WriteByte(modelVersion)
	b.WriteByte(m.bits)
	b.WriteByte(byte(len(m.classes)))
	for _, c := range m.classes {
		b.WriteByte(byte(len(c)))
		b.WriteString(string(c))
	}
	f32 := func(v float32) { b.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v))) }
	f32(m.scale)
	for _, v := range m.bias {
		f32(v)
	}
	k := len(m.classes)
	rows := 0
	for r := 0; r < len(m.w)/k; r++ {
		if nonZero(m.w[r*k : r*k+k]) {
			rows++
		}
	}
	b.Write(binary.AppendUvarint(nil, uint64(rows)))
	prev := -1
	for r := 0; r < len(m.w)/k; r++ {
		row := m.w[r*k : r*k+k]
		if !nonZero(row) {
			continue
		}
		b.Write(binary.AppendUvarint(nil, uint64(r-prev)))
		prev = r
		for _, v := range row {
			b.WriteByte(byte(v))
		}
	}
	b.Write(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(b.Bytes())))
	return b.Bytes(), nil
}

func nonZero(row []int8) bool {
	for _, v := range row {
		if v != 0 {
			return true
		}
	}
	return false
}

// ParseModel decodes a model file.
func ParseModel(data []byte) (*Model, error) {
	if len(data) < len(modelMagic)+4 || string(data[:len(modelMagic)]) != modelMagic {
		return nil, errors.New("not a classifier model file")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("classifier model: checksum mismatch")
	}
	r := body[len(modelMagic):]
	need := func(n int) error {
		if len(r) < n {
			return errors.New("classifier model: truncated")
		}
		return nil
	}
	if err := need(3); err != nil {
		return nil, err
	}
	if r[0] != modelVersion {
		return nil, fmt.Errorf("classifier model: version %d, this llmproc reads version %d", r[0], modelVersion)
	}
	bits, k := r[1], int(r[2])
	r = r[3:]
	if bits < 8 || bits > 24 {
		return nil, fmt.Errorf("classifier model: %d hash bits, want 8..24", bits)
	}
	if k < 2 || k > MaxModelClasses {
		return nil, fmt.Errorf("classifier model: %d classes, want 2..%d", k, MaxModelClasses)
	}
	m := &Model{bits: bits}
	for range k {
		if err := need(1); err != nil {
			return nil, err
		}
		n := int(r[0])
		if err := need(1 + n); err != nil {
			return nil, err
		}
		m.classes = append(m.classes, Class(r[1:1+n]))
		r = r[1+n:]
	}
	if err := need(4 * (k + 1)); err != nil {
		return nil, err
	}
	m.scale = math.Float32frombits(binary.LittleEndian.Uint32(r))
	r = r[4:]
	for range k {
		m.bias = append(m.bias, math.Float32frombits(binary.LittleEndian.Uint32(r)))
		r = r[4:]
	}
	rows, n := binary.Uvarint(r)
	if n <= 0 || rows > 1<<bits {
		return nil, errors.New("classifier model: bad row count")
	}
	r = r[n:]
	m.w = make([]int8, k<<bits)
	at := -1
	for range rows {
		gap, n := binary.Uvarint(r)
		if n <= 0 || gap == 0 || uint64(at)+gap >= 1<<bits && at >= 0 || at < 0 && gap-1 >= 1<<bits {
			return nil, errors.New("classifier model: bad row")
		}
		r = r[n:]
		at += int(gap)
		if err := need(k); err != nil {
			return nil, err
		}
		for c := range k {
			m.w[at*k+c] = int8(r[c])
		}
		r = r[k:]
	}
	if len(r) != 0 {
		return nil, errors.New("classifier model: trailing bytes")
	}
	m.prepare()
	return m, nil
}
