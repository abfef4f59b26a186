package extproc

import (
	"bytes"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/sse"
)

// usageStripper removes the usage-only chunk that llmproc asked the provider
// for (stream_options.include_usage) when the client did not ask for it, so
// the client gets exactly the stream it requested. It re-frames the stream on
// event boundaries: a partial event is held until the chunk that completes it.
type usageStripper struct {
	sc      sse.Scanner
	out     []byte
	pending bool // the scanner holds part of an event
}

// chunk returns the bytes to send for in; pass=true means in goes unchanged.
// Most chunks hold whole events and no usage, and pass without a rescan.
func (s *usageStripper) chunk(in []byte, eos bool) (out []byte, pass bool) {
	if !s.pending && endsEvent(in) && !bytes.Contains(in, usageKey) {
		return nil, true
	}
	s.pending = !endsEvent(in)
	s.out = s.out[:0]
	emit := func(ev sse.Event) {
		if isUsageOnly(ev.Data) {
			return
		}
		if len(ev.Name) > 0 {
			s.out = sse.AppendEvent(s.out, string(ev.Name), ev.Data)
			return
		}
		s.out = sse.AppendData(s.out, ev.Data)
	}
	s.sc.Feed(in, emit)
	if eos {
		s.sc.Flush(emit)
		s.pending = false
	}
	if bytes.Equal(s.out, in) {
		return nil, true // nothing stripped: no reply echoing the chunk
	}
	return s.out, false
}

var usageKey = []byte(`"usage":{`)

// endsEvent reports whether b ends on an event boundary (a blank line).
func endsEvent(b []byte) bool {
	return bytes.HasSuffix(b, []byte("\n\n")) || bytes.HasSuffix(b, []byte("\r\n\r\n"))
}

// isUsageOnly reports an OpenAI chunk with no choices and a usage object.
func isUsageOnly(data []byte) bool {
	if len(data) == 0 || data[0] != '{' || !bytes.Contains(data, usageKey[:7]) {
		return false
	}
	if !gjson.GetBytes(data, "usage").IsObject() {
		return false
	}
	choices := gjson.GetBytes(data, "choices")
	return !choices.Exists() || !choices.Get("0").Exists()
}
