package translate

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// This file and client_responses_{request,answer,stream}.go serve clients
// of OpenAI's Responses API (POST /v1/responses, what Codex CLI and the
// Agents SDK speak) on backends that do not speak it: the request becomes
// an OpenAI chat-completions body, llmproc's one internal schema, so any
// backend's translator can take it, and the chat answer that translator
// produces (JSON or SSE) becomes a Responses answer again: the response
// object, or the semantic stream events with their sequence numbers.
// OpenAI and Azure backends get the Responses body natively (endpoints.go).
//
// Choices where the two schemas do not meet (the lossy fields):
//   - developer messages become system messages (every translator reads
//     both alike); instructions come first, as a system message.
//   - custom (freeform) tools become functions taking one string
//     parameter, input; their grammar (format.definition) is appended to the
//     description, as no chat backend constrains output by a grammar. A call
//     of such a function comes back as a custom_tool_call.
//   - namespace tools are flattened: their tools become top-level
//     functions; a call of one comes back with its namespace.
//   - tool_choice allowed_tools keeps only the allowed tools in the request
//     (the model cannot call the others anyway) with mode auto or required.
//   - reasoning.summary has no chat equivalent: whatever reasoning text the
//     backend returns is the reasoning item's summary. reasoning.effort
//     becomes reasoning_effort, for the backend's translator to map or
//     refuse.
//   - web_search tools become web_search_options, which the backend's
//     translator maps where its provider has a search tool or refuses (a
//     400 naming the backend, unless its drop_params lists
//     web_search_options). Other built-in tools (file_search,
//     code_interpreter, image_generation, computer_use, mcp, local_shell)
//     are refused unless the backend's drop_params lists their type.
//   - metadata, store, prompt_cache_key, service_tier, client_metadata,
//     stream_options, truncation and include (but
//     reasoning.encrypted_content) do not change the answer and are dropped
//     (metadata is echoed back in the response object). Unknown top-level
//     fields are dropped too: clients such as Codex add new ones often.
//   - Earlier built-in tool calls in input (web_search_call and the like)
//     are dropped: the backend cannot replay them; their results are in the
//     messages that follow. Reasoning items are dropped unless they carry
//     this backend's signed thinking (encrypted_content, below).
//   - Signed thinking (the hub's thinking_blocks: Anthropic's thinking with
//     its signature, redacted thinking, Gemini's thought signatures with the
//     tool call they came on) travels in a reasoning item's
//     encrypted_content when the client includes
//     "reasoning.encrypted_content": "llmproc:v1:<schema>:<backend>:" and the
//     blocks as base64url JSON. Opaque to the client and bound to the
//     backend that produced it: sent back to that backend as the assistant
//     message's thinking_blocks, ignored by any other (OpenAI's own
//     encrypted content included). A Gemini answer with signatures but no
//     thought text has a reasoning item with an empty summary to carry them.
//   - previous_response_id, conversation, prompt, background and
//     item_reference input items need OpenAI's server-side state and are
//     refused here.
//   - max_tool_calls has no chat equivalent: refused unless dropped.

// ResponsesMeta is what turning a chat answer back into a Responses answer
// needs from the request: which tool calls are custom or namespaced, what
// the response object echoes, and whether the client asked for reasoning's
// encrypted content. It is read again from the client's body on each
// attempt, so no state outlives the attempt.
type ResponsesMeta struct {
	custom    map[string]bool   // custom tools' names
	namespace map[string]string // a namespaced tool's name → its namespace
	encrypted bool              // include: ["reasoning.encrypted_content"]
	tag       string            // the encrypted_content prefix of this backend
	echo      responsesEcho
}

// responsesEcho holds the request's fields the response object repeats,
// each as raw JSON ("" when absent: the default is written).
type responsesEcho struct {
	instructions, maxOutputTokens, parallelToolCalls, reasoning, store string
	temperature, text, toolChoice, tools, topP, truncation, user, meta string
}

