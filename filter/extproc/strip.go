package extproc

import (
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/sse"
)

// usageStripper removes the usage-only chunk that llmproc asked the provider
// for (stream_options.include_usage) when the client did not ask for it, so
// the client gets exactly the stream it requested. It re-frames the stream on
// event boundaries: a partial event is held until the chunk that completes it.
type usageStripper struct {
	sc  sse.Scanner
	out []byte
}

func (s *usageStripper) chunk(in []byte, eos bool) []byte {
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
	}
	return s.out
}

// isUsageOnly reports an OpenAI chunk with no choices and a usage object.
func isUsageOnly(data []byte) bool {
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	r := gjson.GetManyBytes(data, "choices", "usage")
	return r[1].IsObject() && (!r[0].Exists() || len(r[0].Array()) == 0)
}
