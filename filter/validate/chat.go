package validate

import "math"

// The OpenAI Chat Completions request, as OpenAI documents it
// (POST /v1/chat/completions). Members not listed here pass unchecked.

var chatRoles = []string{"system", "developer", "user", "assistant", "tool", "function"}

// Content part types, as bits, in chatPartTypes order.
const (
	partText = 1 << iota
	partImage
	partAudio
	partFile
	partRefusal
)

var chatPartTypes = []string{"text", "image_url", "input_audio", "file", "refusal"}

// chatPartsAllowed lists, per role, the part types its content may have.
var chatPartsAllowed = map[string]int{
	"system":    partText,
	"developer": partText,
	"user":      partText | partImage | partAudio | partFile,
	"assistant": partText | partRefusal,
	"tool":      partText,
	"function":  partText,
}

func (p *parser) chat(top func(string, []byte)) {
	const (
		hasModel seen = 1 << iota
		hasMessages
	)
	var s seen
	p.body(top, func(k string) {
		switch k {
		case "model":
			s.add(hasModel)
			p.modelName()
		case "messages":
			s.add(hasMessages)
			p.array(1, func(int) { p.chatMessage() })
		case "temperature":
			p.num(nullable, 0, 2)
		case "top_p":
			p.num(nullable, 0, 1)
		case "frequency_penalty", "presence_penalty":
			p.num(nullable, -2, 2)
		case "n":
			p.integer(nullable, 1, 128)
		case "max_tokens", "max_completion_tokens":
			p.integer(nullable, 1, math.MaxInt64)
		case "top_logprobs":
			p.integer(nullable, 0, 20)
		case "seed":
			p.integer(nullable, math.MinInt64, math.MaxInt64)
		case "stream", "logprobs", "parallel_tool_calls", "store":
			p.boolean(nullable)
		case "stream_options":
			if p.is(nullable, tObj) {
				p.object(func(k string) {
					switch k {
					case "include_usage", "include_obfuscation":
						p.boolean(nullable)
					default:
						p.any()
					}
				})
			}
		case "stop":
			if p.want(tStr|tArr|tNull) && p.peek() == tArr {
				p.strings(0)
			} else {
				p.str(nullable)
			}
		case "logit_bias":
			if p.is(nullable, tObj) {
				p.object(func(string) { p.num(0, -100, 100) })
			}
		case "metadata":
			p.stringMap(nullable)
		case "user", "service_tier", "reasoning_effort", "verbosity", "prompt_cache_key", "safety_identifier":
			p.str(nullable)
		case "modalities":
			if p.is(nullable, tArr) {
				p.array(0, func(int) { p.enum(0, "text", "audio") })
			}
		case "audio", "prediction", "web_search_options":
			p.anyObject(nullable)
		case "response_format":
			p.responseFormat()
		case "tools":
			if p.is(nullable, tArr) {
				p.array(0, func(int) { p.chatTool() })
			}
		case "tool_choice":
			p.toolChoice()
		case "functions":
			if p.is(nullable, tArr) {
				p.array(0, func(int) { p.function(true) })
			}
		case "function_call":
			if p.want(tStr|tObj|tNull) && p.peek() == tObj {
				p.nameObject()
			} else {
				p.enum(nullable, "none", "auto")
			}
		default:
			p.any()
		}
	})
	if p.err != nil {
		return
	}
	switch {
	case !s.has(hasModel):
		p.missingModel()
	case !s.has(hasMessages):
		p.missing("messages")
	}
}

// modelName reads the model, a non-empty string.
func (p *parser) modelName() {
	if p.err == nil && p.peek() == tNull {
		p.fail("missing_required_parameter", missingModelMsg)
		return
	}
	p.str(nonEmpty)
}

func (p *parser) chatMessage() {
	const (
		hasRole seen = 1 << iota
		hasContent
		hasToolCallID
		hasToolCalls
	)
	var (
		s         seen
		role      string
		parts     int    // part types present
		firstPart [5]int // index of each type's first part
	)
	p.object(func(k string) {
		switch k {
		case "role":
			s.add(hasRole)
			role = p.strv(0)
		case "content":
			switch p.peek() {
			case tNull:
				p.literal()
			case tArr:
				s.add(hasContent)
				p.array(0, func(i int) {
					t := p.chatPart()
					if parts&(1<<t) == 0 {
						parts |= 1 << t
						firstPart[t] = i
					}
				})
			default:
				s.add(hasContent)
				if p.want(tStr | tArr | tNull) {
					p.str(0)
				}
			}
		case "name", "tool_call_id":
			if k == "tool_call_id" {
				s.add(hasToolCallID)
			}
			p.str(0)
		case "refusal":
			p.str(nullable)
		case "tool_calls":
			if p.is(nullable, tArr) {
				s.add(hasToolCalls)
				p.array(0, func(int) { p.toolCall() })
			}
		case "function_call":
			if p.is(nullable, tObj) {
				p.function(false)
			}
		case "audio":
			p.anyObject(nullable)
		default:
			p.any()
		}
	})
	if p.err != nil {
		return
	}
	allowed, known := chatPartsAllowed[role]
	switch {
	case !s.has(hasRole):
		p.missing("role")
	case !known:
		p.failAt("role", "invalid_value", "%s is not one of %s", quote(role), quoteAll(chatRoles))
	case !s.has(hasContent) && role != "assistant" && role != "function":
		p.failAt("content", "missing_required_parameter", "required for %s messages", role)
	case role == "tool" && !s.has(hasToolCallID):
		p.missing("tool_call_id")
	case parts&^allowed != 0:
		for t := range chatPartTypes {
			if parts&^allowed&(1<<t) != 0 {
				p.push(seg{key: "content", isKey: true})
				p.push(seg{index: firstPart[t]})
				p.failAt("type", "invalid_value", "%s content parts are not allowed in %s messages", chatPartTypes[t], role)
				p.pop()
				p.pop()
				return
			}
		}
	}
}

