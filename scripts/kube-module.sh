# How Kubernetes binaries are built from the Go module k8s.io/kubernetes, for
# scripts/kube-apiserver.sh and scripts/cluster/build.sh (sourced, not run).
# shellcheck shell=bash
#
# k8s.io/kubernetes is not meant to be used as a module: its go.mod replaces every k8s.io/*
# staging module with a local path. A wrapper module maps those replaces to the published
# k8s.io/* v0.X.Y versions, which is exactly what the staging directories are released as.

# kube_wrapper_module DIR MODULE_NAME KUBE_VERSION KUBERNETES_GO_MOD: write DIR/go.mod.
kube_wrapper_module() {
    local src="$1" name="$2" version="$3" kube_gomod="$4"
    local staging_version="v0.${version#v1.}"
    mkdir -p "$src"
    {
        echo "module $name"
        echo
        echo "go $(sed -n 's/^go \([0-9.]*\).*/\1/p' "$kube_gomod")"
        echo
        echo "require k8s.io/kubernetes $version"
        echo
        echo "replace ("
        # `k8s.io/api => ./staging/src/k8s.io/api`  ->  `k8s.io/api => k8s.io/api v0.33.13`
        sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#\t\1 => \1 '"$staging_version"'#p' \
            "$kube_gomod"
        echo ")"
    } >"$src/go.mod"
}

# kube_ldflags KUBE_VERSION: what the Kubernetes build injects so the binaries know their version.
kube_ldflags() {
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$1"
    ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
    ldflags+=" -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$1")"
    echo "$ldflags"
}
