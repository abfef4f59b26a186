package validate

import (
	"math"
	"strings"
)

// Google's Gemini API request bodies (POST /v1beta/models/{model}:{method}),
// as Google documents them. Google's JSON parser takes every field in
// lowerCamelCase or in its proto snake_case name, and so does this one.
// The model comes from the path, not the body. Members not listed here pass
// unchecked; what llmproc's translator cannot carry to a backend it refuses
// itself.

// Gemini validates the body of a Gemini API method: generateContent,
// streamGenerateContent, countTokens, embedContent or batchEmbedContents.
func Gemini(body []byte, o Options, method string) error {
	read := (*parser).geminiGenerate
	switch method {
	case "countTokens":
		read = (*parser).geminiCountTokens
	case "embedContent":
		read = (*parser).geminiEmbed
	case "batchEmbedContents":
		read = (*parser).geminiBatchEmbed
	}
	return runBody(body, o, false, read)
}

// camel is a field name in lowerCamelCase (Google also takes snake_case).
func camel(k string) string {
	if strings.IndexByte(k, '_') < 0 {
		return k
	}
	var sb strings.Builder
	up := false
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c == '_':
			up = true
		case up && c >= 'a' && c <= 'z':
			sb.WriteByte(c - 'a' + 'A')
			up = false
		default:
			sb.WriteByte(c)
			up = false
		}
	}
	return sb.String()
}

// gobject reads an object whose members member checks by their camelCase
// name (returning false for the ones it does not know, which pass), with
// the required ones present.
func (p *parser) gobject(member func(k string) bool, required ...string) {
	var got seen
	p.object(func(k string) {
		c := camel(k)
		for i, r := range required {
			if c == r {
				got.add(1 << i)
			}
		}
		if !member(c) {
			p.any()
		}
	})
	if p.err != nil {
		return
	}
	for i, r := range required {
		if !got.has(1 << i) {
			p.missing(r)
			return
		}
	}
}

func (p *parser) geminiGenerate(top func(string, []byte)) {
	var has bool
	p.body(top, func(k string) {
		if !p.geminiRequestMember(camel(k)) {
			p.any()
		}
		has = has || camel(k) == "contents"
	})
	if p.err == nil && !has {
		p.missing("contents")
	}
}

