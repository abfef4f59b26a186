package extproc

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/usage"
)

// Keys of the usage and cost the upstream role writes to the llmproc dynamic
// metadata at the end of each attempt, for the access log (envoy/listener.go
// renders every one of them).
//
// The token counts are those usage.Cost priced (usage.Usage.Priced), in
// OpenAI's nesting: prompt_tokens includes cached_tokens and
// cache_write_tokens, cache_write_tokens includes cache_write_1h_tokens and
// completion_tokens includes reasoning_tokens. So cost_usd is exactly
// (prompt − cached − cache_write)·input + cached·cached_input +
// (cache_write − cache_write_1h)·cache_write + cache_write_1h·cache_write_1h +
// completion·output at the model's prices.
const (
	KeyUsage              = "usage" // known, estimated or unknown
	KeyPromptTokens       = "prompt_tokens"
	KeyCompletionTokens   = "completion_tokens"
	KeyCachedTokens       = "cached_tokens"
	KeyCacheWriteTokens   = "cache_write_tokens"
	KeyCacheWrite1hTokens = "cache_write_1h_tokens"
	KeyReasoningTokens    = "reasoning_tokens"
	KeyWebSearches        = "web_search_requests"
	KeyCostUSD            = "cost_usd"
	// The estimate of an answer billed without usage (bytesPerToken), priced
	// like reported usage; the budget settles at it.
	KeyEstimatedPromptTokens     = "estimated_prompt_tokens"
	KeyEstimatedCompletionTokens = "estimated_completion_tokens"
	KeyEstimatedCostUSD          = "estimated_cost_usd"
)

// AccessLogKeys are the llmproc dynamic-metadata keys the rendered access log
// shows (envoy/listener.go), in the order of the README's field list: the
// router's decisions, then the attempt's result, usage and cost.
func AccessLogKeys() []string {
	return []string{
		KeyTraceID, KeyClient, KeyTenant, KeyKeyID, KeyRoute, KeyClass, KeyClassConfidence, KeyPool, "backend", KeyRequestedModel, "model",
		KeyAttemptBackends, KeyCache, "budget", "outcome", KeyUsage,
		KeyPromptTokens, KeyCachedTokens, KeyCacheWriteTokens, KeyCacheWrite1hTokens,
		KeyCompletionTokens, KeyReasoningTokens, KeyWebSearches, KeyCostUSD,
		KeyEstimatedPromptTokens, KeyEstimatedCompletionTokens, KeyEstimatedCostUSD,
	}
}

// logUsage writes reported usage u, priced at cost pico-dollars.
func logUsage(md map[string]*structpb.Value, u usage.Usage, cost int64) {
	u = u.Priced()
	md[KeyUsage] = structpb.NewStringValue("known")
	for k, n := range map[string]int64{
		KeyPromptTokens: u.Input, KeyCompletionTokens: u.Output, KeyCachedTokens: u.CachedInput,
		KeyCacheWriteTokens: u.CacheWrite, KeyCacheWrite1hTokens: u.CacheWrite1h, KeyReasoningTokens: u.Reasoning,
	} {
		md[k] = structpb.NewNumberValue(float64(n))
	}
	if u.WebSearches > 0 {
		md[KeyWebSearches] = structpb.NewNumberValue(float64(u.WebSearches))
	}
	md[KeyCostUSD] = structpb.NewStringValue(usage.FormatUSD(cost))
}

// logEstimate writes the estimate of an answer billed without usage.
func logEstimate(md map[string]*structpb.Value, in, out, cost int64) {
	md[KeyUsage] = structpb.NewStringValue("unknown")
	md[KeyEstimatedPromptTokens] = structpb.NewNumberValue(float64(in))
	md[KeyEstimatedCompletionTokens] = structpb.NewNumberValue(float64(out))
	md[KeyEstimatedCostUSD] = structpb.NewStringValue(usage.FormatUSD(cost))
}

// newRequestID is a random UUID (version 4), as Envoy's default request-id
// extension makes them (source/extensions/request_id/uuid/config.cc).
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// traceID is the trace id of a W3C traceparent header
// (version-traceid-parentid-flags, lowercase hex), or "" when the header is
// not a valid one: version ff, an all-zero id, wrong lengths. A version past
// 00 may append fields after the flags.
func traceID(tp string) string {
	tp = strings.TrimSpace(tp)
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || len(tp) > 55 && (tp[:2] == "00" || tp[55] != '-') {
		return ""
	}
	version, id, parent, flags := tp[:2], tp[3:35], tp[36:52], tp[53:55]
	if !lowerHex(version) || version == "ff" || !lowerHex(id) || !lowerHex(parent) || !lowerHex(flags) ||
		strings.Trim(id, "0") == "" || strings.Trim(parent, "0") == "" {
		return ""
	}
	return id
}

// spanID is the parent span id of a valid W3C traceparent, "" otherwise.
func spanID(tp string) string {
	if traceID(tp) == "" {
		return ""
	}
	return strings.TrimSpace(tp)[36:52]
}

func lowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
