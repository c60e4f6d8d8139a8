#!/usr/bin/env bash
# A one-node Kubernetes cluster for tests, in a network namespace of its own, from cached builds
# (scripts/cluster/build.sh): etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# containerd + runc, kubelet, kube-proxy (iptables), CoreDNS, bridge CNI (Debian's plugins),
# metrics-server, KEDA (operator and metrics apiserver).
#
#   scripts/cluster.sh deps              install the Debian packages it needs (apt-get)
#   scripts/cluster.sh up                build what is missing, start the cluster, wait for the node
#   scripts/cluster.sh down              stop it and undo everything `up` did to the machine
#   scripts/cluster.sh status            exit 0 when it runs
#   scripts/cluster.sh exec CMD...       run CMD in the cluster's network namespace with
#                                        KUBECONFIG set (kubectl, helm, curl to pod/service IPs)
#   scripts/cluster.sh import TAR        load an image archive into the node's containerd
#   scripts/cluster.sh env               print the cluster's addresses and paths as `export` lines
#
# What it does to the machine, and how `down` undoes it (also after a crash: `up` first tears
# down a cluster of the same name whose processes are gone):
#   - network namespace weir-k8s-<name> (node address, pod bridge, every iptables rule kube-proxy
#     and CNI write, all inside it): deleted
#   - cgroups /weir-k8s-<name> in every cgroup v1 hierarchy (pods and the node's own processes,
#     which is how `down` finds every process it started): emptied and removed
#   - kernel settings the kubelet would write machine-wide: masked inside the node's mount
#     namespace so it writes none; recorded at `up` and restored at `down` should one differ
#   - /var/lib/kubelet, /var/log/pods, /var/log/containers, /var/lib/cni: bound to directories of
#     ours inside the node's mount namespace; created on the machine only when missing (then
#     removed at `down`), like /run/netns (`ip netns add` makes it, and mounts it on itself)
#   - everything else in $WEIR_CLUSTER_DIR: removed
#
# Environment (all optional):
#   WEIR_CLUSTER_NAME   names the namespace, cgroups and directory (default: weir)
#   WEIR_CLUSTER_DIR    state: certificates, containerd, etcd, logs
#                       (default $WEIR_CACHE_DIR/run/cluster-<name>)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$REPO_ROOT/scripts/cluster"
# shellcheck source=scripts/cluster/common.sh
source "$HERE/common.sh"

NAME="${WEIR_CLUSTER_NAME:-weir}"
DIR="${WEIR_CLUSTER_DIR:-$CACHE_ROOT/run/cluster-$NAME}"
NETNS="weir-k8s-$NAME"
CGROUP="weir-k8s-$NAME"
# Addresses inside the namespace only: nothing outside it routes to them.
NODE_IP="10.213.0.2"
POD_CIDR="10.244.0.0/24"
SERVICE_CIDR="10.96.0.0/24"
KUBE_APISERVER="$CACHE_ROOT/kube-apiserver-$KUBE_VERSION/bin/kube-apiserver"
ADMIN_TOKEN="weir-cluster-admin"
SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
    kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
HOST_PATHS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni)
DEBIAN_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack etcd-server
    debootstrap buildah)

log() { echo "cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }

deps() {
    local missing=() p
    for p in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]} (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    }
}

is_running() { [[ -f "$DIR/pids/launcher" ]] && kill -0 "$(cat "$DIR/pids/launcher")" 2>/dev/null; }

