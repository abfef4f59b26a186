# llmproc — see README.md. Every target installs what it needs (Go modules via
# the module proxy); nothing here needs Envoy or a container engine.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
CONFIG      ?= examples/quickstart/llmproc.yaml
BIN         := bin/llmproc

.PHONY: all build run deps tools clients test lint unit e2e e2e-clients bench load envoy kubectl-validate check-envoy clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/llmproc

# Starts fake providers, llmproc and Envoy (a real one if ENVOY_BIN is set or
# `envoy` is on PATH, otherwise the Envoy-side harness) on examples/quickstart.
run:
	$(GO) run ./e2e/quickstart -config $(CONFIG)

# System packages the tests need: redis-server (Debian package) for the shared
# cache tier, promtool (Debian package prometheus) for the alert-rule tests
# in e2e/observability, npm for the real-client tests (Claude Code, Codex CLI,
# Gemini CLI and the SDKs from the npm registry), and chromium (headless) for the
# status page's browser test (e2e TestStatusPageChromium). Installed with apt-get
# when missing; sudo only when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_DEPS := redis-server:redis-server promtool:prometheus npm:npm chromium:chromium
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

# Real clients from npm (their packages ship their binaries): Claude Code,
# Codex CLI, Gemini CLI and the official Anthropic, OpenAI (+ Agents) and
# Google GenAI SDKs, pinned by e2e/clients/package-lock.json and installed
# into .cache/clients (ignored by git and by the go tool) for the
# real-client tests (e2e/clients.go). Without npm those tests skip, except
# under CI=true, where this target fails.
NPM_PREFIX := .cache/clients
clients:
	@mkdir -p $(NPM_PREFIX); \
	if cmp -s e2e/clients/package-lock.json $(NPM_PREFIX)/node_modules/.lock-installed; then exit 0; fi; \
	if ! command -v npm >/dev/null 2>&1; then \
		if [ "$$CI" = true ]; then echo "npm is missing: cannot install the real clients" >&2; exit 1; fi; \
		echo "npm is missing: the real-client tests will skip"; exit 0; \
	fi; \
	cp e2e/clients/package.json e2e/clients/package-lock.json $(NPM_PREFIX)/ && \
	npm ci --prefix $(NPM_PREFIX) --no-audit --no-fund && \
	cp e2e/clients/package-lock.json $(NPM_PREFIX)/node_modules/.lock-installed

# Every test: vet, staticcheck, unit tests and e2e with the race detector.
# kubectl-validate (built from the module proxy, once) checks the rendered
# Kubernetes and Istio manifests with the API server's own schemas.
test: deps lint tools clients
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

e2e: deps clients
	$(GO) test -race -count=1 -v ./e2e/...

# Only the real-client tests (Claude Code, Codex CLI, Gemini CLI and the
# official SDKs driven through the harness; e2e/clients.go). Each such test's
# name starts with one of these prefixes.
CLIENT_TESTS := ^Test(ClaudeCode|Codex|GeminiCLI|OpenAISDK|AgentsSDK|AnthropicSDK|GenAISDK)
e2e-clients: deps clients
	$(GO) test -race -count=1 -v -run '$(CLIENT_TESTS)' ./e2e

# The task classifier: regenerate the corpus from its building blocks, train
# the shipped model (filter/route/classifier.model, reproduced byte for byte;
# TestShippedModelReproduces checks it) and print its held-out accuracy.
classifier:
	$(GO) run ./filter/route/testdata/corpusgen
	$(GO) run ./cmd/llmproc classifier train

bench: deps
	$(GO) test -run='^$$' -bench=. -benchmem ./filter/...

# Load driver (BENCHMARKS.md): full request cycles over loopback gRPC, llmproc
# and the no-op floor interleaved over three rounds (seven cases, then 1,000
# requests/s open loop). The driver runs on CPU 0 and the servers on CPU 1, so
# the two do not compete for a core; the driver checks the servers' CPU sets.
# About five minutes; fails on any wrong answer. The markdown tables are also
# written to bin/load.md.
load: build
	$(GO) build -o bin/load ./e2e/load
	taskset -c 0 bin/load -server-cpus 1 -llmproc-bin $(BIN) -rounds 3 -concurrency 16 -duration 4s -warmup 1s -rate 1000 -rate-duration 8s -markdown bin/load.md

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
