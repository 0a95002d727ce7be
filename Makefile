# service-controller-manager. Every target runs with the project's pinned Node.js (the `node`
# devDependency) first on PATH, so the machine's own Node version does not matter.
SHELL := /usr/bin/env bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

include hack/versions.env
export KUBERNETES_VERSION ETCD_VERSION METALLB_VERSION

.PHONY: help install build typecheck lint format test test-unit test-integration envtest-assets \
        kubectl kube-controller-manager metallb-controller kustomize run bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed ## install the npm dependencies (npm ci), including Node.js 24

build: install ## type-check, then bundle cmd/manager.ts and cmd/webhook.ts into dist/cmd/ (esbuild, hack/bundle.ts)
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

kustomize: ## build kustomize (KUSTOMIZE_VERSION, or use the KUSTOMIZE binary) and fetch the cert-manager and ServiceMonitor CRDs the manifest tests use, into the per-user cache
	hack/build-kustomize.sh

test-unit: install ## unit tests (no I/O)
	npm run --silent test:unit

test-integration: install envtest-assets kustomize ## integration tests against a local etcd + kube-apiserver
	npm run --silent test:integration

test: lint test-unit test-integration ## lint + unit + integration

run: install envtest-assets ## run the manager: against your cluster if one is configured, else a local control plane
	node cmd/run.ts $(ARGS)

bench: install build envtest-assets kube-controller-manager metallb-controller ## ours vs kube-controller-manager (S1-S4, C1), allocation (S5, S6), LoadBalancer addresses vs MetalLB (S7, S8), about 60 min; docs/BENCHMARKS.md
	node bench/run.ts $(ARGS)

# The image's tag: package.json's version (override with make image VERSION=...).
VERSION = $(shell node -p "require('./package.json').version")

.PHONY: image image-check
image: ## build the image service-controller-manager:<package.json version> with docker (else podman or buildah)
	@if docker info >/dev/null 2>&1; then build="docker build"; \
	elif command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then build="podman build"; \
	elif command -v buildah >/dev/null 2>&1 && buildah info >/dev/null 2>&1; then build="buildah bud"; \
	else echo "make image: no container engine is reachable (docker info failed; no working podman or buildah)." >&2; \
	     echo "'make image-check' lays the image out and runs it on this machine without one." >&2; exit 1; fi; \
	echo "$$build -t service-controller-manager:$(VERSION) ."; $$build -t service-controller-manager:$(VERSION) .

image-check: install envtest-assets ## lay the Dockerfile out on the host, check its contents, run its entrypoint read-only against a local control plane (no container engine needed)
	node hack/image-check.ts

clean: ## remove build output (the envtest cache stays)
	rm -rf dist
