#!/usr/bin/env bash
# Builds kube-apiserver and etcd (and, on request, kube-controller-manager and kubectl) from Go
# modules into a per-user cache folder keyed by version. Nothing is downloaded but Go modules
# through the Go module proxy (sums checked through the sum database, as go does by default).
#
#   hack/build-envtest-assets.sh [kube-apiserver etcd kube-controller-manager kubectl]
#
# With no arguments it builds kube-apiserver and etcd. A binary already in the cache is reused, so
# a second run takes seconds. Prints the assets folder on its last line.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${SCM_ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/service-controller-manager/envtest}"
assets="$cache_root/k8s-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}"
work="$cache_root/build"
mkdir -p "$assets" "$work"

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(kube-apiserver etcd)

log() { printf '[envtest-assets] %s\n' "$*" >&2; }
jobs_flag="-p ${GO_BUILD_PARALLEL:-2}"

build_kubernetes() {
  local -a bins=("$@")
  local mod="$work/kubernetes-$KUBERNETES_VERSION"
  mkdir -p "$mod"
  # The staging modules (k8s.io/api, k8s.io/client-go, ...) are replaced by "./staging/..." paths
  # inside k8s.io/kubernetes' own go.mod; a consumer must replace each with its published v0.Y.Z.
  local kmod
  kmod="$(cd "$mod" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [ -f "$kmod" ] || { log "could not download k8s.io/kubernetes@$KUBERNETES_VERSION"; exit 1; }
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  local gover
  gover="$(sed -n 's/^go \(.*\)$/\1/p' "$kmod" | head -1)"
  {
    echo "module scm.local/envtest-kubernetes"
    echo
    echo "go $gover"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/k8s\.io/.*$#\t\1 => \1 '"$staging_version"'#p' "$kmod"
    echo ")"
  } >"$mod/go.mod"
  # godebug defaults of the Kubernetes module, so the binaries behave as the release does.
  if grep -q '^godebug' "$kmod"; then sed -n '/^godebug/,/^)/p' "$kmod" >>"$mod/go.mod"; fi
  local -a pkgs=()
  for b in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  (cd "$mod" && go get "${pkgs[@]/%/@$KUBERNETES_VERSION}" >/dev/null 2>&1 || (cd "$mod" && go mod download))
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  for b in "${bins[@]}"; do
    log "building $b $KUBERNETES_VERSION (this takes minutes on a cold cache)"
    (cd "$mod" && CGO_ENABLED=0 go build $jobs_flag -trimpath -ldflags "-s -w$ld" -o "$assets/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$assets/$b.tmp" "$assets/$b"
  done
}

build_etcd() {
  local mod="$work/etcd-$ETCD_VERSION"
  mkdir -p "$mod"
  cat >"$mod/go.mod" <<GOMOD
module scm.local/envtest-etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  (cd "$mod" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 || true)
  log "building etcd $ETCD_VERSION"
  (cd "$mod" && CGO_ENABLED=0 go build $jobs_flag -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
    -o "$assets/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$assets/etcd.tmp" "$assets/etcd"
}

k8s_todo=()
for b in "${wanted[@]}"; do
  if [ -x "$assets/$b" ]; then log "$b: cached in $assets"; continue; fi
  case "$b" in
    etcd) build_etcd ;;
    kube-apiserver | kube-controller-manager | kubectl) k8s_todo+=("$b") ;;
    *) log "unknown binary: $b (known: kube-apiserver etcd kube-controller-manager kubectl)"; exit 2 ;;
  esac
done
[ ${#k8s_todo[@]} -eq 0 ] || build_kubernetes "${k8s_todo[@]}"
echo "$assets"
