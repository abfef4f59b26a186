package validate

import "math"

// The Anthropic Messages request, as Anthropic documents it
// (POST /v1/messages). Members not listed here pass unchecked; what
// llmproc's translator cannot carry to a backend it refuses itself.

var blockTypes = []string{
	"text", "image", "document", "search_result", "tool_use", "tool_result",
	"thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result",
	"web_fetch_tool_result", "code_execution_tool_result", "bash_code_execution_tool_result",
	"text_editor_code_execution_tool_result", "mcp_tool_use", "mcp_tool_result",
	"container_upload",
}

func (p *parser) messages(top func(string, []byte)) {
	const (
		hasModel seen = 1 << iota
		hasMessages
		hasMaxTokens
	)
	var s seen
	p.body(top, func(k string) {
		switch k {
		case "model":
			s.add(hasModel)
			p.modelName()
		case "messages":
			s.add(hasMessages)
			p.array(1, func(int) { p.anthropicMessage() })
		case "max_tokens":
			s.add(hasMaxTokens)
			p.integer(0, 1, math.MaxInt64)
		case "system":
			if p.want(tStr|tArr|tNull) && p.peek() == tArr {
				p.array(0, func(int) { p.block("text") })
			} else {
				p.str(nullable)
			}
		case "temperature", "top_p":
			p.num(nullable, 0, 1)
		case "top_k":
			p.integer(nullable, 0, math.MaxInt64)
		case "stop_sequences":
			p.strings(nullable)
		case "stream":
			p.boolean(nullable)
		case "metadata":
			if p.is(nullable, tObj) {
				p.stringFields(nullable, nil, "user_id")
			}
		case "service_tier":
			p.str(nullable)
		case "tools":
			if p.is(nullable, tArr) {
				p.array(0, func(int) { p.anthropicTool() })
			}
		case "tool_choice":
			p.anthropicToolChoice()
		case "thinking":
			p.thinking()
		default:
			p.any()
		}
	})
	if p.err != nil {
		return
	}
	switch {
	case !s.has(hasModel):
		p.missing("model")
	case !s.has(hasMaxTokens) && !p.countTokens:
		p.missing("max_tokens")
	case !s.has(hasMessages):
		p.missing("messages")
	}
}

func (p *parser) anthropicMessage() {
	p.objectWith(func(k string) bool {
		switch k {
		case "role":
			p.enum(0, "user", "assistant", "system") // Claude Code sends system turns
		case "content":
			p.blocks()
		default:
			return false
		}
		return true
	}, "role", "content")
}

// blocks reads content: a string or an array of content blocks.
func (p *parser) blocks() {
	if p.want(tStr|tArr) && p.peek() == tArr {
		p.array(0, func(int) { p.block() })
	} else {
		p.str(0)
	}
}

// block reads one content block; with only, its type must be one of those.
func (p *parser) block(only ...string) {
	const (
		hasText seen = 1 << iota
		hasSource
		hasID
		hasName
		hasInput
		hasToolUseID
		hasThinking
		hasSignature
		hasData
	)
	var (
		s   seen
		typ string
		got bool
	)
	p.object(func(k string) {
		switch k {
		case "type":
			got = true
			typ = p.strv(0)
		case "text":
			s.add(hasText)
			p.str(0)
		case "source":
			s.add(hasSource)
			p.objectWith(func(k string) bool {
				switch k {
				case "type", "media_type", "url", "file_id":
					p.str(0)
				default:
					return false
				}
				return true
			}, "type")
		case "id":
			s.add(hasID)
			p.str(nonEmpty)
		case "name":
			s.add(hasName)
			p.str(nonEmpty)
		case "input":
			s.add(hasInput)
			p.anyObject(0)
		case "tool_use_id":
			s.add(hasToolUseID)
			p.str(nonEmpty)
		case "is_error":
			p.boolean(nullable)
		case "thinking":
			s.add(hasThinking)
			p.str(0)
		case "signature":
			s.add(hasSignature)
			p.str(0)
		case "data":
			s.add(hasData)
			p.str(0)
		case "cache_control":
			p.anyObject(nullable)
		default:
			p.any()
		}
	})
	if p.err != nil {
		return
	}
	if !got {
		p.missing("type")
		return
	}
	allowed := blockTypes
	if len(only) > 0 {
		allowed = only
	}
	known := false
	for _, t := range allowed {
		known = known || t == typ
	}
	if !known {
		p.failAt("type", "invalid_value", "%s is not one of %s", quote(typ), quoteAll(allowed))
		return
	}
	need := func(bit seen, key string) {
		if !s.has(bit) {
			p.missing(key)
		}
	}
	switch typ {
	case "text":
		need(hasText, "text")
	case "image", "document":
		need(hasSource, "source")
	case "tool_use", "server_tool_use", "mcp_tool_use":
		need(hasID, "id")
		need(hasName, "name")
		need(hasInput, "input")
	case "tool_result", "mcp_tool_result", "web_search_tool_result", "web_fetch_tool_result",
		"code_execution_tool_result", "bash_code_execution_tool_result", "text_editor_code_execution_tool_result":
		need(hasToolUseID, "tool_use_id")
	case "thinking":
		need(hasThinking, "thinking")
		need(hasSignature, "signature")
	case "redacted_thinking":
		need(hasData, "data")
	}
}

// The content member of a block (tool_result, search_result) is a string or
// blocks; block reads it through any, so it is syntax-checked only. The
// translator checks what it carries.

func (p *parser) anthropicTool() {
	var typ string
	var hasSchema bool
	p.objectWith(func(k string) bool {
		switch k {
		case "name":
			p.str(nonEmpty)
		case "type":
			typ = p.strv(nullable)
		case "description":
			p.str(nullable)
		case "input_schema":
			hasSchema = true
			p.anyObject(0)
		case "cache_control":
			p.anyObject(nullable)
		default:
			return false
		}
		return true
	}, "name")
	if p.err == nil && (typ == "" || typ == "custom") && !hasSchema {
		p.missing("input_schema")
	}
}

func (p *parser) anthropicToolChoice() {
	p.typed(func(k string) bool {
		switch k {
		case "name":
			p.str(nonEmpty)
		case "disable_parallel_tool_use":
			p.boolean(nullable)
		default:
			return false
		}
		return true
	}, need{"tool", "name"}, "auto", "any", "tool", "none")
}

func (p *parser) thinking() {
	p.typed(func(k string) bool {
		if k != "budget_tokens" {
			return false
		}
		p.integer(0, 1024, math.MaxInt64)
		return true
	}, need{"enabled", "budget_tokens"}, "enabled", "disabled", "adaptive")
}
