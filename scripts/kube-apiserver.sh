#!/usr/bin/env bash
# A real Kubernetes API server (etcd + kube-apiserver, no nodes, no controllers) on 127.0.0.1,
# for the operator's wiring tests. Needs Go (kube-apiserver is built from its Go module) and
# Debian's etcd-server (installed with apt-get when missing).
#
#   scripts/kube-apiserver.sh build    build kube-apiserver into $WEIR_KUBE_HOME/bin (cached, once)
#   scripts/kube-apiserver.sh start    build if needed, start etcd + kube-apiserver, wait ready
#   scripts/kube-apiserver.sh stop     stop both (TERM, then KILL after a bound)
#   scripts/kube-apiserver.sh status   exit 0 when running; prints the kubeconfig path
#   scripts/kube-apiserver.sh kubeconfig   print the kubeconfig path
#
# k8s.io/kubernetes is built through a wrapper module (scripts/kube-module.sh).
#
# Environment (all optional):
#   WEIR_KUBE_VERSION   Kubernetes version (default v1.33.13; kubectl here is 1.32, skew 1)
#   WEIR_CACHE_DIR      machine-wide build cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/weir),
#                       outside the clone so that a fresh clone on this machine does not rebuild
#   WEIR_KUBE_HOME      the build (default $WEIR_CACHE_DIR/kube-apiserver-<version>): the binary in
#                       bin/kube-apiserver, the wrapper module in src/
#   GOMODCACHE_OVERRIDE, GOCACHE_OVERRIDE   Go caches for the build (default $WEIR_CACHE_DIR/go/mod
#                       and $WEIR_CACHE_DIR/go/build)
#   WEIR_KUBE_PORT      secure port (default 16443); etcd: WEIR_KUBE_ETCD_PORT (12379) and
#                       WEIR_KUBE_ETCD_PEER_PORT (etcd port + 1)
#   Per server (etcd data, certs, kubeconfig, logs): $WEIR_CACHE_DIR/run/kube-apiserver-<port>
set -euo pipefail
# shellcheck source=scripts/kube-module.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube-module.sh"

KUBE_VERSION="${WEIR_KUBE_VERSION:-v1.33.13}"
CACHE_ROOT="${WEIR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}"
KUBE_HOME="${WEIR_KUBE_HOME:-$CACHE_ROOT/kube-apiserver-$KUBE_VERSION}"
PORT="${WEIR_KUBE_PORT:-16443}"
ETCD_PORT="${WEIR_KUBE_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${WEIR_KUBE_ETCD_PEER_PORT:-$((ETCD_PORT + 1))}"
BIN="$KUBE_HOME/bin/kube-apiserver"
RUN_DIR="$CACHE_ROOT/run/kube-apiserver-$PORT"
KUBECONFIG_FILE="$RUN_DIR/kubeconfig"
TOKEN="weir-test-admin-token"
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$CACHE_ROOT/go/mod}"
export GOCACHE="${GOCACHE_OVERRIDE:-$CACHE_ROOT/go/build}"
export GOFLAGS="-mod=mod"

log() { echo "kube-apiserver.sh: $*" >&2; }
die() { log "$*"; exit 1; }

build() {
    [[ -x "$BIN" ]] && return 0
    # One build per machine: concurrent test sessions and clones wait for it and reuse it.
    mkdir -p "$CACHE_ROOT"
    exec 9>"$CACHE_ROOT/.kube-apiserver-$KUBE_VERSION.lock"
    flock 9
    adopt_legacy_copy
    [[ -x "$BIN" ]] || compile
    exec 9>&-
}

# Earlier versions of this script kept the binary in the clone and a copy at the very path that
# is now the build directory ($WEIR_CACHE_DIR/kube-apiserver-<version>, then a file): move it in.
adopt_legacy_copy() {
    [[ -z "${WEIR_KUBE_HOME:-}" && -f "$KUBE_HOME" && ! -L "$KUBE_HOME" ]] || return 0
    log "moving the cached binary $KUBE_HOME to $BIN"
    mv "$KUBE_HOME" "$KUBE_HOME.legacy.$$"
    mkdir -p "$(dirname "$BIN")"
    mv "$KUBE_HOME.legacy.$$" "$BIN"
}