# --- configuration -------------------------------------------------------------------------------
write_pki() {
    local pki="$DIR/pki"
    mkdir -p "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=weir-cluster-ca \
        -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
    issue() { # name subject extfile-lines
        openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
        printf '%s\n' "$3" >"$pki/$1.ext"
        openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
            -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
    }
    local service_ip="${SERVICE_CIDR%.*}.1"
    issue apiserver /CN=kube-apiserver "subjectAltName=IP:$service_ip,IP:$NODE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
    issue front-proxy /CN=front-proxy "extendedKeyUsage=clientAuth"
    # metrics-server and KEDA run as processes at the node's address: served under the names the
    # aggregator checks (<service>.<namespace>.svc), and at the address for KEDA's own gRPC (mutual
    # TLS between its operator and its metrics apiserver, both with this pair, in KEDA's layout).
    issue addons /CN=weir-cluster-addons "subjectAltName=IP:$NODE_IP,DNS:metrics-server.kube-system.svc,DNS:keda-metrics-apiserver.keda.svc
extendedKeyUsage=serverAuth,clientAuth"
    mkdir -p "$pki/keda"
    cp "$pki/ca.crt" "$pki/keda/ca.crt"
    cp "$pki/addons.crt" "$pki/keda/tls.crt"
    cp "$pki/addons.key" "$pki/keda/tls.key"
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
    echo "$ADMIN_TOKEN,weir-admin,weir-admin,system:masters" >"$pki/tokens.csv"
    cat >"$DIR/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: weir
  cluster: {server: "https://$NODE_IP:6443", certificate-authority: "$pki/ca.crt"}
users:
- name: weir-admin
  user: {token: $ADMIN_TOKEN}
contexts:
- name: weir
  context: {cluster: weir, user: weir-admin, namespace: default}
current-context: weir
EOF
}

write_config() {
    local c="$DIR/containerd"
    mkdir -p "$c" "$DIR/cni/net.d" "$DIR/logs" "$DIR/pids"
    cat >"$DIR/cluster.env" <<EOF
NODE_IP=$NODE_IP
NODE_NAME=weir-node
SERVICE_CIDR=$SERVICE_CIDR
ADMIN_TOKEN=$ADMIN_TOKEN
NODE_BIN=$NODE_BIN
KUBE_APISERVER=$KUBE_APISERVER
COREDNS=$COREDNS_BIN
METRICS_SERVER=$METRICS_SERVER_BIN
KEDA_BIN=$KEDA_BIN
CGROUP=$CGROUP
EOF
    write_addons
    grep ' cgroup ' /proc/self/mounts >"$DIR/cgroup-mounts"
    cat >"$DIR/containerd.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
# Snapshotters that need host tools or devices this node does not use.
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without CAP_SYS_RESOURCE (this machine) runc cannot lower a process's oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "$c/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
EOF
    cat >"$DIR/cni/net.d/10-weir.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "weir",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$DIR/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
    # Pods resolve only cluster names: there is no upstream DNS to forward to.
    echo "search cluster.local" >"$DIR/resolv.conf"
    cat >"$DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP
containerRuntimeEndpoint: unix://$c/containerd.sock
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: $DIR/resolv.conf
failSwapOn: false
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
serializeImagePulls: false
# Images are imported, never pulled: never collect them, never evict for a fairly full disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
maxPods: 50
podPidsLimit: 4096
EOF
    cat >"$DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $DIR/admin.kubeconfig}
hostnameOverride: weir-node
bindAddress: $NODE_IP
mode: iptables
clusterCIDR: $POD_CIDR
# Pod -> Service -> pod on the same bridge: replies come back through the namespace's stack
# without the br_netfilter module (loading it would change every bridge on the machine).
iptables: {masqueradeAll: true}
# nf_conntrack_max is machine-wide: leave it and the timeouts alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
    cat >"$DIR/Corefile" <<EOF
.:53 {
    # Every address of the namespace (its own: nothing else shares port 53 here).
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa {
        kubeconfig $DIR/admin.kubeconfig weir
        pods insecure
        ttl 5
    }
    loadbalance
}
EOF
}

# metrics-server (resource metrics: the HPA's CPU, `kubectl top`) and KEDA's metrics apiserver
# (external metrics: the ScaledObjects' triggers) are processes of the node (node.sh), at $NODE_IP:
# each is a Service without a selector whose endpoint is that address, registered as its
# APIService. The aggregator routes to the endpoint (--enable-aggregator-routing) and checks the
# certificate against the cluster CA. KEDA's CRDs go in first: its operator watches them at once.
write_addons() {
    local ca
    ca="$(base64 -w0 "$DIR/pki/ca.crt")"
    {
        echo "apiVersion: v1"
        echo "kind: Namespace"
        echo "metadata: {name: keda}"
        addon_api metrics-server kube-system 4443 metrics.k8s.io "$ca"
        addon_api keda-metrics-apiserver keda 6444 external.metrics.k8s.io "$ca"
    } >"$DIR/addons.yaml"
    local crd
    for crd in "$CRDS_HOME"/*keda.sh_*.yaml; do echo "---"; cat "$crd"; done >"$DIR/keda-crds.yaml"
}

addon_api() { # service namespace port group ca-bundle
    cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: $2}
spec: {ports: [{name: https, port: 443, targetPort: $3}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: $1, namespace: $2}
subsets: [{addresses: [{ip: $NODE_IP}], ports: [{name: https, port: $3}]}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.$4}
spec:
  group: $4
  version: v1beta1
  service: {name: $1, namespace: $2, port: 443}
  caBundle: $5
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
}

# --- namespace, cgroups, sysctls -------------------------------------------------------------------
cgroup_dirs() { local h; for h in /sys/fs/cgroup/*/; do [[ -d "$h$CGROUP" ]] && echo "$h$CGROUP"; done; }

