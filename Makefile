# Gatehouse: an OAuth 2.0 authorization server run by a Kubernetes operator.
# `make help` lists the targets. Everything this Makefile needs besides Go is
# built from Go modules into ./bin, so a fresh machine needs only Go and make.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/gatehouse-dev/gatehouse/internal/version.Version=$(VERSION) \
           -X github.com/gatehouse-dev/gatehouse/internal/version.Commit=$(COMMIT)

CONTROLLER_GEN_VERSION := v0.23.0
GOLANGCI_LINT_VERSION := v2.15.0
HELM_VERSION := v4.3.1
CRD_REF_DOCS_VERSION := v0.3.0
ACTIONLINT_VERSION := v1.7.12
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
HELM := $(BIN)/helm-$(HELM_VERSION)
CRD_REF_DOCS := $(BIN)/crd-ref-docs-$(CRD_REF_DOCS_VERSION)
ACTIONLINT := $(BIN)/actionlint-$(ACTIONLINT_VERSION)
# Prometheus and promtool, for the alert and dashboard tests (test/monitoring);
# the version is pinned in hack/prometheus.sh.
PROMETHEUS_VERSION := $(shell awk -F= '$$1 == "VERSION" {print $$2}' hack/prometheus.sh)
PROMTOOL := $(BIN)/promtool-$(PROMETHEUS_VERSION)
PROMETHEUS := $(BIN)/prometheus-$(PROMETHEUS_VERSION)
export PROMTOOL PROMETHEUS
# Jaeger all-in-one, the collector the tracing test exports to
# (server: TestTracesReachJaeger); the version is pinned in hack/jaeger.sh.
JAEGER := $(BIN)/jaeger-$(shell awk -F= '$$1 == "VERSION" {print $$2}' hack/jaeger.sh)
export JAEGER
# oauth2-proxy, the relying party the e2e suite puts in front of an app;
# the version is pinned in hack/oauth2-proxy.sh.
OAUTH2_PROXY := $(BIN)/oauth2-proxy-$(shell awk -F= '$$1 == "VERSION" {print $$2}' hack/oauth2-proxy.sh)
# npm ci's record of what it installed for the e2e suite's openid-client.
OPENID_CLIENT := test/e2e/openid-client/node_modules/.package-lock.json
export HELM

# The image `make deploy` installs.
IMG ?= ghcr.io/gatehouse-dev/gatehouse:0.1.0

# Generated files that `make verify` keeps honest.
GENERATED := config/crd/bases config/rbac/role.yaml api/v1alpha1/zz_generated.deepcopy.go \
             charts/gatehouse/crds charts/gatehouse/files/operator-rules.yaml docs/reference/api.md

GO_TEST_FLAGS ?= -count=1

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) $(CRD_REF_DOCS) ## Generate CRDs (config/crd/bases, chart crds/), operator RBAC (config/rbac, chart) and the API reference (docs/reference/api.md) from the Go types and markers.
	@echo "manifests: controller-gen $(CONTROLLER_GEN_VERSION) -> config/crd/bases, config/rbac"
	@$(CONTROLLER_GEN) rbac:roleName=gatehouse-operator crd paths="./..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@hack/sync-chart.sh
	@echo "manifests: crd-ref-docs $(CRD_REF_DOCS_VERSION) -> docs/reference/api.md"
	@$(CRD_REF_DOCS) --log-level=ERROR --renderer=markdown --source-path=api/v1alpha1 \
		--config=hack/api-docs/config.yaml --templates-dir=hack/api-docs/templates --output-path=docs/reference/api.md

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	@echo "generate: controller-gen $(CONTROLLER_GEN_VERSION) -> api/v1alpha1/zz_generated.deepcopy.go"
	@$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify
