# llmproc — see README.md. Every target installs what it needs (Go modules via
# the module proxy); nothing here needs Envoy or a container engine.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
CONFIG      ?= examples/quickstart/llmproc.yaml
BIN         := bin/llmproc

.PHONY: all build run deps tools claude-code test lint unit e2e bench load envoy kubectl-validate check-envoy clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/llmproc

# Starts fake providers, llmproc and Envoy (a real one if ENVOY_BIN is set or
# `envoy` is on PATH, otherwise the Envoy-side harness) on examples/quickstart.
run:
	$(GO) run ./e2e/quickstart -config $(CONFIG)

# System packages the tests need: redis-server (Debian package) for the shared
# cache tier, promtool (Debian package prometheus) for the alert-rule tests
# in e2e/observability, and npm for the real-client tests (Claude Code from the
# npm registry). Installed with apt-get when missing; sudo only when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_DEPS := redis-server:redis-server promtool:prometheus npm:npm
deps:
	@missing=; for d in $(DEB_DEPS); do \
		command -v $${d%%:*} >/dev/null 2>&1 || missing="$$missing $${d#*:}"; \
	done; \
	[ -z "$$missing" ] || { \
		echo "installing$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }
	@for d in $(DEB_DEPS); do \
		command -v $${d%%:*} >/dev/null 2>&1 || { echo "$${d%%:*} still missing after apt-get install of $${d#*:}" >&2; exit 1; }; \
	done

# Claude Code from npm (its package ships a native binary) for the
# real-client test e2e/claude_code_test.go, into .cache/npm (ignored by git),
# once per version. Without npm the test skips, except under CI=true, where
# this target fails.
CLAUDE_CODE_VERSION := 2.1.328
CLAUDE := .cache/npm/node_modules/.bin/claude
claude-code:
	@$(CLAUDE) --version 2>/dev/null | grep -q '^$(CLAUDE_CODE_VERSION) ' && exit 0; \
	if ! command -v npm >/dev/null 2>&1; then \
		if [ "$$CI" = true ]; then echo "npm is missing: cannot install Claude Code" >&2; exit 1; fi; \
		echo "npm is missing: TestClaudeCode will skip"; exit 0; \
	fi; \
	npm install --prefix .cache/npm --no-audit --no-fund --no-save @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)

# Every test: vet, staticcheck, unit tests and e2e with the race detector.
# kubectl-validate (built from the module proxy, once) checks the rendered
# Kubernetes and Istio manifests with the API server's own schemas.
test: deps lint tools claude-code
	$(GO) test -race -count=1 ./...

KUBECTL_VALIDATE := $(shell $(GO) env GOPATH)/bin/kubectl-validate
tools: $(KUBECTL_VALIDATE)
$(KUBECTL_VALIDATE):
	$(GO) install sigs.k8s.io/kubectl-validate@v0.0.4

lint:
	$(GO) mod download
	@unformatted=$$(gofmt -l cmd e2e envoy filter); [ -z "$$unformatted" ] || { echo "gofmt needed:" $$unformatted >&2; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

unit: deps
	$(GO) test -race -count=1 ./filter/... ./envoy/... ./cmd/...

e2e: deps claude-code
	$(GO) test -race -count=1 -v ./e2e/...

bench: deps
	$(GO) test -run='^$$' -bench=. -benchmem ./filter/...

# Load driver: full request cycles over loopback gRPC, llmproc vs a no-op
# floor. The driver runs on CPU 0 and the servers on CPU 1, so the two do not
# compete for a core and the server's CPU per cycle is repeatable.
load: build
	$(GO) build -o bin/load ./e2e/load
	taskset -c 0 bin/load -server-cpus 1 -llmproc-bin $(BIN) -concurrency 16 -duration 10s -answer both

# Re-render the checked-in Envoy bootstrap from the quickstart config, and the
# Istio and Kubernetes renderings (envoy/istio, examples/kubernetes) of the
# quickstart, routing-by-task and openai configs.
envoy:
	$(GO) test ./envoy ./envoy/mesh -run TestGolden -update

# Optional: the API server's schema and CEL validation of those renderings,
# offline (envoy/mesh TestKubectlValidate skips without the tool).
kubectl-validate: tools
	$(GO) test ./envoy/mesh -run TestKubectlValidate -v

clean:
	rm -rf bin