compile() {
    command -v go >/dev/null || die "go not found"
    local src="$KUBE_HOME/src" kube_gomod
    mkdir -p "$src" "$KUBE_HOME/bin"
    log "building kube-apiserver $KUBE_VERSION (cold: ~15-25 min on 2 cores)"
    kube_gomod="$(cd "$src" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" \
        | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
    [[ -f "$kube_gomod" ]] || die "could not fetch k8s.io/kubernetes@$KUBE_VERSION go.mod"
    kube_wrapper_module "$src" weir.local/kube-apiserver "$KUBE_VERSION" "$kube_gomod"
    (cd "$src" && go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" \
        && nice go build -trimpath -ldflags "$(kube_ldflags "$KUBE_VERSION")" -o "$BIN.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
    mv "$BIN.tmp" "$BIN"
    log "built $BIN"
}

ensure_etcd() {
    command -v etcd >/dev/null && return 0
    log "installing etcd-server (apt)"
    apt-get install -y -qq etcd-server >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq etcd-server >/dev/null; }
}

is_running() { # pidfile
    [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

write_credentials() {
    mkdir -p "$RUN_DIR/certs"
    [[ -f "$RUN_DIR/sa.key" ]] || openssl genrsa -out "$RUN_DIR/sa.key" 2048 2>/dev/null
    [[ -f "$RUN_DIR/sa.pub" ]] || openssl rsa -in "$RUN_DIR/sa.key" -pubout -out "$RUN_DIR/sa.pub" 2>/dev/null
    echo "$TOKEN,weir-admin,weir-admin,system:masters" >"$RUN_DIR/tokens.csv"
    cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: weir-test
  cluster: {server: "https://127.0.0.1:$PORT", insecure-skip-tls-verify: true}
users:
- name: weir-admin
  user: {token: $TOKEN}
contexts:
- name: weir-test
  context: {cluster: weir-test, user: weir-admin, namespace: default}
current-context: weir-test
EOF
}

wait_ready() {
    local deadline=$((SECONDS + ${WEIR_KUBE_START_TIMEOUT:-90}))
    until curl -skf -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do
        is_running "$RUN_DIR/kube-apiserver.pid" || { tail -20 "$RUN_DIR/kube-apiserver.log" >&2; die "kube-apiserver exited"; }
        ((SECONDS < deadline)) || die "kube-apiserver not ready in time (see $RUN_DIR/kube-apiserver.log)"
        sleep 0.5
    done
    # The bootstrap controller creates the `default` namespace shortly after readiness.
    until curl -skf -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$PORT/api/v1/namespaces/default" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "namespace default never appeared"
        sleep 0.5
    done
}

start() {
    build
    ensure_etcd
    write_credentials
    if ! is_running "$RUN_DIR/etcd.pid"; then
        rm -rf "$RUN_DIR/etcd-data"
        etcd --data-dir "$RUN_DIR/etcd-data" --name weir-test \
            --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
            --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
            --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
            --initial-cluster "weir-test=http://127.0.0.1:$ETCD_PEER_PORT" \
            --unsafe-no-fsync >"$RUN_DIR/etcd.log" 2>&1 &
        echo $! >"$RUN_DIR/etcd.pid"
    fi
    if ! is_running "$RUN_DIR/kube-apiserver.pid"; then
        "$BIN" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
            --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$PORT" \
            --cert-dir "$RUN_DIR/certs" --token-auth-file "$RUN_DIR/tokens.csv" \
            --authorization-mode RBAC \
            --service-account-issuer https://kubernetes.default.svc \
            --service-account-key-file "$RUN_DIR/sa.pub" \
            --service-account-signing-key-file "$RUN_DIR/sa.key" \
            --service-cluster-ip-range 10.96.0.0/24 \
            --disable-admission-plugins ServiceAccount \
            >"$RUN_DIR/kube-apiserver.log" 2>&1 &
        echo $! >"$RUN_DIR/kube-apiserver.pid"
    fi
    wait_ready
    echo "$KUBECONFIG_FILE"
}

stop_one() { # pidfile
    is_running "$1" || { rm -f "$1"; return 0; }
    local pid deadline=$((SECONDS + 15))
    pid="$(cat "$1")"
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || { kill -9 "$pid" 2>/dev/null || true; }
        sleep 0.2
    done
    rm -f "$1"
}

case "${1:-}" in
    build) build ;;
    start) start ;;
    stop) stop_one "$RUN_DIR/kube-apiserver.pid"; stop_one "$RUN_DIR/etcd.pid" ;;
    status) is_running "$RUN_DIR/kube-apiserver.pid" && echo "$KUBECONFIG_FILE" ;;
    kubeconfig) echo "$KUBECONFIG_FILE" ;;
    *) die "usage: $0 build|start|stop|status|kubeconfig" ;;
esac