verify: $(CONTROLLER_GEN) $(CRD_REF_DOCS) ## Fail when a generated file differs from what `make manifests generate` writes now.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for f in $(GENERATED); do if [ -e "$$f" ]; then mkdir -p "$$tmp/$$(dirname $$f)"; cp -r "$$f" "$$tmp/$$f"; fi; done; \
	$(MAKE) -s manifests generate; \
	stale=0; for f in $(GENERATED); do \
		if [ -e "$$f" ] || [ -e "$$tmp/$$f" ]; then diff -ruN "$$tmp/$$f" "$$f" >/dev/null 2>&1 || { echo "verify: $$f was stale (now regenerated; review and commit it)"; stale=1; }; fi; \
	done; \
	if [ $$stale = 1 ]; then exit 1; fi
	@echo "verify: generated files are up to date"

.PHONY: fmt
fmt: ## Format the Go code.
	gofmt -w $$(git ls-files --cached --others --exclude-standard '*.go')

# The Go modules of the repository: the root and resourceserver/, which
# resource servers import on their own (its go.mod). `./...` in one module
# does not reach the other, so lint and test go through each.
MODULES := . resourceserver

.PHONY: lint
lint: $(GOLANGCI_LINT) $(ACTIONLINT) ## Run gofmt, go vet, golangci-lint (.golangci.yml: staticcheck, errcheck, importas, revive, unparam, misspell, ...), the function-length check, shellcheck on every shell script and actionlint (with shellcheck on their run: scripts) on every workflow.
	@echo "lint: gofmt"
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change these files (run 'make fmt'):"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do echo "lint: go vet ./... in $$m"; (cd $$m && go vet ./...); done
	@for m in $(MODULES); do echo "lint: golangci-lint $(GOLANGCI_LINT_VERSION) run ./... in $$m (.golangci.yml)"; (cd $$m && $(GOLANGCI_LINT) run --allow-serial-runners ./...); done
	@echo "lint: no product function over 80 lines (hack/funclen)"
	@go run ./hack/funclen -max 80
	@hack/shellcheck.sh
	@echo "lint: actionlint $(ACTIONLINT_VERSION) .github/workflows/* (shellcheck on their run: scripts)"
	@$(ACTIONLINT) -pyflakes= .github/workflows/*.yaml

##@ Test

# The test control plane: kube-apiserver, etcd and kubectl built by
# hack/build-envtest.sh. A KUBEBUILDER_ASSETS from the environment wins;
# otherwise the binaries are built into ./bin first.
KUBE_VERSION := $(patsubst v%,%,$(shell awk '$$1 == "k8s.io/kubernetes" {print $$2}' hack/envtest/go.mod))
ENVTEST_DIR := $(BIN)/k8s/$(KUBE_VERSION)-$(shell go env GOOS)-$(shell go env GOARCH)
ifeq ($(strip $(KUBEBUILDER_ASSETS)),)
ENVTEST_PREREQ := envtest
export KUBEBUILDER_ASSETS := $(ENVTEST_DIR)
else
ENVTEST_PREREQ :=
endif

.PHONY: test
test: lint $(ENVTEST_PREREQ) $(HELM) $(OAUTH2_PROXY) $(OPENID_CLIENT) $(PROMTOOL) $(PROMETHEUS) $(JAEGER) ## Run lint and every test (unit, envtest, storage, chart, alerts, dashboard, e2e; both Go modules).
	@echo "test: go test ./... (KUBEBUILDER_ASSETS=$$KUBEBUILDER_ASSETS)"
	go test $(GO_TEST_FLAGS) ./...
	@$(MAKE) -s test-resourceserver

.PHONY: test-faults
FAULT_APISERVER_DOWN ?= 2m
test-faults: $(ENVTEST_PREREQ) ## Run the fault tier on the host with real PostgreSQL and a real kube-apiserver (shorter variants are part of make test, about 8 minutes): a primary and its synchronous replica crashed, restarted, failed over, stalled and cut off by dropped packets (iptables, as root) under load, replicas with skewed clocks, each printing its figures and the acknowledged-items checker's line; a token server process overloaded at twice its measured capacity (client_credentials, password logins), printing capacity, shed and accepted counts, p50/p99, peak RSS and the acknowledged-items checker's line per phase; kube-apiserver down for 2 minutes under load.
	@echo "test-faults: TestFault* and TestClockSkewBetweenReplicas in ./server (GATEHOUSE_FAULT_STALL=30s for the issue's stall and packet drop; the packet drop needs root and iptables), the store's outage tests, the replica failover, TestFaultOverload in ./hack/bench (GATEHOUSE_OVERLOAD_PHASE=10s)"
	go test -count=1 -v -run '^(TestFault.*|TestClockSkewBetweenReplicas)$$' ./server/
	go test -count=1 -v -run '^(TestUnreachableDatabaseThenReconnect|TestStalledDatabaseTimesOut|TestLockWaitEndsAtStatementTimeout)$$' ./server/storage/postgres/
	go test -count=1 -v -run '^TestPrimaryReplicaFailover$$' ./internal/testpg/
	GATEHOUSE_OVERLOAD_PHASE=10s go test -count=1 -v -run '^TestFaultOverload$$' ./hack/bench/
	@echo "test-faults: TestAPIServerDownUnderLoad in ./test/e2e with kube-apiserver down for $(FAULT_APISERVER_DOWN) (GATEHOUSE_FAULT_APISERVER_DOWN; make test runs it for 20s)"
	GATEHOUSE_FAULT_APISERVER_DOWN=$(FAULT_APISERVER_DOWN) go test -count=1 -v -run '^TestAPIServerDownUnderLoad$$' ./test/e2e/

# The oldest Go resourceserver/go.mod claims (its go directive). go vet's
# stdversion check refuses a newer standard-library API; testing with that
# Go itself proves the claim.
RESOURCESERVER_GO := go$(shell awk '$$1 == "go" {print $$2}' resourceserver/go.mod)

.PHONY: test-resourceserver
test-resourceserver: ## Test the resourceserver module on its own, with this Go and with the oldest Go its go.mod claims (fetched by the go command the first time).
	@echo "test-resourceserver: go test ./... in resourceserver/ ($$(go env GOVERSION))"
	@cd resourceserver && go test $(GO_TEST_FLAGS) ./...
	@echo "test-resourceserver: go test ./... in resourceserver/ with $(RESOURCESERVER_GO), the oldest Go its go.mod allows (GOTOOLCHAIN=$(RESOURCESERVER_GO); the first run downloads it)"
	@cd resourceserver && GOTOOLCHAIN=$(RESOURCESERVER_GO) go test $(GO_TEST_FLAGS) ./...

# The packages the race detector runs on (make test-race, which CI runs
# after make test): every package with concurrent product code, i.e. the
# token server (handlers, storage drivers, the configuration source and
# its informers), the operator (reconcilers, work queue) and the shared
# packages (key fetchers, the certificate reloader), with their unit, API
# and protocol tests, plus the resourceserver module. Not cmd/ and test/:
# their tests drive the gatehouse binary, kubectl and clusters as other
# processes, where -race on the test binary sees nothing.
RACE_PACKAGES := ./internal/... ./server/... ./controllers/...

.PHONY: test-race
test-race: $(ENVTEST_PREREQ) ## Run the tests of the token server, the operator and the shared packages (RACE_PACKAGES) and of the resourceserver module under the race detector.
	@if [ "$$(go env CGO_ENABLED)" != 1 ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "test-race: the race detector needs cgo: installing a C compiler (apt-get install gcc libc6-dev)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev; \
		else echo "test-race: the race detector needs cgo and a C compiler: install gcc (Debian: gcc libc6-dev)" >&2; exit 1; fi; \
	fi
	@echo "test-race: go test -race $(RACE_PACKAGES) (KUBEBUILDER_ASSETS=$$KUBEBUILDER_ASSETS)"
	go test -race -timeout 30m $(GO_TEST_FLAGS) $(RACE_PACKAGES)
	@echo "test-race: go test -race ./... in resourceserver/"
	cd resourceserver && go test -race $(GO_TEST_FLAGS) ./...

.PHONY: test-e2e
test-e2e: $(ENVTEST_PREREQ) $(OAUTH2_PROXY) $(OPENID_CLIENT) ## Run the end-to-end suite: control plane, operator and server processes, Chromium, orders-api.
	go test $(GO_TEST_FLAGS) -v ./test/e2e/...

.PHONY: bench
bench: ## Run the benchmarks (token endpoint, storage drivers, key set, resource-server validation).
	go test -run '^$$' -bench . -benchmem ./server/... ./internal/...
	cd resourceserver && go test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-http
bench-http: build $(ENVTEST_PREREQ) ## HTTP benchmark of the token server (gatehouse dev + a gatehouse server of its own): each flow's req/s, latency, errors, server CPU per 1,000 requests, RSS; a table and bench-http.json. BENCH_HTTP_FLAGS="-conns 16 -duration 10s -storage postgres -server-cpus 0 -client nethttp -soak 5m".
	go run ./hack/bench $(BENCH_HTTP_FLAGS)

# BENCH_OUT is where bench-http-goals writes its three JSON reports.
BENCH_OUT ?= bin/bench-http-goals

.PHONY: bench-http-goals
bench-http-goals: build $(ENVTEST_PREREQ) ## Issue 13's HTTP goals on memory storage (about 8 minutes): the one-request flows with server and load generator unpinned, again with the server pinned to CPU 0, then the 5-minute heap soak; JSON in $(BENCH_OUT)/.
	mkdir -p $(BENCH_OUT)
	go build -o $(BENCH_OUT)/bench ./hack/bench
	$(BENCH_OUT)/bench -flows jwks,metadata,client_credentials,introspection -duration 10s -json $(BENCH_OUT)/unpinned.json
	$(BENCH_OUT)/bench -server-cpus 0 -flows jwks,metadata,client_credentials,introspection -duration 10s -json $(BENCH_OUT)/pinned.json
	$(BENCH_OUT)/bench -soak 5m -flows client_credentials,introspection,jwks -json $(BENCH_OUT)/soak.json

# HYDRA_VERSION is the Ory Hydra bench-peers builds (hack/hydra.sh) into
# bin/hydra; PEER_FLAGS are passed to both of its runs.
HYDRA_VERSION ?= v2.3.0
PEER_OUT ?= bin/bench-peers
PEER_FLAGS ?= -flows client_credentials,introspection,jwks,metadata -duration 5s -warmup 1s -rounds 2

.PHONY: bench-peers
bench-peers: build $(ENVTEST_PREREQ) ## Gatehouse against Ory Hydra $(HYDRA_VERSION) in the same run, about 8 minutes (builds bin/hydra first with hack/hydra.sh; never part of make test): Gatehouse and Hydra (opaque, JWT ES256) in turn flow by flow, twice, server pinned to CPU 0 and unpinned; JSON in $(PEER_OUT)/.
	hack/hydra.sh $(BIN)/hydra $(HYDRA_VERSION)
	@echo "bench-peers: checking the peer set-up (go test -tags hydra ./hack/bench -run TestHydraPeer)"
	GATEHOUSE_BENCH_HYDRA=$(BIN)/hydra go test -tags hydra -count=1 -run TestHydraPeer ./hack/bench
	mkdir -p $(PEER_OUT)
	go build -o $(PEER_OUT)/bench ./hack/bench
	$(PEER_OUT)/bench -peer hydra -peer-bin $(BIN)/hydra -server-cpus 0 $(PEER_FLAGS) -json $(PEER_OUT)/pinned.json
	$(PEER_OUT)/bench -peer hydra -peer-bin $(BIN)/hydra $(PEER_FLAGS) -json $(PEER_OUT)/unpinned.json

# N is how many OAuthClients bench-scale applies.
N ?= 1000

.PHONY: bench-scale
bench-scale: build $(ENVTEST_PREREQ) ## Scale benchmark (N=1000): control plane, operator and server processes, N OAuthClients in bulk, fan-out, restart and churn; a table and JSON.
	go run ./hack/benchscale -n $(N) $(BENCH_SCALE_FLAGS)

.PHONY: test-api
test-api: $(ENVTEST_PREREQ) ## Run only the API-tier (envtest) tests of the CRDs.
	go test $(GO_TEST_FLAGS) ./api/...

.PHONY: envtest
envtest: ## Build kube-apiserver, etcd and kubectl from Go modules into ./bin; print the KUBEBUILDER_ASSETS directory.
	@hack/build-envtest.sh >/dev/null
	@echo $(ENVTEST_DIR)

##@ Run

.PHONY: dev
dev: build $(ENVTEST_PREREQ) ## Run Gatehouse on this machine with no cluster: control plane, operator, token server, demo data.
	bin/gatehouse dev $(DEV_FLAGS)

##@ Build

.PHONY: build
build: ## Build bin/gatehouse.
	@echo "build: bin/gatehouse $(VERSION)"
	@go build -ldflags "$(LDFLAGS)" -o $(BIN)/gatehouse ./cmd/gatehouse

##@ Deploy

.PHONY: deploy
deploy: ## Install the CRDs and the operator into the current kubectl context with kustomize (IMG=... picks the image).
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; img='$(IMG)'; \
	sed -e "s|^- \.\./|- $$(realpath --relative-to="$$tmp" config)/|" -e "s|newName: .*|newName: $${img%:*}|" -e "s|newTag: .*|newTag: $${img##*:}|" \
		config/default/kustomization.yaml >"$$tmp/kustomization.yaml"; \
	echo "deploy: kubectl apply -k config/default with image $(IMG)"; \
	kubectl apply --server-side -k "$$tmp"

.PHONY: undeploy
undeploy: ## Remove the operator and the CRDs (and with them every Gatehouse object) from the current kubectl context.
	kubectl delete --ignore-not-found -k config/default

.PHONY: helm
helm: $(HELM) ## Build helm into ./bin.

##@ Release (the tag workflow, .github/workflows/release.yaml, runs these)

.PHONY: release-image
release-image: ## Build the release image for linux/amd64 and linux/arm64 into bin/release (reproducible OCI layout; PUSH=1 pushes it to ghcr.io/gatehouse-dev/gatehouse:$(VERSION)).
	@VERSION='$(VERSION)' COMMIT='$(COMMIT)' PUSH='$(PUSH)' hack/release/image.sh

.PHONY: test-release
test-release: ## Test the release image up to the push: linux/amd64 and linux/arm64 built twice with one digest, pushed to a local registry (the first run compiles gatehouse for both platforms with -trimpath; make test covers the packaged chart).
	go test $(GO_TEST_FLAGS) -tags release -v -timeout 45m -run TestReleaseImage ./test/release/

.PHONY: release-chart
release-chart: $(HELM) ## Package the chart for VERSION=vX.Y.Z into bin/release: version X.Y.Z, appVersion and default image tag vX.Y.Z (CHART_PUSH=oci://... pushes it).
	@VERSION='$(VERSION)' PUSH='$(CHART_PUSH)' hack/release/chart.sh

##@ Tools

$(CONTROLLER_GEN):
	@echo "tools: installing controller-gen $(CONTROLLER_GEN_VERSION) into bin/"
	@GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	@mv $(BIN)/controller-gen $@

$(CRD_REF_DOCS):
	@echo "tools: installing crd-ref-docs $(CRD_REF_DOCS_VERSION) into bin/"
	@GOBIN=$(BIN) go install github.com/elastic/crd-ref-docs@$(CRD_REF_DOCS_VERSION)
	@mv $(BIN)/crd-ref-docs $@

# openid-client (Node.js), an independent client for the e2e suite's device
# flow and the server's protocol tests of PAR, request objects and
# form_post, installed exactly as test/e2e/openid-client/package-lock.json
# says. Without npm the test that needs it reports a missing dependency
# (a failure under GATEHOUSE_REQUIRE_ALL); .ci/run installs Debian's.
$(OPENID_CLIENT): test/e2e/openid-client/package.json test/e2e/openid-client/package-lock.json
	@if command -v npm >/dev/null; then \
		echo "tools: npm ci in test/e2e/openid-client (openid-client for the device-flow e2e test and the server's PAR tests)"; \
		npm ci --prefix test/e2e/openid-client --no-audit --no-fund --loglevel=error; \
	else echo "tools: no npm, so no openid-client for the device-flow e2e test and the server's PAR tests (install the Debian packages nodejs and npm)"; fi

$(OAUTH2_PROXY):
	@hack/oauth2-proxy.sh >/dev/null

$(HELM):
	@echo "tools: building helm $(HELM_VERSION) into bin/ (a few minutes the first time)"
	@GOBIN=$(BIN) go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	@mv $(BIN)/helm $@

$(GOLANGCI_LINT):
	@echo "tools: building golangci-lint $(GOLANGCI_LINT_VERSION) into bin/ (about 4 CPU-minutes the first time)"
	@GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@mv $(BIN)/golangci-lint $@

$(ACTIONLINT):
	@echo "tools: installing actionlint $(ACTIONLINT_VERSION) into bin/"
	@GOBIN=$(BIN) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	@mv $(BIN)/actionlint $@

$(PROMTOOL):
	@hack/prometheus.sh promtool

$(PROMETHEUS):
	@hack/prometheus.sh prometheus

$(JAEGER):
	@hack/jaeger.sh $@

##@ Cluster

# A real single-node cluster on this machine without Docker (hack/cluster):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd,
# runc, kubelet, kube-proxy and CoreDNS, built from Go modules into ./bin.
# Needs root; state in .gatehouse-cluster/.
CLUSTER_IMG ?= localhost/gatehouse:dev
CLUSTER_KUBECONFIG := $(CURDIR)/.gatehouse-cluster/kubeconfig

.PHONY: cluster
cluster: ## Start a single-node Kubernetes cluster here (or reuse the running one); print its kubeconfig and node.
	@hack/cluster/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the cluster and remove all it made: processes, mounts, network namespaces, bridge, iptables rules, state.
	@hack/cluster/cluster.sh down

.PHONY: image
image: ## Build the gatehouse image without Docker (the Dockerfile's equivalent) and load it into the cluster (CLUSTER_IMG=...).
	@VERSION='$(VERSION)' COMMIT='$(COMMIT)' hack/cluster/image.sh '$(CLUSTER_IMG)'

.PHONY: example-images
example-images: ## Build examples/orders-api and examples/workload into images (localhost/orders-api:1, localhost/workload:1) and load them into the cluster, for docs/tutorials/workload-identity.md.
	@hack/cluster/example-images.sh

# The scenarios (test/cluster), then the e2e suite in real-cluster mode
# against the token server behind NodePort 30081 on 127.0.0.1, then the Helm
# lifecycle (upgrade, uninstall), which goes last since it removes the chart,
# and after it the packaged release chart with the release image (test/release).
CLUSTER_TEST_ENV := GATEHOUSE_CLUSTER_KUBECONFIG='$(CLUSTER_KUBECONFIG)' GATEHOUSE_CLUSTER_IMAGE='$(CLUSTER_IMG)'

.PHONY: test-cluster
test-cluster: $(HELM) $(ENVTEST_PREREQ) ## On the running cluster: image, helm install, samples, cluster scenarios, e2e suite, helm upgrade/uninstall, then the packaged release chart with the release image.
	@GATEHOUSE_REQUIRE_CLUSTER=1 VERSION='$(VERSION)' COMMIT='$(COMMIT)' hack/cluster/image.sh '$(CLUSTER_IMG)'
	$(CLUSTER_TEST_ENV) go test $(GO_TEST_FLAGS) -v -timeout 30m ./test/cluster/
	PATH='$(ENVTEST_DIR)':"$$PATH" GATEHOUSE_E2E_KUBECONFIG='$(CLUSTER_KUBECONFIG)' GATEHOUSE_E2E_ISSUER=http://127.0.0.1:30081 GATEHOUSE_E2E_NAMESPACE=gatehouse-e2e \
		go test $(GO_TEST_FLAGS) -v -timeout 20m ./test/e2e/
	$(CLUSTER_TEST_ENV) GATEHOUSE_CLUSTER_LIFECYCLE=1 go test $(GO_TEST_FLAGS) -v -timeout 10m -run TestHelmLifecycle ./test/cluster/
	$(CLUSTER_TEST_ENV) go test $(GO_TEST_FLAGS) -v -timeout 15m -run TestReleaseChartInstalls ./test/release/
