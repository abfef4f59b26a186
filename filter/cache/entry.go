package cache

import (
	"encoding/binary"
	"errors"
	"time"
)

// entryMagic and entryVersion start an encoded Entry. Version 2 adds the
// request id; version 1 entries (older replicas) still decode, without one.
const (
	entryMagic   = 'L'
	entryVersion = 2
	entryHeader  = 2 + 8 // magic, version, Stored in Unix nanoseconds
	maxIDLen     = 255   // a longer request id is not stored
)

// ErrBadEntry is returned by Decode for bytes that are not an encoded Entry.
var ErrBadEntry = errors.New("cache: not an encoded entry")

// Encode returns the entry's wire form for the shared tier: a magic byte, a
// version byte, Stored as big-endian Unix nanoseconds, the request id as a
// length byte and its bytes, then Completion.
func (e Entry) Encode() []byte {
	return e.appendTo(make([]byte, 0, entryHeader+1+len(e.RequestID)+len(e.Completion)))
}

func (e Entry) appendTo(b []byte) []byte {
	b = append(b, entryMagic, entryVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Stored.UnixNano()))
	id := e.RequestID
	if len(id) > maxIDLen {
		id = ""
	}
	b = append(b, byte(len(id)))
	b = append(b, id...)
	return append(b, e.Completion...)
}

// Decode reads an encoded entry. The returned Completion aliases b.
func Decode(b []byte) (Entry, error) {
	if len(b) < entryHeader || b[0] != entryMagic || (b[1] != 1 && b[1] != entryVersion) {
		return Entry{}, ErrBadEntry
	}
	ns := int64(binary.BigEndian.Uint64(b[2:entryHeader]))
	e := Entry{Stored: time.Unix(0, ns)}
	rest := b[entryHeader:]
	if b[1] == entryVersion {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return Entry{}, ErrBadEntry
		}
		e.RequestID, rest = string(rest[1:1+int(rest[0])]), rest[1+int(rest[0]):]
	}
	e.Completion = rest
	return e, nil
}
