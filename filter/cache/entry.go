package cache

import (
	"encoding/binary"
	"errors"
	"time"
)

// entryMagic and entryVersion start an encoded Entry.
const (
	entryMagic   = 'L'
	entryVersion = 1
	entryHeader  = 2 + 8 // magic, version, Stored in Unix nanoseconds
)

// ErrBadEntry is returned by Decode for bytes that are not an encoded Entry.
var ErrBadEntry = errors.New("cache: not an encoded entry")

// Encode returns the entry's wire form for the shared tier: a magic byte, a
// version byte, Stored as big-endian Unix nanoseconds, then Completion.
func (e Entry) Encode() []byte {
	return e.appendTo(make([]byte, 0, entryHeader+len(e.Completion)))
}

func (e Entry) appendTo(b []byte) []byte {
	b = append(b, entryMagic, entryVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Stored.UnixNano()))
	return append(b, e.Completion...)
}

// Decode reads an encoded entry. The returned Completion aliases b.
func Decode(b []byte) (Entry, error) {
	if len(b) < entryHeader || b[0] != entryMagic || b[1] != entryVersion {
		return Entry{}, ErrBadEntry
	}
	ns := int64(binary.BigEndian.Uint64(b[2:entryHeader]))
	return Entry{Completion: b[entryHeader:], Stored: time.Unix(0, ns)}, nil
}
