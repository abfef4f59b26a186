package main

import (
	"errors"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// filterSpec is one ext_proc filter as Envoy runs it: the processing mode it
// starts every stream with, and the rules for a server's mode_override.
type filterSpec struct {
	name          string
	md            metadata.MD // the grpc_service initial metadata
	mode          *extprocfilterv3.ProcessingMode
	allowOverride bool
	allowedModes  []*extprocfilterv3.ProcessingMode
	sendNoWait    bool
	// receive and forward are the metadata namespaces Envoy stores from
	// replies and sends in metadata_context.
	receive, forward []string
}

// specOf reads a rendered ext_proc filter (as envoy.RouterFilter and
// envoy.UpstreamFilter build it).
func specOf(name string, f *hcmv3.HttpFilter) (*filterSpec, error) {
	var ep extprocfilterv3.ExternalProcessor
	if err := f.GetTypedConfig().UnmarshalTo(&ep); err != nil {
		return nil, fmt.Errorf("%s filter: %w", name, err)
	}
	return specFromConfig(name, &ep), nil
}

func specFromConfig(name string, ep *extprocfilterv3.ExternalProcessor) *filterSpec {
	s := &filterSpec{
		name:          name,
		md:            metadata.MD{},
		mode:          proto.Clone(ep.GetProcessingMode()).(*extprocfilterv3.ProcessingMode),
		allowOverride: ep.GetAllowModeOverride(),
		allowedModes:  ep.GetAllowedOverrideModes(),
		sendNoWait:    ep.GetSendBodyWithoutWaitingForHeaderResponse(),
		receive:       ep.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(),
		forward:       ep.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(),
	}
	for _, h := range ep.GetGrpcService().GetInitialMetadata() {
		s.md.Append(h.GetKey(), h.GetValue())
	}
	return s
}

// overridden returns the processing mode after a headers reply's
// mode_override, exactly as Envoy's ext_proc filter decides it
// (source/extensions/filters/http/ext_proc/ext_proc.cc, Filter::onReceiveMessage
// and effectiveModeOverride, read at envoyproxy/envoy commit
// 0026fb37ac23a204dd789ea695ef98857effd7ea and the later revision with
// allowed_override_modes): the override is honoured only on a reply to a
// headers message, only when allow_mode_override is true and
// send_body_without_waiting_for_header_response is false (and neither body
// mode is FULL_DUPLEX_STREAMED), and, when allowed_override_modes is set,
// only if the effective override equals one of them ignoring
// request_header_mode. DEFAULT header and trailer modes in the override
// keep the current ones; both body modes are always taken from the
// override (an override that names only request_body_mode NONE therefore
// also sets response_body_mode NONE). The result applies to both directions
// of the stream (decoding_state_ and encoding_state_).
func (s *filterSpec) overridden(cur *extprocfilterv3.ProcessingMode, resp *extprocv3.ProcessingResponse) *extprocfilterv3.ProcessingMode {
	mo := resp.GetModeOverride()
	if mo == nil || !s.allowOverride || s.sendNoWait {
		return cur
	}
	const fd = extprocfilterv3.ProcessingMode_FULL_DUPLEX_STREAMED
	if s.mode.GetRequestBodyMode() == fd || s.mode.GetResponseBodyMode() == fd {
		return cur
	}
	switch resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders, *extprocv3.ProcessingResponse_ResponseHeaders:
	default:
		return cur
	}
	next := proto.Clone(cur).(*extprocfilterv3.ProcessingMode)
	if m := mo.GetRequestHeaderMode(); m != extprocfilterv3.ProcessingMode_DEFAULT {
		next.RequestHeaderMode = m
	}
	if m := mo.GetResponseHeaderMode(); m != extprocfilterv3.ProcessingMode_DEFAULT {
		next.ResponseHeaderMode = m
	}
	if m := mo.GetRequestTrailerMode(); m != extprocfilterv3.ProcessingMode_DEFAULT {
		next.RequestTrailerMode = m
	}
	if m := mo.GetResponseTrailerMode(); m != extprocfilterv3.ProcessingMode_DEFAULT {
		next.ResponseTrailerMode = m
	}
	next.RequestBodyMode = mo.GetRequestBodyMode()
	next.ResponseBodyMode = mo.GetResponseBodyMode()
	if len(s.allowedModes) > 0 {
		ok := false
		for _, a := range s.allowedModes {
			if next.GetRequestBodyMode() == a.GetRequestBodyMode() && next.GetRequestTrailerMode() == a.GetRequestTrailerMode() &&
				next.GetResponseHeaderMode() == a.GetResponseHeaderMode() && next.GetResponseBodyMode() == a.GetResponseBodyMode() &&
				next.GetResponseTrailerMode() == a.GetResponseTrailerMode() {
				ok = true
			}
		}
		if !ok {
			return cur
		}
	}
	return next
}

