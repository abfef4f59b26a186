// Package sse reads and writes Server-Sent Events incrementally.
//
// Envoy hands the upstream filter a streamed response body in chunks whose
// boundaries fall anywhere: inside a line, inside a "\r\n", between the two
// newlines that end an event. Scanner keeps the carry-over between chunks and
// calls back once per complete event, following the WHATWG event-stream
// parsing rules, so the translators, usage tracking and the cache can work on
// whole events without each keeping its own buffer.
//
// Scanner does not allocate per chunk once its buffers have grown to the size
// of the largest event in the stream.
package sse

import "bytes"

// Event is one SSE event. Data holds the event's data lines joined by "\n".
// Name is the "event" field (empty means the default type, "message"). ID is
// the last event ID, which per the spec persists across events until an "id"
// field changes it. The slices are valid only during the callback.
type Event struct {
	Name, ID []byte
	Data     []byte
}

// Scanner splits a byte stream into events. The zero value is ready to use;
// Reset makes a used Scanner ready for a new stream.
type Scanner struct {
	line    []byte // the unterminated tail of the last chunk
	data    []byte // data buffer: each data line followed by '\n'
	name    []byte // event type buffer
	id      []byte // last event ID buffer
	skipLF  bool   // the previous chunk ended with '\r'; drop a leading '\n'
	started bool   // the first line (which may carry a BOM) has been seen
	pending bool   // a field line arrived since the last dispatch
}

// Reset clears all state, keeping the buffers for reuse.
func (s *Scanner) Reset() {
	*s = Scanner{line: s.line[:0], data: s.data[:0], name: s.name[:0], id: s.id[:0]}
}

// Feed scans chunk and calls fn for every event completed by it (an event
// ends with a blank line). Lines may end in "\n", "\r\n" or "\r"; comment
// lines (":...") are ignored; one space after the field's colon is dropped.
// Events without data are not dispatched, as the spec requires.
func (s *Scanner) Feed(chunk []byte, fn func(Event)) {
	if s.skipLF && len(chunk) > 0 {
		s.skipLF = false
		if chunk[0] == '\n' {
			chunk = chunk[1:]
		}
	}
	for len(chunk) > 0 {
		i := indexEOL(chunk)
		if i < 0 {
			s.line = append(s.line, chunk...)
			return
		}
		line := chunk[:i]
		if len(s.line) > 0 {
			s.line = append(s.line, line...)
			line = s.line
		}
		if chunk[i] == '\r' {
			if i+1 == len(chunk) {
				s.skipLF = true
			} else if chunk[i+1] == '\n' {
				i++
			}
		}
		chunk = chunk[i+1:]
		s.processLine(line, fn)
		s.line = s.line[:0]
	}
}

// Flush ends the stream: an unterminated last line is processed, and an event
// still pending is dispatched if it has data (the spec would drop it; a
// gateway would rather pass it on). It reports whether the stream ended in the
// middle of an event. The Scanner is then reset.
func (s *Scanner) Flush(fn func(Event)) (incomplete bool) {
	if len(s.line) > 0 {
		incomplete = true
		s.processLine(s.line, fn)
	}
	if s.pending {
		incomplete = true
		s.dispatch(fn)
	}
	s.Reset()
	return incomplete
}

// indexEOL returns the index of the first '\n' or '\r' in b, or -1.
func indexEOL(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	head := b
	if n >= 0 {
		head = b[:n]
	}
	if r := bytes.IndexByte(head, '\r'); r >= 0 {
		return r
	}
	return n
}

var bom = []byte("\xEF\xBB\xBF")

func (s *Scanner) processLine(line []byte, fn func(Event)) {
	if !s.started {
		s.started = true
		line = bytes.TrimPrefix(line, bom)
	}
	if len(line) == 0 {
		s.dispatch(fn)
		return
	}
	if line[0] == ':' {
		return
	}
	s.pending = true
	field, value := line, []byte(nil)
	if c := bytes.IndexByte(line, ':'); c >= 0 {
		field, value = line[:c], line[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		s.data = append(s.data, value...)
		s.data = append(s.data, '\n')
	case "event":
		s.name = append(s.name[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			s.id = append(s.id[:0], value...)
		}
	}
}

func (s *Scanner) dispatch(fn func(Event)) {
	s.pending = false
	if len(s.data) == 0 {
		s.name = s.name[:0]
		return
	}
	fn(Event{Name: s.name, ID: s.id, Data: s.data[:len(s.data)-1]})
	s.data = s.data[:0]
	s.name = s.name[:0]
}

// AppendData appends data as an unnamed event: "data: <data>\n\n". Each line
// of a multi-line data becomes its own "data:" line.
func AppendData(dst, data []byte) []byte {
	return appendData(dst, data)
}

// AppendEvent appends an event named name ("event: <name>\n", left out when
// name is empty) carrying data.
func AppendEvent(dst []byte, name string, data []byte) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	return appendData(dst, data)
}

func appendData(dst, data []byte) []byte {
	for {
		i := indexEOL(data)
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n', '\n')
}