// chatPart reads one content part and returns its type's index in
// chatPartTypes.
func (p *parser) chatPart() int {
	var (
		typ  string
		has  int // the part types whose member is present
		seen bool
	)
	p.object(func(k string) {
		switch k {
		case "type":
			seen = true
			typ = p.strv(0)
		case "text", "refusal":
			if k == "text" {
				has |= partText
			} else {
				has |= partRefusal
			}
			p.str(0)
		case "image_url":
			has |= partImage
			if p.want(tObj|tStr) && p.peek() == tStr {
				p.str(nonEmpty) // the shorthand some clients send, which the translators take
				return
			}
			p.objectWith(func(k string) bool {
				switch k {
				case "url":
					p.str(nonEmpty)
				case "detail":
					p.enum(nullable, "auto", "low", "high")
				default:
					return false
				}
				return true
			}, "url")
		case "input_audio":
			has |= partAudio
			p.stringFields(0, []string{"data", "format"}, "data", "format")
		case "file":
			has |= partFile
			p.stringFields(nullable, nil, "file_data", "file_id", "filename")
		default:
			p.any()
		}
	})
	if p.err != nil {
		return 0
	}
	if !seen {
		p.missing("type")
		return 0
	}
	for t, name := range chatPartTypes {
		if typ == name {
			if has&(1<<t) == 0 {
				p.missing(name)
			}
			return t
		}
	}
	p.failAt("type", "invalid_value", "%s is not one of %s", quote(typ), quoteAll(chatPartTypes))
	return 0
}

// objectWith reads an object whose members member checks (returning false
// for the ones it does not know, which pass), with the required members
// present.
func (p *parser) objectWith(member func(k string) bool, required ...string) {
	var got seen
	p.object(func(k string) {
		for i, r := range required {
			if k == r {
				got.add(1 << i)
			}
		}
		if !member(k) {
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

// chatTool reads one element of tools: {"type":"function","function":{…}}.
func (p *parser) chatTool() {
	p.objectWith(func(k string) bool {
		switch k {
		case "type":
			p.enum(0, "function")
		case "function":
			p.function(true)
		default:
			return false
		}
		return true
	}, "type", "function")
}

// function reads a function definition (with the schema members) or a
// function call (name and arguments).
func (p *parser) function(definition bool) {
	p.objectWith(func(k string) bool {
		switch k {
		case "name":
			p.str(nonEmpty)
		case "description":
			p.str(nullable)
		case "parameters":
			p.anyObject(nullable)
		case "strict":
			p.boolean(nullable)
		case "arguments":
			if definition {
				return false
			}
			p.str(0)
		default:
			return false
		}
		return true
	}, "name")
}

// toolCall reads one element of an assistant message's tool_calls.
func (p *parser) toolCall() {
	p.objectWith(func(k string) bool {
		switch k {
		case "id":
			p.str(0)
		case "type":
			p.enum(0, "function")
		case "function":
			p.stringFields(0, []string{"name", "arguments"}, "name", "arguments")
		default:
			return false
		}
		return true
	}, "id", "function")
}

// nameObject reads {"name": "…"}.
func (p *parser) nameObject() {
	p.stringFields(nonEmpty, []string{"name"}, "name")
}

func (p *parser) toolChoice() {
	if !p.want(tStr|tObj|tNull) || p.null() {
		return
	}
	if p.peek() == tStr {
		p.enum(0, "none", "auto", "required")
		return
	}
	p.objectWith(func(k string) bool {
		switch k {
		case "type":
			p.enum(0, "function")
		case "function":
			p.nameObject()
		default:
			return false
		}
		return true
	}, "type", "function")
}

func (p *parser) responseFormat() {
	p.typed(func(k string) bool {
		if k != "json_schema" {
			return false
		}
		p.objectWith(func(k string) bool {
			switch k {
			case "name":
				p.str(nonEmpty)
			case "description":
				p.str(nullable)
			case "schema":
				p.anyObject(nullable)
			case "strict":
				p.boolean(nullable)
			default:
				return false
			}
			return true
		}, "name")
		return true
	}, need{"json_schema", "json_schema"}, "text", "json_object", "json_schema")
}

// need says that an object whose type is typ must have the member key.
type need struct{ typ, key string }

// typed reads an object (or null) with a type member, one of types, whose
// other members member reads (returning false for the ones it does not know,
// which pass), and the member n asks for when the type is n.typ.
func (p *parser) typed(member func(k string) bool, n need, types ...string) {
	if !p.is(nullable, tObj) {
		return
	}
	var typ string
	var has bool
	p.objectWith(func(k string) bool {
		if k == "type" {
			typ = p.enum(0, types...)
			return true
		}
		has = has || k == n.key
		return member(k)
	}, "type")
	if p.err == nil && typ == n.typ && !has {
		p.missing(n.key)
	}
}
