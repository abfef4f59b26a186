package harness

import (
	"fmt"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// celFilterName is the CEL access-log extension filter
// (source/extensions/access_loggers/filters/cel/cel.cc in Envoy).
const celFilterName = "envoy.access_loggers.extension_filters.cel"

// celEnv declares the Envoy attributes the harness gives CEL expressions
// (docs: intro/arch_overview/advanced/attributes): request.path,
// request.url_path, request.method, request.host, request.headers,
// response.code, response.code_details, response.headers. Any other
// attribute is absent, so an expression reading it fails to evaluate, which
// Envoy's filter, like this one, takes as false.
var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("response", cel.MapType(cel.StringType, cel.DynType)),
	)
	if err != nil {
		panic(err)
	}
	return env
}()

// compileCELFilter compiles an ExtensionFilter of type
// envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter. A
// cel_config, or an expression that does not compile or is not a bool, is
// refused at Start, as Envoy refuses it when the config loads.
func compileCELFilter(ef *accesslogv3.ExtensionFilter, path string) (logFilter, error) {
	if ef.GetName() != celFilterName {
		return nil, fmt.Errorf("%s: extension filter %q unsupported by the harness", path, ef.GetName())
	}
	ex := &celv3.ExpressionFilter{}
	if err := anyTo(ef.GetTypedConfig(), ex); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if ex.GetCelConfig() != nil {
		return nil, fmt.Errorf("%s: cel_config unsupported by the harness", path)
	}
	ast, iss := celEnv.Compile(ex.GetExpression())
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s: expression %q: %w", path, ex.GetExpression(), iss.Err())
	}
	if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
		return nil, fmt.Errorf("%s: expression %q is not a bool", path, ex.GetExpression())
	}
	prg, err := celEnv.Program(ast)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return func(i *logInfo) bool {
		out, _, err := prg.Eval(map[string]any{"request": celRequest(i), "response": celResponse(i)})
		return err == nil && out == types.True
	}, nil
}

func celRequest(i *logInfo) map[string]any {
	m := map[string]any{"headers": celHeaders(i.reqHeaders)}
	if h := i.reqHeaders; h != nil {
		p := h.value(":path")
		up, _, _ := strings.Cut(p, "?")
		m["path"], m["url_path"] = p, up
		m["method"], m["host"] = h.value(":method"), h.value(":authority")
	}
	return m
}

func celResponse(i *logInfo) map[string]any {
	return map[string]any{"code": int64(i.code), "code_details": i.details, "headers": celHeaders(i.respHeaders)}
}

// celHeaders is a header map as CEL sees it: repeated headers joined with
// ",", as Envoy's attribute does.
func celHeaders(h *headerMap) map[string]string {
	out := map[string]string{}
	if h == nil {
		return out
	}
	for _, e := range h.kv {
		if v, ok := out[e.key]; ok {
			out[e.key] = v + "," + e.value
		} else {
			out[e.key] = e.value
		}
	}
	return out
}
