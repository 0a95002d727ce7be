# service-controller-manager. Every target runs with the project's pinned Node.js (the `node`
# devDependency) first on PATH, so the machine's own Node version does not matter.
SHELL := /usr/bin/env bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

include hack/versions.env
export KUBERNETES_VERSION ETCD_VERSION METALLB_VERSION

.PHONY: help install build typecheck lint format test test-unit test-integration envtest-assets \
        kubectl kube-controller-manager metallb-controller run bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed ## install the npm dependencies (npm ci), including Node.js 24

build: install ## compile TypeScript to dist/
	npm run --silent build

typecheck: install ## type-check everything, tests included
	npm run --silent typecheck

lint: install typecheck ## tsc, eslint and prettier
	npm run --silent lint

format: install ## rewrite files with prettier
	npm run --silent format

envtest-assets: ## build kube-apiserver and etcd from Go modules into the per-user cache (seconds when cached)
	@if [ -n "$$KUBEBUILDER_ASSETS" ]; then echo "KUBEBUILDER_ASSETS=$$KUBEBUILDER_ASSETS (not building)"; \
	else hack/build-envtest-assets.sh kube-apiserver etcd; fi

kubectl: ## build kubectl of the same version into the cache (tests never need it)
	hack/build-envtest-assets.sh kubectl

kube-controller-manager: ## build kube-controller-manager of the same version (for benchmarks)
	hack/build-envtest-assets.sh kube-controller-manager

metallb-controller: ## build MetalLB's controller (METALLB_VERSION) and copy its CRDs into the per-user cache (for benchmarks)
	hack/build-metallb.sh

test-unit: install ## unit tests (no I/O)
	npm run --silent test:unit

test-integration: install envtest-assets ## integration tests against a local etcd + kube-apiserver
	npm run --silent test:integration

test: lint test-unit test-integration ## lint + unit + integration

run: install envtest-assets ## run the manager: against your cluster if one is configured, else a local control plane
	node cmd/run.ts $(ARGS)

bench: install build envtest-assets kube-controller-manager metallb-controller ## ours vs kube-controller-manager (S1-S4, C1), allocation (S5, S6), LoadBalancer addresses vs MetalLB (S7, S8), about 60 min; docs/BENCHMARKS.md
	node bench/run.ts $(ARGS)

clean: ## remove build output (the envtest cache stays)
	rm -rf dist
