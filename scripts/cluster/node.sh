#!/usr/bin/env bash
# The node's processes, started by `scripts/cluster.sh up` inside the cluster's network namespace
# and a mount namespace of their own (not meant to be run by hand):
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet,
#   kube-proxy, CoreDNS, metrics-server, KEDA's operator and metrics apiserver
# Runs until it is sent TERM, then stops them. Everything they mount (container root filesystems,
# volumes, pod network namespaces) lives in this mount namespace and goes when it does.
set -euo pipefail
DIR="$1"
# shellcheck source=/dev/null
source "$DIR/cluster.env"

# `ip netns exec` mounted a fresh /sys for the namespace: mount the machine's cgroup hierarchies
# again (the same hierarchies), then join the node's cgroup so `down` finds every process.
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
while read -r _ path type opts _; do
    [[ "$type" == cgroup ]] || continue
    mkdir -p "$path"
    mount -t cgroup -o "$opts" cgroup "$path"
done <"$DIR/cgroup-mounts"
echo $$ >"/sys/fs/cgroup/pids/$CGROUP/node/cgroup.procs"

pids=()
start() { # name command...
    local name="$1"
    shift
    "$@" >"$DIR/logs/$name.log" 2>&1 &
    pids+=($!)
    echo $! >"$DIR/pids/$name"
}

stop_all() {
    trap - TERM INT
    local i
    # Reverse order: the kubelet before containerd, the apiserver before etcd.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
    wait || true
    exit 0
}
trap stop_all TERM INT

# The kubelet insists on these kernel settings and writes them machine-wide; other people use
# this machine. Inside this mount namespace each reads as what the kubelet wants, so it writes
# nothing (scripts/cluster.sh also restores them should one change anyway).
mkdir -p "$DIR/sysctl-mask"
while read -r key value; do
    mask="$DIR/sysctl-mask/${key//\//.}"
    echo "$value" >"$mask"
    mount --bind "$mask" "/proc/sys/$key"
done <<'EOF'
vm/overcommit_memory 1
vm/panic_on_oom 0
kernel/panic 10
kernel/panic_on_oops 1
kernel/keys/root_maxkeys 1000000
kernel/keys/root_maxbytes 25000000
EOF

# Paths the kubelet and CNI use whatever their flags say: ours, in this namespace only.
for pair in /var/lib/kubelet:kubelet /var/log/pods:pod-logs /var/log/containers:container-logs \
    /var/lib/cni:cni/state; do
    mkdir -p "$DIR/${pair#*:}"
    mount --bind "$DIR/${pair#*:}" "${pair%%:*}"
done

start etcd etcd --data-dir "$DIR/etcd" --name weir-node \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster weir-node=http://127.0.0.1:2380 --unsafe-no-fsync --listen-metrics-urls ''

start kube-apiserver "$KUBE_APISERVER" --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --advertise-address "$NODE_IP" --secure-port 6443 \
    --tls-cert-file "$DIR/pki/apiserver.crt" --tls-private-key-file "$DIR/pki/apiserver.key" \
    --client-ca-file "$DIR/pki/ca.crt" --token-auth-file "$DIR/pki/tokens.csv" \
    --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$DIR/pki/sa.pub" --service-account-signing-key-file "$DIR/pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --enable-aggregator-routing=true \
    --requestheader-client-ca-file "$DIR/pki/ca.crt" --requestheader-allowed-names front-proxy \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$DIR/pki/front-proxy.crt" --proxy-client-key-file "$DIR/pki/front-proxy.key"

until curl -skf --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
    https://127.0.0.1:6443/readyz >/dev/null 2>&1; do sleep 0.5; done

start kube-controller-manager "$NODE_BIN/kube-controller-manager" --kubeconfig "$DIR/admin.kubeconfig" \
    --leader-elect=false --root-ca-file "$DIR/pki/ca.crt" \
    --service-account-private-key-file "$DIR/pki/sa.key" --use-service-account-credentials=false \
    --controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route' \
    --horizontal-pod-autoscaler-sync-period 5s
