#!/usr/bin/env bash
# Cached builds for the one-node test cluster (scripts/cluster.sh), each once per machine, outside
# the clone in $WEIR_CACHE_DIR/<what>-<version>/, under a lock so that concurrent clones wait for
# one build and reuse it:
#
#   scripts/cluster/build.sh node      kubelet, kube-controller-manager, kube-scheduler, kube-proxy
#   scripts/cluster/build.sh coredns   CoreDNS with the plugins a cluster DNS needs (Go)
#   scripts/cluster/build.sh pause     the pause image (pause.c of the same k8s.io/kubernetes)
#   scripts/cluster/build.sh base      a Debian bookworm root filesystem with python3 (debootstrap)
#   scripts/cluster/build.sh crds      the upstream CRDs: KEDA, ServiceMonitor, Strimzi
#   scripts/cluster/build.sh metrics-server   metrics-server (Go module sigs.k8s.io/metrics-server)
#   scripts/cluster/build.sh keda      KEDA's operator and metrics apiserver (github.com/kedacore/keda/v2)
#   scripts/cluster/build.sh all       all of the above (default)
#   scripts/cluster/build.sh paths     print `export` lines naming every build
#
# The Kubernetes binaries come from the same k8s.io/kubernetes module version, wrapper module and
# Go caches as scripts/kube-apiserver.sh, so the apiserver the operator tests use and the node
# here are one release.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/cluster/common.sh
source "$HERE/common.sh"
# shellcheck source=scripts/kube-module.sh
source "$HERE/../kube-module.sh"

