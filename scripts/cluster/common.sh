# Versions and cache paths shared by scripts/cluster/*.sh (sourced, not run).
# shellcheck shell=bash

# shellcheck disable=SC2034  # used by the scripts that source this file
KUBE_VERSION="${WEIR_KUBE_VERSION:-v1.33.13}"
BASE_SUITE="bookworm"
KEDA_VERSION="${WEIR_KEDA_VERSION:-v2.21.0}"
PROM_OPERATOR_VERSION="${WEIR_PROM_OPERATOR_VERSION:-v0.85.0}"
STRIMZI_VERSION="${WEIR_STRIMZI_VERSION:-0.51.0}"
COREDNS_VERSION="${WEIR_COREDNS_VERSION:-v1.14.7}"
METRICS_SERVER_VERSION="${WEIR_METRICS_SERVER_VERSION:-v0.8.0}"

CACHE_ROOT="${WEIR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}"
NODE_HOME="$CACHE_ROOT/kube-node-$KUBE_VERSION"
NODE_BIN="$NODE_HOME/bin"
COREDNS_HOME="$CACHE_ROOT/coredns-$COREDNS_VERSION"
COREDNS_BIN="$COREDNS_HOME/bin/coredns"
METRICS_SERVER_HOME="$CACHE_ROOT/metrics-server-$METRICS_SERVER_VERSION"
METRICS_SERVER_BIN="$METRICS_SERVER_HOME/bin/metrics-server"
KEDA_HOME="$CACHE_ROOT/keda-$KEDA_VERSION"
KEDA_BIN="$KEDA_HOME/bin"
PAUSE_HOME="$CACHE_ROOT/pause-$KUBE_VERSION"
PAUSE_IMAGE="registry.k8s.io/pause:weir-$KUBE_VERSION"
PAUSE_TAR="$PAUSE_HOME/pause.oci.tar"
BASE_HOME="$CACHE_ROOT/debian-base-$BASE_SUITE"
BASE_IMAGE="localhost/weir/debian-python:$BASE_SUITE"
BASE_TAR="$BASE_HOME/debian-python.oci.tar"
CRDS_HOME="$CACHE_ROOT/upstream-crds-v3-keda-$KEDA_VERSION-promop-$PROM_OPERATOR_VERSION-strimzi-$STRIMZI_VERSION"
# Go caches: the ones scripts/kube-apiserver.sh uses, so the k8s.io modules download once.
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$CACHE_ROOT/go/mod}"
export GOCACHE="${GOCACHE_OVERRIDE:-$CACHE_ROOT/go/build}"
export GOFLAGS="-mod=mod"

print_paths() {
    echo "export WEIR_NODE_BIN=$NODE_BIN WEIR_COREDNS=$COREDNS_BIN"
    echo "export WEIR_METRICS_SERVER=$METRICS_SERVER_BIN WEIR_KEDA_BIN=$KEDA_BIN"
    echo "export WEIR_PAUSE_IMAGE=$PAUSE_IMAGE WEIR_PAUSE_TAR=$PAUSE_TAR"
    echo "export WEIR_BASE_IMAGE=$BASE_IMAGE WEIR_BASE_TAR=$BASE_TAR"
    echo "export WEIR_UPSTREAM_CRDS=$CRDS_HOME"
}
