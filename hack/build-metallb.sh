#!/usr/bin/env bash
# Builds MetalLB's controller (go.universe.tf/metallb/controller at METALLB_VERSION of
# versions.env) from its Go module into a per-user cache folder keyed by version, for the
# LoadBalancer benchmarks (S7, S8), and copies the CRDs that ship in the module
# (config/crd/bases) beside it. Nothing is downloaded but Go modules through the Go module proxy
# (sums checked through the sum database, as go does by default); nothing lands in the repo.
#
#   hack/build-metallb.sh
#
# `go install go.universe.tf/metallb/controller@VERSION` run in an empty folder, so the build uses
# MetalLB's own go.mod (the versions it is released with) and no module of ours. A binary already
# in the cache is reused, so a second run takes seconds. Prints the cache folder on its last line:
# <folder>/controller and <folder>/crds/*.yaml.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${SCM_METALLB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/service-controller-manager/metallb}"
out="$cache_root/$METALLB_VERSION"
work="$cache_root/build/metallb-$METALLB_VERSION"
mkdir -p "$out" "$work"

log() { printf '[metallb] %s\n' "$*" >&2; }
jobs_flag="-p ${GO_BUILD_PARALLEL:-2}"
module=go.universe.tf/metallb

if [ -x "$out/controller" ] && [ -f "$out/crds/metallb.io_ipaddresspools.yaml" ]; then
  log "controller $METALLB_VERSION: cached in $out"
  echo "$out"
  exit 0
fi

if [ ! -x "$out/controller" ]; then
  log "building MetalLB's controller $METALLB_VERSION (a few minutes on a cold cache)"
  # In an empty folder (no go.mod of ours above it): `go install pkg@version` builds with the
  # module's own go.mod and go.sum. The commit/branch ldflags the release Dockerfile sets.
  (cd "$work" && GOBIN="$work/bin" CGO_ENABLED=0 go install $jobs_flag -trimpath \
    -ldflags "-s -w -X '$module/internal/version.gitCommit=$METALLB_VERSION' -X '$module/internal/version.gitBranch=$METALLB_VERSION'" \
    "$module/controller@$METALLB_VERSION")
  mv "$work/bin/controller" "$out/controller.tmp"
  mv "$out/controller.tmp" "$out/controller"
fi

# The CRDs of that version, from the module cache (downloaded by the build above).
dir="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$module@$METALLB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[ -d "$dir/config/crd/bases" ] || { log "no config/crd/bases in $module@$METALLB_VERSION ($dir)"; exit 1; }
rm -rf "$out/crds.tmp"
mkdir -p "$out/crds.tmp"
cp "$dir"/config/crd/bases/*.yaml "$out/crds.tmp/"
chmod u+w "$out"/crds.tmp/*.yaml
rm -rf "$out/crds"
mv "$out/crds.tmp" "$out/crds"
log "controller and $(ls "$out/crds" | wc -l) CRDs in $out"
echo "$out"
