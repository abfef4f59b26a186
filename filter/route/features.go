// Package route computes request features from the buffered OpenAI
// chat-completions body and classifies the task, so routing rules can pick a
// pool from what the request is about rather than only the model it names.
//
// # Token estimate
//
// EstimatedInputTokens is a quarter token per character (Unicode code point)
// of message text, plus three more quarters for each CJK character and one
// more for each digit, plus a quarter per byte of the tools JSON, rounded up.
// Against o200k_base (GPT-4o's BPE encoding) on the classifier fixtures it
// overcounts English by about 10% on average (short prompts round up) and
// stays within 10% for Chinese and Japanese; it undercounts JSON and
// number-heavy text by 25–30%, and ignores the few tokens of per-message
// framing each provider adds. estimate_test.go measures it and guards those
// bounds. It is for routing thresholds, never for billing.
//
// # Classifier
//
// The classifier is deterministic and explainable: it lowercases the system
// and user text once, counts weighted keyword and notation hits per class
// (code, reasoning, extraction, creative), adds structural signals (code
// fences, response_format, tools, input length), and picks the class with the
// highest score that reaches its threshold; otherwise the request is chat.
// Features.Signals names the hits that decided the class.
package route

import (
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

// Class is a task class chosen by the classifier.
type Class string

// The task classes.
const (
	ClassCode       Class = "code"
	ClassReasoning  Class = "reasoning"
	ClassExtraction Class = "extraction"
	ClassCreative   Class = "creative"
	ClassChat       Class = "chat"
)

// Classes lists every class, in tie-break order (earlier wins a tie).
var Classes = []Class{ClassCode, ClassReasoning, ClassExtraction, ClassCreative, ClassChat}

// MaxSignals bounds Features.Signals.
const MaxSignals = 8

// Features are computed once per request from the buffered OpenAI body.
type Features struct {
	Model                string // the "model" field as sent
	EstimatedInputTokens int    // see the package doc for the estimator
	Messages             int    // number of messages
	SystemChars          int    // characters of system (and developer) message text
	Tools                bool   // a non-empty tools (or functions) array
	Images               bool   // some message content part is an image
	Stream               bool   // "stream": true
	ResponseFormat       string // "", "json_object" or "json_schema"
	MaxTokens            int    // max_completion_tokens, else max_tokens, else 0
	User                 string // OpenAI "user", or Anthropic "metadata.user_id"
	Class                Class
	Signals              []string // why Class was chosen, at most MaxSignals

	// Set by the caller, not by Features: they come from the request's
	// headers and the registry.
	Explicit bool              // Model names a registry model
	Client   string            // the client's API: "openai" or "anthropic"
	Tenant   string            // the tenant header's value
	Headers  map[string]string // the configured headers, "" when absent
}

// Features parses body once and returns its features and class. A body that
// is not a JSON object is a 400 invalid_request_error.
func (c *Classifier) Features(body []byte) (Features, error) {
	if !gjson.ValidBytes(body) {
		return Features{}, apierr.BadRequest("invalid_json", "the request body is not valid JSON")
	}
	if !gjson.ParseBytes(body).IsObject() {
		return Features{}, apierr.BadRequest("invalid_json", "the request body must be a JSON object")
	}
	return c.FeaturesOfValid(body), nil
}

// FeaturesOfValid is Features for a body the caller has already checked is a
// valid JSON object (the router has), saving a validation pass.
func (c *Classifier) FeaturesOfValid(body []byte) Features {
	var f Features
	root := gjson.ParseBytes(body)
	var text scratch
	chars := 0
	toolBytes := 0
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			f.Model = v.String()
		case "user":
			f.User = v.String()
		case "metadata":
			if f.User == "" {
				f.User = v.Get("user_id").String()
			}
		case "system":
			// Anthropic's Messages API keeps the system prompt out of messages.
			system := func(s string) {
				n, units := measure(s)
				chars += units
				f.SystemChars += n
				text.add(s)
			}
			if v.Type == gjson.String {
				system(v.Str)
			} else if v.IsArray() {
				v.ForEach(func(_, p gjson.Result) bool {
					system(p.Get("text").String())
					return true
				})
			}
		case "stream":
			f.Stream = v.Type == gjson.True
		case "max_tokens":
			if f.MaxTokens == 0 {
				f.MaxTokens = int(v.Int())
			}
		case "max_completion_tokens":
			if n := int(v.Int()); n > 0 {
				f.MaxTokens = n
			}
		case "response_format":
			switch t := v.Get("type").Str; t {
			case "json_object", "json_schema":
				f.ResponseFormat = t
			}
		case "tools", "functions":
			if v.IsArray() && len(v.Raw) > 2 && v.Get("#").Int() > 0 {
				f.Tools = true
				toolBytes += len(v.Raw)
			}
		case "messages":
			if !v.IsArray() {
				return true
			}
			v.ForEach(func(_, m gjson.Result) bool {
				f.Messages++
				var role string
				var content gjson.Result
				m.ForEach(func(k, v gjson.Result) bool {
					switch k.Str {
					case "role":
						role = v.Str
					case "content":
						content = v
					}
					return true
				})
				system := role == "system" || role == "developer"
				keep := system || role == "user" || role == ""
				addText := func(s string) {
					n, units := measure(s)
					chars += units
					if system {
						f.SystemChars += n
					}
					if keep {
						text.add(s)
					}
				}
				switch {
				case content.Type == gjson.String:
					addText(content.Str)
				case content.IsArray():
					content.ForEach(func(_, p gjson.Result) bool {
						switch p.Get("type").Str {
						case "text", "input_text":
							addText(p.Get("text").String())
						case "image_url", "input_image", "image":
							f.Images = true
						}
						return true
					})
				}
				return true
			})
		}
		return true
	})
	f.EstimatedInputTokens = (chars + toolBytes + 3) / 4
	f.Class, f.Signals = c.classify(text.lower(c.cfg.MaxClassifyBytes), &f)
	return f
}