// sendsHeaders reports whether a header mode sends the headers (DEFAULT
// sends them).
func sendsHeaders(m extprocfilterv3.ProcessingMode_HeaderSendMode) bool {
	return m != extprocfilterv3.ProcessingMode_SKIP
}

// checkBodyMode refuses body modes the driver does not model.
func checkBodyMode(m extprocfilterv3.ProcessingMode_BodySendMode) error {
	switch m {
	case extprocfilterv3.ProcessingMode_NONE, extprocfilterv3.ProcessingMode_BUFFERED, extprocfilterv3.ProcessingMode_STREAMED:
		return nil
	}
	return fmt.Errorf("%w: body mode %v (the driver models NONE, BUFFERED and STREAMED)", errUnexpected, m)
}

// headerList is a request or response header map in Envoy's order.
type headerList []*corev3.HeaderValue

func (h headerList) get(key string) (string, bool) {
	for _, v := range h {
		if v.GetKey() == key {
			return string(v.GetRawValue()), true
		}
	}
	return "", false
}

// apply returns h with a reply's header mutation applied as Envoy's ext_proc
// filter applies it: removals, then each set header overwrites the existing
// values unless its append wrapper is true.
func (h headerList) apply(m *extprocv3.HeaderMutation) headerList {
	if m == nil {
		return h
	}
	out := make(headerList, 0, len(h)+len(m.GetSetHeaders()))
	for _, v := range h {
		removed := false
		for _, r := range m.GetRemoveHeaders() {
			if strings.EqualFold(r, v.GetKey()) {
				removed = true
			}
		}
		if !removed {
			out = append(out, v)
		}
	}
	for _, o := range m.GetSetHeaders() {
		key := strings.ToLower(o.GetHeader().GetKey())
		val := o.GetHeader().GetRawValue()
		if val == nil {
			val = []byte(o.GetHeader().GetValue())
		}
		//lint:ignore SA1019 Envoy's ext_proc filter still reads the deprecated append wrapper (as the harness models it)
		if !o.GetAppend().GetValue() {
			kept := out[:0]
			for _, v := range out {
				if v.GetKey() != key {
					kept = append(kept, v)
				}
			}
			out = kept
		}
		out = append(out, &corev3.HeaderValue{Key: key, RawValue: val})
	}
	return out
}

// mergeMetadata merges a reply's dynamic metadata into md for the
// namespaces Envoy accepts, key by key (StreamInfo::setDynamicMetadata).
func mergeMetadata(md map[string]*structpb.Struct, resp *extprocv3.ProcessingResponse, receive []string) {
	for ns, v := range resp.GetDynamicMetadata().GetFields() {
		accepted := false
		for _, r := range receive {
			accepted = accepted || r == ns
		}
		if !accepted || v.GetStructValue() == nil {
			continue
		}
		dst := md[ns]
		if dst == nil {
			dst = &structpb.Struct{Fields: map[string]*structpb.Value{}}
			md[ns] = dst
		}
		for k, f := range v.GetStructValue().GetFields() {
			dst.Fields[k] = f
		}
	}
}

// errImmediate marks a router reply that ended the request with an
// immediate response (returned in the cycle's outcome, not as a failure).
var errImmediate = errors.New("immediate response")