make_cgroups() {
    local h
    for h in /sys/fs/cgroup/*/; do
        [[ -f "$h/cgroup.procs" ]] || continue
        mkdir -p "$h$CGROUP"
        if [[ -f "$h/cpuset.cpus" ]]; then
            cat "$h/cpuset.cpus" >"$h$CGROUP/cpuset.cpus"
            cat "$h/cpuset.mems" >"$h$CGROUP/cpuset.mems"
        fi
    done
    mkdir -p "/sys/fs/cgroup/pids/$CGROUP/node"
}

make_netns() {
    [[ -d /run/netns ]] || { mkdir -p /run/netns; echo /run/netns >>"$DIR/created-paths"; }
    ip netns add "$NETNS"
    ip -n "$NETNS" link set lo up
    # The node's address sits on the namespace's loopback (this kernel has no dummy interfaces):
    # local to every process of the node, and the pods' gateway routes to it.
    ip -n "$NETNS" addr add "$NODE_IP/32" dev lo
    # Local processes need a route to Service IPs at all (kube-proxy's DNAT comes after it).
    ip -n "$NETNS" route add "$SERVICE_CIDR" dev lo
}

record_sysctls() {
    local key
    for key in "${SYSCTLS[@]}"; do echo "$key $(cat "/proc/sys/$key")"; done >"$DIR/sysctls.before"
}

restore_sysctls() {
    [[ -f "$DIR/sysctls.before" ]] || return 0
    local key value
    while read -r key value; do
        if [[ "$(cat "/proc/sys/$key")" != "$value" ]]; then
            log "restoring $key=$value (was changed to $(cat "/proc/sys/$key"))"
            echo "$value" >"/proc/sys/$key"
        fi
    done <"$DIR/sysctls.before"
}

# --- up / down -------------------------------------------------------------------------------------
up() {
    if is_running; then log "already running ($DIR)"; return 0; fi
    deps
    [[ -x "$KUBE_APISERVER" ]] || "$REPO_ROOT/scripts/kube-apiserver.sh" build
    "$HERE/build.sh" node
    "$HERE/build.sh" coredns
    "$HERE/build.sh" pause
    "$HERE/build.sh" crds
    "$HERE/build.sh" metrics-server
    "$HERE/build.sh" keda
    down_quiet
    local started=$SECONDS
    mkdir -p "$DIR"
    : >"$DIR/created-paths"
    record_sysctls
    local p
    for p in "${HOST_PATHS[@]}"; do
        [[ -e "$p" ]] || { mkdir -p "$p"; echo "$p" >>"$DIR/created-paths"; }
    done
    write_pki
    write_config
    make_cgroups
    make_netns
    # node.sh joins the node's cgroup first, so every process it starts (and the pods, under the
    # kubelet's cgroup root) is found again at `down`.
    ip netns exec "$NETNS" unshare --mount --propagation slave -- \
        setsid bash "$HERE/node.sh" "$DIR" >"$DIR/logs/node.log" 2>&1 </dev/null &
    echo $! >"$DIR/pids/launcher"
    wait_node_ready "$started"
    import "$PAUSE_TAR"
}

wait_node_ready() {
    local deadline=$((SECONDS + ${WEIR_CLUSTER_START_TIMEOUT:-180}))
    until in_netns kubectl get node weir-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; do
        is_running || { tail -n 30 "$DIR"/logs/*.log >&2; die "the node exited (logs in $DIR/logs)"; }
        ((SECONDS < deadline)) || { tail -n 30 "$DIR"/logs/kubelet.log >&2; die "node not Ready in time (logs in $DIR/logs)"; }
        sleep 1
    done
    log "node Ready in $((SECONDS - $1)) s"
}

in_netns() { ip netns exec "$NETNS" env KUBECONFIG="$DIR/admin.kubeconfig" "$@"; }

import() { # archive
    in_netns ctr --address "$DIR/containerd/containerd.sock" -n k8s.io images import "$1" >/dev/null
}

cgroup_pids() { local d; for d in $(cgroup_dirs); do find "$d" -name cgroup.procs -exec cat {} + ; done | sort -u; }

down() {
    [[ -d "$DIR" ]] || [[ -e "/run/netns/$NETNS" ]] || [[ -n "$(cgroup_dirs)" ]] || return 0
    # The kubelet first, so it restarts nothing; then the launcher stops the rest in order.
    local pid deadline
    for name in kubelet launcher; do
        [[ -f "$DIR/pids/$name" ]] && kill "$(cat "$DIR/pids/$name")" 2>/dev/null || true
    done
    deadline=$((SECONDS + 20))
    while is_running && ((SECONDS < deadline)); do sleep 0.5; done
    # What is left in our cgroups (pods, shims, anything that outlived the launcher) was started
    # by us; nothing else is in them.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(cgroup_pids)
        [[ -z "$pids" ]] && break
        for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
        sleep 0.5
    done
    [[ -z "$(cgroup_pids)" ]] || log "warning: processes left in cgroup $CGROUP: $(cgroup_pids | tr '\n' ' ')"
    local d
    for d in $(cgroup_dirs); do
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || log "warning: could not remove $d"
    done
    # Processes started with `exec` (a test's broker, the ClickHouse stand-in, load loops) are in
    # no cgroup of ours, only in the namespace: stop them too, or they outlive it.
    if [[ -e "/run/netns/$NETNS" ]]; then
        for signal in TERM KILL; do
            pids=$(ip netns pids "$NETNS" 2>/dev/null)
            [[ -z "$pids" ]] && break
            for pid in $pids; do kill "-$signal" "$pid" 2>/dev/null || true; done
            deadline=$((SECONDS + 10))
            while [[ -n "$(ip netns pids "$NETNS" 2>/dev/null)" ]] && ((SECONDS < deadline)); do
                sleep 0.5
            done
        done
        [[ -z "$(ip netns pids "$NETNS" 2>/dev/null)" ]] \
            || log "warning: processes left in netns $NETNS: $(ip netns pids "$NETNS" | tr '\n' ' ')"
        ip netns del "$NETNS"
    fi
    restore_sysctls
    if [[ -f "$DIR/created-paths" ]]; then
        sort -r "$DIR/created-paths" | while read -r p; do
            # /run/netns: `ip netns add` bound it onto itself; only when no namespace is left in it.
            if [[ -z "$(ls -A "$p" 2>/dev/null)" ]] && mountpoint -q "$p"; then umount "$p"; fi
            rmdir "$p" 2>/dev/null || log "warning: $p not empty, left"
        done
    fi
    # Nothing may still be mounted under the directory (the mount namespace is gone with its
    # processes; this guards against a surprise) before it is removed.
    if grep -q " $DIR" /proc/self/mountinfo; then
        die "mounts left under $DIR; not removing it: $(grep " $DIR" /proc/self/mountinfo | head -3)"
    fi
    rm -rf "$DIR"
}

down_quiet() { down 2>/dev/null || true; }

print_env() {
    echo "export WEIR_CLUSTER_NETNS=$NETNS"
    echo "export WEIR_CLUSTER_NODE_IP=$NODE_IP"
    echo "export WEIR_CLUSTER_KUBECONFIG=$DIR/admin.kubeconfig"
    echo "export WEIR_CLUSTER_DIR=$DIR"
}

case "${1:-}" in
    deps) deps ;;
    up) up ;;
    down) down ;;
    status) is_running ;;
    # exec: the command replaces this script, so a signal to what the caller started reaches it.
    exec) shift; exec ip netns exec "$NETNS" env KUBECONFIG="$DIR/admin.kubeconfig" "$@" ;;
    import) import "$2" ;;
    env) print_env ;;
    *) die "usage: $0 deps|up|down|status|exec CMD...|import TAR|env" ;;
esac