// measure returns a text's characters (code points) and its quarter-tokens:
// one per character, plus two for each character of a CJK script (kana, CJK
// ideographs, Hangul: U+3000–U+D7FF, whose UTF-8 lead bytes are 0xE3–0xED;
// BPE takes about 0.7 tokens for one), plus one for each digit (numbers split
// into groups of up to three digits, and their separators are tokens of their
// own: about half a token a digit). One pass over the bytes.
func measure(s string) (chars, units int) {
	wide, digits := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c&0xC0 != 0x80 { // not a continuation byte: a character starts
			chars++
		}
		switch {
		case c >= 0xE3 && c <= 0xED:
			wide++
		case c >= '0' && c <= '9':
			digits++
		}
	}
	return chars, chars + 2*wide + digits
}

// scratch collects the message texts the classifier reads, without copying
// them, and lowers only the part it will scan.
type scratch struct {
	parts []string
	n     int // bytes of the texts joined with newlines
}

func (s *scratch) add(t string) {
	if len(s.parts) > 0 {
		s.n++
	}
	s.parts = append(s.parts, t)
	s.n += len(t)
}

// lower returns the texts joined with newlines and lowercased (ASCII). When
// they are longer than max bytes, it returns the first max/2 bytes, a
// newline and the last max/2 bytes: instructions usually sit at either end,
// and the classifier's cost stays bounded on big bodies.
func (s *scratch) lower(max int) []byte {
	if s.n <= max {
		return s.appendRange(make([]byte, 0, s.n), 0, s.n)
	}
	b := make([]byte, 0, max+1)
	b = s.appendRange(b, 0, max/2)
	b = append(b, '\n')
	return s.appendRange(b, s.n-max/2, s.n)
}

// appendRange appends bytes [from, to) of the joined text, lowercased.
func (s *scratch) appendRange(b []byte, from, to int) []byte {
	pos := 0 // offset of the current part in the joined text
	for i, t := range s.parts {
		if i > 0 {
			if pos >= from && pos < to {
				b = append(b, '\n')
			}
			pos++
		}
		lo, hi := max(from-pos, 0), min(to-pos, len(t))
		for j := lo; j < hi; j++ {
			ch := t[j]
			if 'A' <= ch && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			b = append(b, ch)
		}
		pos += len(t)
		if pos >= to {
			break
		}
	}
	return b
}
