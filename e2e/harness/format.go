package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// logInfo is the stream info that access logs and local replies format.
type logInfo struct {
	start        time.Time
	end          time.Time
	code         int
	details      string
	flags        []string
	reqHeaders   *headerMap
	respHeaders  *headerMap
	cluster      string
	upstreamHost string
	upstreamMeta *corev3.Metadata
	dyn          map[string]*structpb.Struct
	localBody    string
	bytesIn      int
	bytesOut     int
	attempts     int
}

// logFilter is a compiled AccessLogFilter.
type logFilter func(*logInfo) bool

type accessLogger struct {
	filter logFilter
	format *format
}

type localReplyConfig struct {
	bodyFormat *format
	mappers    []*responseMapper
}

type responseMapper struct {
	filter    logFilter
	status    int
	body      *string
	format    *format
	headers   []header
	values    []*format // each header's value, formatted like Envoy's HeaderParser
	appendHdr []bool
}

// format is a compiled SubstitutionFormatString.
type format struct {
	text        []segment // text format
	json        *structpb.Struct
	jsonSegs    map[string][]segment
	contentType string
}

type segment struct {
	literal string
	op      string // operator name; empty for a literal
	arg     string
	maxLen  int
}

const defaultLogFormat = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"` + "\n"

var (
	opRE       = regexp.MustCompile(`%([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?%`)
	supportOps = map[string]bool{
		"START_TIME": true, "REQ": true, "RESP": true, "PROTOCOL": true, "RESPONSE_CODE": true,
		"RESPONSE_CODE_DETAILS": true, "RESPONSE_FLAGS": true, "BYTES_RECEIVED": true, "BYTES_SENT": true,
		"DURATION": true, "UPSTREAM_CLUSTER": true, "UPSTREAM_HOST": true, "DYNAMIC_METADATA": true,
		"LOCAL_REPLY_BODY": true, "UPSTREAM_REQUEST_ATTEMPT_COUNT": true, "UPSTREAM_METADATA": true,
	}
)

func parseSegments(s, path string) ([]segment, error) {
	var segs []segment
	last := 0
	for _, m := range opRE.FindAllStringSubmatchIndex(s, -1) {
		if m[0] > last {
			segs = append(segs, segment{literal: s[last:m[0]]})
		}
		seg := segment{op: s[m[2]:m[3]]}
		if m[4] >= 0 {
			seg.arg = s[m[4]:m[5]]
		}
		if m[6] >= 0 {
			seg.maxLen, _ = strconv.Atoi(s[m[6]:m[7]])
		}
		if !supportOps[seg.op] {
			return nil, fmt.Errorf("%s: command operator %%%s%% unsupported by the harness", path, seg.op)
		}
		segs = append(segs, seg)
		last = m[1]
	}
	if last < len(s) {
		segs = append(segs, segment{literal: s[last:]})
	}
	return segs, nil
}

func compileFormat(sfs *corev3.SubstitutionFormatString, def, path string) (*format, error) {
	f := &format{contentType: sfs.GetContentType()}
	if sfs == nil {
		segs, err := parseSegments(def, path)
		f.text = segs
		return f, err
	}
	if len(sfs.GetFormatters()) > 0 {
		return nil, fmt.Errorf("%s.formatters: unsupported by the harness", path)
	}
	var text string
	switch {
	case sfs.GetJsonFormat() != nil:
		f.json = sfs.GetJsonFormat()
		f.jsonSegs = map[string][]segment{}
		if err := collectJSONSegs(f.json, f.jsonSegs, path+".json_format"); err != nil {
			return nil, err
		}
		if f.contentType == "" {
			f.contentType = "application/json"
		}
		return f, nil
	case sfs.GetTextFormatSource() != nil:
		s, err := dataSource(sfs.GetTextFormatSource())
		if err != nil {
			return nil, fmt.Errorf("%s.text_format_source: %w", path, err)
		}
		text = s
	default:
		text = sfs.GetTextFormat()
	}
	if f.contentType == "" {
		f.contentType = "text/plain"
	}
	segs, err := parseSegments(text, path)
	f.text = segs
	return f, err
}