func (m *ResponsesMeta) isCustom(name string) bool { return m != nil && m.custom[name] }

func (m *ResponsesMeta) namespaceOf(name string) string {
	if m == nil {
		return ""
	}
	return m.namespace[name]
}

// reasoningTag is the encrypted_content prefix of be's signed thinking.
func reasoningTag(be *config.RBackend) string {
	if be == nil {
		return ""
	}
	return "llmproc:v1:" + be.Schema + ":" + be.Name + ":"
}

// encodeThinking is the encrypted_content of blocks for the backend tag.
func encodeThinking(tag string, blocks []ThinkingBlock) string {
	if tag == "" || len(blocks) == 0 {
		return ""
	}
	b := []byte{'['}
	for i, tb := range blocks {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendThinkingBlock(b, tb)
	}
	b = append(b, ']')
	return tag + base64.RawURLEncoding.EncodeToString(b)
}

// decodeThinking reads the blocks of an encrypted_content bound to tag; nil
// for another backend's, OpenAI's own, or anything unreadable.
func decodeThinking(tag, enc string) []ThinkingBlock {
	rest, ok := strings.CutPrefix(enc, tag)
	if !ok || tag == "" {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || !gjson.ValidBytes(raw) {
		return nil
	}
	return hubSignedBlocks(gjson.ParseBytes(raw))
}

// respBad is a 400 for an invalid Responses request.
func respBad(param, format string, args ...any) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "invalid_value", Param: param,
		Message: fmt.Sprintf(format, args...)}
}

// respUnsupported is a 400 for a valid Responses field llmproc cannot send
// to a backend that does not speak the Responses API.
func respUnsupported(be *config.RBackend, param, why string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "unsupported_parameter", Param: param,
		Message: fmt.Sprintf("'%s' is not supported for backend %q (schema %s), which does not speak the Responses API: %s.", param, be.Name, be.Schema, why)}
}

// respUnsupportedTool is the 400 for a built-in tool a backend has no
// equivalent of, unless its drop_params lists the tool's type (nil: drop it).
func respUnsupportedTool(be *config.RBackend, param, typ string) error {
	if slices.Contains(be.DropParams, typ) {
		return nil
	}
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "unsupported_tool", Param: param,
		Message: fmt.Sprintf("The built-in tool '%s' is not supported by backend %q (schema %s): its provider has no equivalent llmproc maps it to. List %s in the backend's drop_params to have it dropped instead.", typ, be.Name, be.Schema, typ)}
}

// chatParamToResponses names a chat-completions parameter, as a
// translator's error names it, by the Responses field it came from.
var chatParamToResponses = map[string]string{
	"reasoning_effort":      "reasoning.effort",
	"response_format":       "text.format",
	"verbosity":             "text.verbosity",
	"max_tokens":            "max_output_tokens",
	"max_completion_tokens": "max_output_tokens",
	"logprobs":              "top_logprobs",
}

// ResponsesError renames, in a translator's error for a converted
// Responses request, the chat-completions parameter by the Responses field
// the client sent; other errors are returned unchanged.
func ResponsesError(err error) error {
	e, ok := err.(*apierr.Error)
	if !ok || e.Param == "" {
		return err
	}
	if e.Param == "web_search_options" && e.Code == "unsupported_parameter" {
		c := *e
		c.Code, c.Param = "unsupported_tool", "tools"
		c.Message = strings.Replace(c.Message, "Parameter 'web_search_options' is", "The built-in tool 'web_search' (chat-completions 'web_search_options') is", 1)
		c.Message = strings.Replace(c.Message, "List it in", "List web_search_options in", 1)
		return &c
	}
	name, ok := chatParamToResponses[e.Param]
	if !ok {
		return err
	}
	c := *e
	c.Param = name
	c.Message = strings.Replace(c.Message, "'"+e.Param+"'", "'"+name+"' (chat-completions '"+e.Param+"')", 1)
	return &c
}