start kube-scheduler "$NODE_BIN/kube-scheduler" --kubeconfig "$DIR/admin.kubeconfig" --leader-elect=false

start containerd containerd --config "$DIR/containerd.toml"
until ctr --address "$DIR/containerd/containerd.sock" version >/dev/null 2>&1; do sleep 0.2; done

start kubelet "$NODE_BIN/kubelet" --config "$DIR/kubelet.yaml" --kubeconfig "$DIR/admin.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
start kube-proxy "$NODE_BIN/kube-proxy" --config "$DIR/kube-proxy.yaml"
start coredns "$COREDNS" -conf "$DIR/Corefile"

# metrics-server, registered as v1beta1.metrics.k8s.io (scripts/cluster.sh write_addons). It reads
# the kubelet's resource metrics at the node's InternalIP; the kubelet's serving certificate is
# self-signed, hence --kubelet-insecure-tls. Every 10 s (its minimum) so the HPA reacts soon.
kubectl --kubeconfig "$DIR/admin.kubeconfig" apply -f "$DIR/addons.yaml" >"$DIR/logs/addons.log" 2>&1
start metrics-server "$METRICS_SERVER" --kubeconfig "$DIR/admin.kubeconfig" \
    --authentication-kubeconfig "$DIR/admin.kubeconfig" --authorization-kubeconfig "$DIR/admin.kubeconfig" \
    --bind-address "$NODE_IP" --secure-port 4443 \
    --tls-cert-file "$DIR/pki/addons.crt" --tls-private-key-file "$DIR/pki/addons.key" \
    --kubelet-insecure-tls --kubelet-preferred-address-types InternalIP \
    --metric-resolution 10s --kubelet-request-timeout 5s

# KEDA: the operator (runs the scalers, owns the HPA of each ScaledObject, serves their metrics
# over gRPC at the node's address) and the metrics apiserver (v1beta1.external.metrics.k8s.io; asks
# the operator). Certificates are ours ($DIR/pki/keda), not rotated by KEDA. Every other port of
# theirs is moved off the defaults, which other processes here hold (CoreDNS: 8080).
kubectl --kubeconfig "$DIR/admin.kubeconfig" apply --server-side -f "$DIR/keda-crds.yaml" >>"$DIR/logs/addons.log" 2>&1
kubectl --kubeconfig "$DIR/admin.kubeconfig" wait --for condition=Established --timeout 60s \
    -f "$DIR/keda-crds.yaml" >>"$DIR/logs/addons.log" 2>&1
keda_env=(env KUBECONFIG="$DIR/admin.kubeconfig" WATCH_NAMESPACE="" POD_NAMESPACE=keda
    KEDA_CLUSTER_OBJECT_NAMESPACE=keda)
start keda-operator "${keda_env[@]}" "$KEDA_BIN/keda" --zap-encoder=console --leader-elect=false \
    --metrics-bind-address 0 --health-probe-bind-address 127.0.0.1:9081 \
    --metrics-service-bind-address "$NODE_IP:9666" --cert-dir "$DIR/pki/keda" \
    --enable-cert-rotation=false
start keda-adapter "${keda_env[@]}" "$KEDA_BIN/keda-adapter" --zap-encoder=console \
    --bind-address "$NODE_IP" --secure-port 6444 --port 9022 --cert-dir "$DIR/pki/keda" \
    --tls-cert-file "$DIR/pki/keda/tls.crt" --tls-private-key-file "$DIR/pki/keda/tls.key" \
    --client-ca-file "$DIR/pki/keda/ca.crt" --metrics-service-address "$NODE_IP:9666" \
    --lister-kubeconfig "$DIR/admin.kubeconfig" --authentication-kubeconfig "$DIR/admin.kubeconfig" \
    --authorization-kubeconfig "$DIR/admin.kubeconfig"

echo ready >"$DIR/node.started"
wait