func collectJSONSegs(s *structpb.Struct, out map[string][]segment, path string) error {
	for k, v := range s.GetFields() {
		switch x := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			segs, err := parseSegments(x.StringValue, path+"."+k)
			if err != nil {
				return err
			}
			out[x.StringValue] = segs
		case *structpb.Value_StructValue:
			if err := collectJSONSegs(x.StructValue, out, path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

// render formats i. It returns the text and the content type.
func (f *format) render(i *logInfo) string {
	if f.json == nil {
		var b strings.Builder
		for _, s := range f.text {
			if s.op == "" {
				b.WriteString(s.literal)
				continue
			}
			v, ok := s.value(i)
			if !ok {
				b.WriteString("-")
				continue
			}
			b.WriteString(textOf(v, s.maxLen))
		}
		return b.String()
	}
	out, _ := json.Marshal(f.renderStruct(f.json, i))
	return string(out) + "\n"
}

// renderHeader formats a header value: an operator without a value is
// empty, not "-".
func (f *format) renderHeader(i *logInfo) string {
	var b strings.Builder
	for _, s := range f.text {
		if s.op == "" {
			b.WriteString(s.literal)
		} else if v, ok := s.value(i); ok {
			b.WriteString(textOf(v, s.maxLen))
		}
	}
	return b.String()
}

func (f *format) renderStruct(s *structpb.Struct, i *logInfo) map[string]any {
	out := make(map[string]any, len(s.GetFields()))
	for k, v := range s.GetFields() {
		switch x := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			segs := f.jsonSegs[x.StringValue]
			if len(segs) == 1 && segs[0].op != "" {
				val, ok := segs[0].value(i)
				if !ok {
					out[k] = nil
				} else if str, isStr := val.(string); isStr && segs[0].maxLen > 0 && len(str) > segs[0].maxLen {
					out[k] = str[:segs[0].maxLen]
				} else {
					out[k] = val
				}
				continue
			}
			var b strings.Builder
			for _, sg := range segs {
				if sg.op == "" {
					b.WriteString(sg.literal)
					continue
				}
				val, ok := sg.value(i)
				if !ok {
					b.WriteString("-")
					continue
				}
				b.WriteString(textOf(val, sg.maxLen))
			}
			out[k] = b.String()
		case *structpb.Value_StructValue:
			out[k] = f.renderStruct(x.StructValue, i)
		default:
			out[k] = v.AsInterface()
		}
	}
	return out
}

func textOf(v any, maxLen int) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case int:
		s = strconv.Itoa(x)
	default:
		b, _ := json.Marshal(x)
		s = string(b)
	}
	if maxLen > 0 && len(s) > maxLen {
		s = s[:maxLen]
	}
	return s
}

// value evaluates one command operator.
func (s segment) value(i *logInfo) (any, bool) {
	switch s.op {
	case "START_TIME":
		return i.start.UTC().Format("2006-01-02T15:04:05.000Z"), true
	case "REQ", "RESP":
		h := i.reqHeaders
		if s.op == "RESP" {
			h = i.respHeaders
		}
		if h == nil {
			return nil, false
		}
		for _, name := range strings.Split(s.arg, "?") {
			name = strings.ToLower(name)
			if v, ok := h.joined(name); ok {
				return v, true
			}
		}
		return nil, false
	case "PROTOCOL":
		return "HTTP/1.1", true
	case "RESPONSE_CODE":
		return i.code, true
	case "RESPONSE_CODE_DETAILS":
		if i.details == "" {
			return nil, false
		}
		return i.details, true
	case "RESPONSE_FLAGS":
		if len(i.flags) == 0 {
			return nil, false
		}
		return strings.Join(orderFlags(i.flags), ","), true
	case "BYTES_RECEIVED":
		return i.bytesIn, true
	case "BYTES_SENT":
		return i.bytesOut, true
	case "DURATION":
		return int(i.end.Sub(i.start).Milliseconds()), true
	case "UPSTREAM_CLUSTER":
		if i.cluster == "" {
			return nil, false
		}
		return i.cluster, true
	case "UPSTREAM_HOST":
		if i.upstreamHost == "" {
			return nil, false
		}
		return i.upstreamHost, true
	case "UPSTREAM_REQUEST_ATTEMPT_COUNT":
		return i.attempts, true
	case "LOCAL_REPLY_BODY":
		return i.localBody, true
	case "DYNAMIC_METADATA", "UPSTREAM_METADATA":
		parts := strings.Split(s.arg, ":")
		src := i.dyn
		if s.op == "UPSTREAM_METADATA" {
			src = i.upstreamMeta.GetFilterMetadata()
		}
		ns, ok := src[parts[0]]
		if !ok {
			return nil, false
		}
		var v *structpb.Value = structpb.NewStructValue(ns)
		for _, k := range parts[1:] {
			sv := v.GetStructValue()
			if sv == nil {
				return nil, false
			}
			if v, ok = sv.GetFields()[k]; !ok {
				return nil, false
			}
		}
		return jsonValue(v), true
	}
	return nil, false
}

func jsonValue(v *structpb.Value) any {
	b, _ := protojson.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// logWriter serialises access log lines onto one writer.
type logWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logWriter) write(loggers []*accessLogger, i *logInfo) {
	if l == nil || l.w == nil {
		return
	}
	for _, lg := range loggers {
		if lg.filter != nil && !lg.filter(i) {
			continue
		}
		line := lg.format.render(i)
		l.mu.Lock()
		io.WriteString(l.w, line) //nolint:errcheck
		l.mu.Unlock()
	}
}

// flagOrder is Envoy's order of response flags (their enum order), used
// when printing %RESPONSE_FLAGS%.
var flagOrder = []string{"LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR"}

func orderFlags(flags []string) []string {
	var out []string
	for _, f := range flagOrder {
		if slices.Contains(flags, f) {
			out = append(out, f)
		}
	}
	return out
}