// geminiRequestMember reads one member of a GenerateContentRequest.
func (p *parser) geminiRequestMember(k string) bool {
	switch k {
	case "contents":
		p.array(1, func(int) { p.geminiContent() })
	case "systemInstruction":
		if p.want(tObj|tStr|tNull) && p.peek() == tObj {
			p.geminiContent()
		} else {
			p.str(nullable)
		}
	case "tools":
		if p.is(nullable, tArr) {
			p.array(0, func(int) { p.geminiTool() })
		}
	case "toolConfig":
		if p.is(nullable, tObj) {
			p.gobject(func(k string) bool {
				if k != "functionCallingConfig" {
					return false
				}
				if p.is(nullable, tObj) {
					p.gobject(func(k string) bool {
						switch k {
						case "mode":
							p.enum(nullable, "MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
						case "allowedFunctionNames":
							p.strings(nullable)
						default:
							return false
						}
						return true
					})
				}
				return true
			})
		}
	case "generationConfig":
		if p.is(nullable, tObj) {
			p.generationConfig()
		}
	case "safetySettings":
		if p.is(nullable, tArr) {
			p.array(0, func(int) { p.anyObject(0) })
		}
	case "cachedContent", "model":
		p.str(nullable)
	default:
		return false
	}
	return true
}

func (p *parser) geminiContent() {
	p.gobject(func(k string) bool {
		switch k {
		case "role":
			p.str(nullable)
		case "parts":
			if p.is(nullable, tArr) {
				p.array(0, func(int) { p.geminiPart() })
			}
		default:
			return false
		}
		return true
	})
}

func (p *parser) geminiPart() {
	p.gobject(func(k string) bool {
		switch k {
		case "text", "thoughtSignature":
			p.str(0)
		case "thought":
			p.boolean(nullable)
		case "inlineData":
			p.gobject(func(k string) bool {
				if k != "mimeType" && k != "data" {
					return false
				}
				p.str(0)
				return true
			}, "mimeType", "data")
		case "fileData":
			p.gobject(func(k string) bool {
				if k != "mimeType" && k != "fileUri" {
					return false
				}
				p.str(0)
				return true
			}, "fileUri")
		case "functionCall":
			p.gobject(func(k string) bool {
				switch k {
				case "id":
					p.str(nullable)
				case "name":
					p.str(nonEmpty)
				case "args":
					p.anyObject(nullable)
				default:
					return false
				}
				return true
			}, "name")
		case "functionResponse":
			p.gobject(func(k string) bool {
				switch k {
				case "id":
					p.str(nullable)
				case "name":
					p.str(nonEmpty)
				case "response":
					p.anyObject(nullable)
				default:
					return false
				}
				return true
			}, "name")
		default:
			return false
		}
		return true
	})
}

func (p *parser) geminiTool() {
	p.gobject(func(k string) bool {
		if k != "functionDeclarations" {
			return false
		}
		if p.is(nullable, tArr) {
			p.array(0, func(int) {
				p.gobject(func(k string) bool {
					switch k {
					case "name":
						p.str(nonEmpty)
					case "description":
						p.str(nullable)
					case "parameters", "parametersJsonSchema", "response", "responseJsonSchema":
						p.anyObject(nullable)
					default:
						return false
					}
					return true
				}, "name")
			})
		}
		return true
	})
}

func (p *parser) generationConfig() {
	p.gobject(func(k string) bool {
		switch k {
		case "temperature":
			p.num(nullable, 0, 2)
		case "topP":
			p.num(nullable, 0, 1)
		case "topK":
			p.num(nullable, 0, math.MaxInt32)
		case "maxOutputTokens", "candidateCount":
			p.integer(nullable, 1, math.MaxInt32)
		case "presencePenalty", "frequencyPenalty":
			p.num(nullable, -2, 2)
		case "seed", "logprobs":
			p.integer(nullable, math.MinInt32, math.MaxInt32)
		case "stopSequences", "responseModalities":
			p.strings(nullable)
		case "responseMimeType":
			p.str(nullable)
		case "responseSchema", "responseJsonSchema":
			p.anyObject(nullable)
		case "responseLogprobs":
			p.boolean(nullable)
		case "thinkingConfig":
			if p.is(nullable, tObj) {
				p.gobject(func(k string) bool {
					switch k {
					case "includeThoughts":
						p.boolean(nullable)
					case "thinkingBudget":
						p.integer(nullable, -1, math.MaxInt32)
					case "thinkingLevel":
						p.str(nullable)
					default:
						return false
					}
					return true
				})
			}
		default:
			return false
		}
		return true
	})
}

func (p *parser) geminiCountTokens(top func(string, []byte)) {
	var has bool
	p.body(top, func(k string) {
		switch camel(k) {
		case "generateContentRequest":
			has = true
			var contents bool
			p.gobject(func(k string) bool {
				contents = contents || k == "contents"
				return p.geminiRequestMember(k)
			})
			if p.err == nil && !contents {
				p.failAt("generateContentRequest", "missing_required_parameter", "contents is required")
			}
		case "contents":
			has = true
			p.array(0, func(int) { p.geminiContent() })
		default:
			if !p.geminiRequestMember(camel(k)) {
				p.any()
			}
		}
	})
	if p.err == nil && !has {
		p.missing("contents")
	}
}

func (p *parser) geminiEmbedRequest(top func(string, []byte)) {
	var has bool
	member := func(k string) bool {
		switch k {
		case "content":
			has = true
			p.geminiContent()
		case "model", "taskType", "title":
			p.str(nullable)
		case "outputDimensionality":
			p.integer(nullable, 1, math.MaxInt32)
		default:
			return false
		}
		return true
	}
	if top != nil {
		p.body(top, func(k string) {
			if !member(camel(k)) {
				p.any()
			}
		})
	} else {
		p.gobject(member)
	}
	if p.err == nil && !has {
		p.missing("content")
	}
}

func (p *parser) geminiEmbed(top func(string, []byte)) { p.geminiEmbedRequest(top) }

func (p *parser) geminiBatchEmbed(top func(string, []byte)) {
	var has bool
	p.body(top, func(k string) {
		if camel(k) != "requests" {
			p.any()
			return
		}
		has = true
		p.array(1, func(int) { p.geminiEmbedRequest(nil) })
	})
	if p.err == nil && !has {
		p.missing("requests")
	}
}
