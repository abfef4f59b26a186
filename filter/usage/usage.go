// Package usage reads token usage from normalized OpenAI chat-completions
// responses and turns it into an exact cost.
//
// Everything upstream of this package has already been translated into the
// OpenAI schema, so usage is read once, here, for every provider. Money is an
// integer count of pico-dollars (1e-12 USD): $0.0375 per million tokens is
// 37,500 pico-dollars a token, which micro-dollars cannot represent.
package usage

import (
	"math"
	"math/bits"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
)

// Usage is token usage in OpenAI's terms. Input includes CachedInput and
// CacheWrite; CacheWrite includes CacheWrite1h (Anthropic's one-hour cache
// writes; the rest are five-minute writes); Output includes Reasoning.
// WebSearches counts the server-side web searches the provider ran.
type Usage struct {
	Input, Output, CachedInput, CacheWrite, CacheWrite1h, Reasoning int64
	WebSearches                                                     int64
}

// Total is Input + Output, saturating.
func (u Usage) Total() int64 { return AddSat(u.Input, u.Output) }

// FromOpenAI reads an OpenAI "usage" object: prompt_tokens, completion_tokens,
// prompt_tokens_details.cached_tokens and
// completion_tokens_details.reasoning_tokens. CacheWrite comes from
// prompt_tokens_details.cache_write_tokens, CacheWrite1h from
// prompt_tokens_details.cache_write_1h_tokens and WebSearches from
// server_tool_use.web_search_requests: extensions translators fill for
// providers that report them. Negative numbers read as 0. ok is false
// when r is absent, null or not an object.
func FromOpenAI(r gjson.Result) (Usage, bool) {
	if !r.IsObject() {
		return Usage{}, false
	}
	var u Usage
	r.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "prompt_tokens":
			u.Input = count(v)
		case "completion_tokens":
			u.Output = count(v)
		case "prompt_tokens_details":
			u.CachedInput = count(v.Get("cached_tokens"))
			u.CacheWrite = count(v.Get("cache_write_tokens"))
			u.CacheWrite1h = count(v.Get("cache_write_1h_tokens"))
		case "server_tool_use":
			u.WebSearches = count(v.Get("web_search_requests"))
		case "completion_tokens_details":
			u.Reasoning = count(v.Get("reasoning_tokens"))
		}
		return true
	})
	return u, true
}

func count(v gjson.Result) int64 {
	if v.Type != gjson.Number {
		return 0
	}
	return max(v.Int(), 0)
}

// Cost is the price of u in pico-dollars: uncached input at the input price,
// cached input at the cached-input price and cache writes at the cache-write
// price (each the input price when unset), one-hour cache writes at the
// cache_write_1h price (the cache-write price when unset), output (reasoning included) at
// the output price. The counts are those of u.Priced(); negative prices count
// as zero; the result saturates at math.MaxInt64 instead of overflowing.
func Cost(u Usage, p config.Price) int64 {
	u = u.Priced()
	in, cached, written, written1h, out := u.Input, u.CachedInput, u.CacheWrite, u.CacheWrite1h, u.Output
	cachedPrice := p.Input.PicoPerToken
	if p.CachedInput.Set {
		cachedPrice = p.CachedInput.PicoPerToken
	}
	writePrice := p.Input.PicoPerToken
	if p.CacheWrite.Set {
		writePrice = p.CacheWrite.PicoPerToken
	}
	c := MulSat(in-cached-written, p.Input.PicoPerToken)
	c = AddSat(c, MulSat(cached, cachedPrice))
	write1hPrice := writePrice
	if p.CacheWrite1h.Set {
		write1hPrice = p.CacheWrite1h.PicoPerToken
	}
	c = AddSat(c, MulSat(written-written1h, writePrice))
	c = AddSat(c, MulSat(written1h, write1hPrice))
	return AddSat(c, MulSat(out, p.Output.PicoPerToken))
}

// Priced is u as Cost prices it: negative counts are 0, CachedInput is at
// most Input, CacheWrite at most what remains of Input after it,
// CacheWrite1h at most CacheWrite and Reasoning at most Output. The access
// log writes these counts, so the logged tokens add up to the logged cost.
func (u Usage) Priced() Usage {
	u.Input = max(u.Input, 0)
	u.CachedInput = min(max(u.CachedInput, 0), u.Input)
	u.CacheWrite = min(max(u.CacheWrite, 0), u.Input-u.CachedInput)
	u.CacheWrite1h = min(max(u.CacheWrite1h, 0), u.CacheWrite)
	u.Output = max(u.Output, 0)
	u.Reasoning = min(max(u.Reasoning, 0), u.Output)
	u.WebSearches = max(u.WebSearches, 0)
	return u
}

// MulSat multiplies two counts, treating negatives as 0 and saturating at
// math.MaxInt64: money never wraps.
func MulSat(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

// AddSat adds two non-negative numbers, saturating at math.MaxInt64.
func AddSat(a, b int64) int64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxInt64
}

// picoPerUSD is the number of pico-dollars in a dollar.
const picoPerUSD = 1_000_000_000_000

// USD converts pico-dollars to dollars, for export only.
func USD(pico int64) float64 { return float64(pico) / picoPerUSD }

// FormatUSD writes pico-dollars as an exact decimal with 12 places, such as
// "0.000123450000" for 123,450,000 pico-dollars.
func FormatUSD(pico int64) string {
	var b [32]byte
	return string(AppendUSD(b[:0], pico))
}

// AppendUSD appends FormatUSD(pico) to dst.
func AppendUSD(dst []byte, pico int64) []byte {
	mag := uint64(pico)
	if pico < 0 {
		dst = append(dst, '-')
		mag = -mag
	}
	dst = strconv.AppendUint(dst, mag/picoPerUSD, 10)
	dst = append(dst, '.')
	frac := mag % picoPerUSD
	for d := uint64(picoPerUSD / 10); d > 0; d /= 10 {
		dst = append(dst, byte('0'+frac/d%10))
	}
	return dst
}
