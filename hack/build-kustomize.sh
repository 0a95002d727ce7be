#!/usr/bin/env bash
# Builds kustomize (sigs.k8s.io/kustomize/kustomize/v5 at KUSTOMIZE_VERSION of versions.env) from
# its Go module into a per-user cache folder keyed by version, and copies beside it the
# third-party CRDs that the manifests under manifests/ target but envtest does not serve:
# cert-manager's (overlays/cert-manager) and prometheus-operator's ServiceMonitor
# (manifests/monitoring), so that test/integration/manifests.test.ts validates those objects
# against their real schemas. Nothing is downloaded but Go modules through the Go module proxy
# (sums checked through the sum database, as go does by default); nothing lands in the repo.
#
#   hack/build-kustomize.sh
#
# With KUSTOMIZE set to an executable, that one is used and nothing is built (the CRDs are still
# fetched). Everything already in the cache is reused, so a second run takes about a second.
# Prints the kustomize binary's path on its last line; the CRDs are in
#   <cache>/crds/cert-manager-<CERT_MANAGER_VERSION>/*.yaml
#   <cache>/crds/prometheus-operator-<PROMETHEUS_OPERATOR_VERSION>/*.yaml
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/service-controller-manager"
out="$cache_root/kustomize/$KUSTOMIZE_VERSION"
# An empty folder with no go.mod of ours above it: `go install pkg@version` and `go mod download`
# then use the downloaded module's own go.mod and go.sum, never the repo's.
work="$cache_root/kustomize/build"
mkdir -p "$out" "$work"

log() { printf '[kustomize] %s\n' "$*" >&2; }
jobs_flag="-p ${GO_BUILD_PARALLEL:-2}"

if [ -n "${KUSTOMIZE:-}" ] && [ ! -x "$KUSTOMIZE" ]; then
  log "KUSTOMIZE=$KUSTOMIZE is not an executable"
  exit 1
fi

module_dir() {
  (cd "$work" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
}

# copy_crds NAME MODULE@VERSION SUBDIR GLOB: the CRD files of one module version, replaced as a
# whole (through a .tmp folder) so that an interrupted copy never looks complete.
copy_crds() {
  local name="$1" modver="$2" sub="$3" glob="$4"
  local dest="$cache_root/crds/$name"
  if compgen -G "$dest/$glob" >/dev/null; then
    log "$name CRDs: cached in $dest"
    return
  fi
  local dir
  dir="$(module_dir "$modver")"
  compgen -G "$dir/$sub/$glob" >/dev/null || { log "no $sub/$glob in $modver ($dir)"; exit 1; }
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  cp "$dir/$sub"/$glob "$dest.tmp/"
  # The module cache is read-only; the copies need not be.
  chmod u+w "$dest".tmp/*
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  log "$name: $(ls "$dest" | wc -l) CRDs in $dest"
}

# cert-manager's deploy/crds holds controller-gen's plain CRD YAML (its Helm chart wraps the same
# schemas in templates); all of them, as a cert-manager install has them all.
copy_crds "cert-manager-$CERT_MANAGER_VERSION" "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" \
  deploy/crds '*.yaml'
# Of prometheus-operator's ten CRDs only the ServiceMonitor is used (manifests/monitoring).
copy_crds "prometheus-operator-$PROMETHEUS_OPERATOR_VERSION" \
  "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
  example/prometheus-operator-crd monitoring.coreos.com_servicemonitors.yaml

if [ -n "${KUSTOMIZE:-}" ]; then
  log "KUSTOMIZE=$KUSTOMIZE (not building)"
  echo "$KUSTOMIZE"
elif [ -x "$out/kustomize" ]; then
  log "kustomize $KUSTOMIZE_VERSION: cached in $out"
  echo "$out/kustomize"
else
  log "building kustomize $KUSTOMIZE_VERSION (under a minute on a cold cache)"
  bin="$(mktemp -d "$work/bin.XXXXXX")"
  trap 'rm -rf "$bin"' EXIT
  # The module version is in the binary's build info, which `kustomize version` prints.
  (cd "$work" && GOBIN="$bin" CGO_ENABLED=0 go install $jobs_flag -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION")
  mv "$bin/kustomize" "$out/kustomize.tmp"
  mv "$out/kustomize.tmp" "$out/kustomize"
  echo "$out/kustomize"
fi