log() { echo "cluster/build.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# Run "$2..." once under the lock $1 unless the build is already there ($BUILT_TEST).
locked() { # lockname command...
    mkdir -p "$CACHE_ROOT"
    local lock="$CACHE_ROOT/.$1.lock"
    shift
    (
        exec 9>"$lock"
        flock 9
        "$@"
    )
}

# --- kubelet, kube-controller-manager, kube-scheduler --------------------------------------------
NODE_CMDS=(kubelet kube-controller-manager kube-scheduler kube-proxy)
node_built() {
    local cmd
    for cmd in "${NODE_CMDS[@]}"; do [[ -x "$NODE_BIN/$cmd" ]] || return 1; done
}

build_node() {
    node_built && return 0
    locked "kube-node-$KUBE_VERSION" compile_node
}

# A field (GoMod, Dir) of `go mod download -json k8s.io/kubernetes@<version>`.
kube_module_file() {
    mkdir -p "$CACHE_ROOT/go"
    (cd "$CACHE_ROOT/go" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION") \
        | sed -n 's/.*"'"$1"'": "\(.*\)",*/\1/p'
}

compile_node() {
    node_built && return 0
    command -v go >/dev/null || die "go not found"
    local src="$NODE_HOME/src" cmd
    log "building ${NODE_CMDS[*]} $KUBE_VERSION (cold: ~20 min of CPU; 10-55 min on 2 shared cores)"
    kube_wrapper_module "$src" weir.local/kube-node "$KUBE_VERSION" "$(kube_module_file GoMod)"
    mkdir -p "$NODE_BIN"
    local ldflags
    ldflags="$(kube_ldflags "$KUBE_VERSION")"
    (cd "$src" && go get "k8s.io/kubernetes/cmd/kubelet@$KUBE_VERSION")
    for cmd in "${NODE_CMDS[@]}"; do
        [[ -x "$NODE_BIN/$cmd" ]] && continue
        (cd "$src" && nice go build -trimpath -ldflags "$ldflags" -o "$NODE_BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
        mv "$NODE_BIN/$cmd.tmp" "$NODE_BIN/$cmd"
        log "built $NODE_BIN/$cmd"
    done
}

# --- CoreDNS ---------------------------------------------------------------------------------------
# CoreDNS's own main links every plugin (cloud DNS providers included); a cluster DNS needs few.
# CoreDNS documents exactly this: a main that imports the wanted plugins and sets the directives.
build_coredns() {
    [[ -x "$COREDNS_BIN" ]] && return 0
    locked "coredns-$COREDNS_VERSION" compile_coredns
}

compile_coredns() {
    [[ -x "$COREDNS_BIN" ]] && return 0
    local src="$COREDNS_HOME/src"
    mkdir -p "$src"
    cat >"$src/main.go" <<'GO'
// CoreDNS with the plugins of a cluster DNS only (scripts/cluster/build.sh).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/errors"
)

func init() {
	dnsserver.Directives = []string{"errors", "log", "health", "ready", "loadbalance", "kubernetes"}
}

func main() { coremain.Run() }
GO
    printf 'module weir.local/coredns\n\ngo 1.24\n' >"$src/go.mod"
    log "building CoreDNS $COREDNS_VERSION (cold: ~3-6 min)"
    (cd "$src" && go get "github.com/coredns/coredns@$COREDNS_VERSION" && go mod tidy \
        && nice go build -trimpath -ldflags "-s -w" -o "$COREDNS_BIN.tmp" .)
    mv "$COREDNS_BIN.tmp" "$COREDNS_BIN"
    log "built $COREDNS_BIN"
}

# --- metrics-server, KEDA: built in a copy of their own module -----------------------------------
# A module's replace and exclude directives hold only when it is the main module (KEDA has both),
# so these build in a writable copy of the module's source with its own go.mod and go.sum: the
# dependency versions its release was tested with.

# go_module_dir MODULE@VERSION: the module's source in the module cache (downloaded once).
go_module_dir() {
    mkdir -p "$CACHE_ROOT/go"
    (cd "$CACHE_ROOT/go" && go mod download -json "$1") | sed -n 's/.*"Dir": "\(.*\)",*/\1/p'
}

# build_module_copy MODULE@VERSION HOME LDFLAGS OUT=PACKAGE...: binaries into HOME/bin.
build_module_copy() {
    local module="$1" home="$2" ldflags="$3" dir src target
    shift 3
    command -v go >/dev/null || die "go not found"
    dir="$(go_module_dir "$module")"
    [[ -f "$dir/go.mod" ]] || die "no source for $module"
    src="$home/src"
    rm -rf "$src"
    mkdir -p "$home/bin"
    cp -r "$dir" "$src"
    chmod -R u+w "$src"
    for target in "$@"; do
        [[ -x "$home/bin/${target%%=*}" ]] && continue
        (cd "$src" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "$ldflags" \
            -o "$home/bin/${target%%=*}.tmp" "${target#*=}")
        mv "$home/bin/${target%%=*}.tmp" "$home/bin/${target%%=*}"
        log "built $home/bin/${target%%=*}"
    done
    rm -rf "$src"
}

build_metrics_server() {
    [[ -x "$METRICS_SERVER_BIN" ]] && return 0
    locked "metrics-server-$METRICS_SERVER_VERSION" compile_metrics_server
}

compile_metrics_server() {
    [[ -x "$METRICS_SERVER_BIN" ]] && return 0
    log "building metrics-server $METRICS_SERVER_VERSION (cold: a few minutes)"
    build_module_copy "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" "$METRICS_SERVER_HOME" \
        "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
        metrics-server=./cmd/metrics-server
}

KEDA_CMDS=(keda keda-adapter)
keda_built() { [[ -x "$KEDA_BIN/keda" && -x "$KEDA_BIN/keda-adapter" ]]; }

build_keda() {
    keda_built && return 0
    locked "keda-$KEDA_VERSION" compile_keda
}

compile_keda() {
    keda_built && return 0
    log "building KEDA $KEDA_VERSION operator and metrics apiserver (cold: long, every scaler's SDK)"
    build_module_copy "github.com/kedacore/keda/v2@$KEDA_VERSION" "$KEDA_HOME" \
        "-s -w -X github.com/kedacore/keda/v2/version.Version=${KEDA_VERSION#v}" \
        keda=./cmd/operator keda-adapter=./cmd/adapter
}

# --- pause ---------------------------------------------------------------------------------------
build_pause() {
    [[ -f "$PAUSE_TAR" ]] && return 0
    locked "pause-$KUBE_VERSION" compile_pause
}

compile_pause() {
    [[ -f "$PAUSE_TAR" ]] && return 0
    local dir pause_c root
    dir="$(kube_module_file Dir)"
    pause_c="$dir/build/pause/linux/pause.c"
    [[ -f "$pause_c" ]] || die "no $pause_c"
    mkdir -p "$PAUSE_HOME"
    root="$(mktemp -d "$PAUSE_HOME/.root.XXXXXX")"
    gcc -Os -static -DVERSION="$KUBE_VERSION" -o "$root/pause" "$pause_c"
    strip "$root/pause"
    oci_image_from_dir "$root" "$PAUSE_IMAGE" '["/pause"]' "$PAUSE_TAR"
    rm -rf "$root"
    log "built $PAUSE_TAR"
}

# An OCI image archive (for `ctr images import`) of one layer: the directory $1, named $2.
oci_image_from_dir() { # dir image-ref entrypoint-json out.tar
    python3 "$HERE/oci_archive.py" "$@"
}

# --- Debian base -----------------------------------------------------------------------------------
build_base() {
    [[ -f "$BASE_TAR" ]] && return 0
    locked "debian-base-$BASE_SUITE" bootstrap_base
}

bootstrap_base() {
    [[ -f "$BASE_TAR" ]] && return 0
    command -v debootstrap >/dev/null || die "debootstrap not installed (scripts/cluster.sh deps)"
    mkdir -p "$BASE_HOME"
    local root mirror
    root="$(mktemp -d "$BASE_HOME/.root.XXXXXX")"
    # The machine's own apt source, so that this works wherever apt does.
    mirror="$(apt_mirror)"
    log "debootstrap $BASE_SUITE from $mirror (cold: ~3 min)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$BASE_SUITE" "$root" "$mirror" >"$BASE_HOME/debootstrap.log" 2>&1 \
        || { tail -20 "$BASE_HOME/debootstrap.log" >&2; rm -rf "$root"; die "debootstrap failed"; }
    # Nothing of the build machine's apt state or caches in the image.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    # The Python image names the interpreter `python`; the Dockerfile uses that name.
    ln -sf python3 "$root/usr/bin/python"
    oci_image_from_dir "$root" "$BASE_IMAGE" '["/usr/bin/python3"]' "$BASE_TAR"
    rm -rf "$root"
    log "built $BASE_TAR"
}

apt_mirror() {
    local uri
    uri="$(sed -n 's/^URIs: *\(http[^ ]*debian\/*\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)"
    [[ -n "$uri" ]] || uri="$(awk '$1 == "deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
    echo "${uri:-http://deb.debian.org/debian}"
}

# --- upstream CRDs ---------------------------------------------------------------------------------
build_crds() {
    [[ -f "$CRDS_HOME/.complete" ]] && return 0
    locked "upstream-crds" fetch_crds
}

fetch_crds() {
    [[ -f "$CRDS_HOME/.complete" ]] && return 0
    local staging dir jar
    mkdir -p "$CACHE_ROOT/go"
    staging="$(mktemp -d "$CACHE_ROOT/.crds.XXXXXX")"
    # KEDA and prometheus-operator: their Go modules carry the generated CRDs.
    dir="$(go_module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")"
    # All of KEDA's: its operator watches the eventing.keda.sh kinds too.
    cp "$dir"/config/crd/bases/*.yaml "$staging/"
    dir="$(go_module_dir "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION")"
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$staging/"
    # Strimzi: the api module's test jar on Maven Central ships the CRDs it is generated from.
    jar="$staging/strimzi-api-tests.jar"
    curl -fsSL -o "$jar" \
        "${WEIR_MAVEN_REPO:-https://repo.maven.apache.org/maven2}/io/strimzi/api/$STRIMZI_VERSION/api-$STRIMZI_VERSION-tests.jar"
    # crds/v1beta2/ serves v1beta2 (the chart's version) and v1; crds/v1/ serves only v1.
    python3 - "$jar" "$staging" <<'PY'
import sys
import zipfile
from pathlib import Path

with zipfile.ZipFile(sys.argv[1]) as jar:
    for name in jar.namelist():
        if name.startswith("crds/v1beta2/") and name.endswith(".yaml"):
            (Path(sys.argv[2]) / f"strimzi_{Path(name).name}").write_bytes(jar.read(name))
PY
    rm -f "$jar"
    touch "$staging/.complete"
    rm -rf "$CRDS_HOME"
    mkdir -p "$(dirname "$CRDS_HOME")"
    mv -T "$staging" "$CRDS_HOME"
    log "upstream CRDs in $CRDS_HOME"
}

case "${1:-all}" in
    node) build_node ;;
    coredns) build_coredns ;;
    pause) build_pause ;;
    base) build_base ;;
    crds) build_crds ;;
    metrics-server) build_metrics_server ;;
    keda) build_keda ;;
    all) build_node && build_coredns && build_pause && build_base && build_crds \
        && build_metrics_server && build_keda ;;
    paths) print_paths ;;
    *) die "usage: $0 node|coredns|pause|base|crds|metrics-server|keda|all|paths" ;;
esac
