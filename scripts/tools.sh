#!/usr/bin/env bash
# Pinned CLI tools for the chart and manifests, built from source with `go install` into a
# repo-local cache. Idempotent: a tool already at its pinned version is not rebuilt.
#
#   scripts/tools.sh            install every tool and the Kubernetes schemas (default)
#   scripts/tools.sh install    same
#   scripts/tools.sh path       print the bin directory (for PATH=...)
#   scripts/tools.sh env        print `export` lines: WEIR_HELM, WEIR_KUBECONFORM, WEIR_K8S_SCHEMAS
#
# Environment (all optional):
#   WEIR_TOOLS_DIR   cache root (default <repo>/.cache/tools); binaries land in $WEIR_TOOLS_DIR/bin
#   WEIR_PYTHON      interpreter that has kubernetes-validate (default <repo>/.venv/bin/python)
#
# Needs Go (>= 1.24) and the Go module proxy. Kubernetes JSON schemas are not downloaded: they
# ship inside the PyPI package kubernetes-validate (a dev dependency), see k8s_schemas below.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${WEIR_TOOLS_DIR:-$REPO_ROOT/.cache/tools}"
BIN_DIR="$TOOLS_DIR/bin"
PYTHON="${WEIR_PYTHON:-$REPO_ROOT/.venv/bin/python}"

HELM_VERSION="v3.22.0"
KUBECONFORM_VERSION="v0.8.0"
# What helm's own Makefile injects: its version, and the default Kubernetes version of
# `helm template`/`lint` (client-go v0.37 -> 1.37). Without them helm assumes Kubernetes 1.20.
HELM_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37 \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37"
KUBECONFORM_LDFLAGS="-X main.version=$KUBECONFORM_VERSION"

log() { echo "tools.sh: $*" >&2; }

# Each tool records the version (and flags) it was built from, so a pin bump triggers a rebuild
# without having to parse every tool's own `version` output.
install_go_tool() {
  local name="$1" module="$2" version="$3" ldflags="$4"
  local stamp="$BIN_DIR/.$name.version" wanted="$version $ldflags"
  if [[ -x "$BIN_DIR/$name" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    return 0
  fi
  command -v go >/dev/null || { log "go is required to build $name"; exit 1; }
  log "building $name $version (go install, first time takes a few minutes)"
  mkdir -p "$BIN_DIR"
  # A private GOBIN per tool keeps a half-built binary from ever being seen as installed.
  local staging
  staging="$(mktemp -d "$TOOLS_DIR/.build-$name.XXXXXX")"
  if ! GOBIN="$staging" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
    go install -ldflags "-s -w $ldflags" "$module@$version"; then
    rm -rf "$staging"
    exit 1
  fi
  mv -f "$staging/$name" "$BIN_DIR/$name"
  rm -rf "$staging"
  echo "$wanted" >"$stamp"
}

install_all() {
  mkdir -p "$TOOLS_DIR"
  # Serialise concurrent callers (parallel test sessions) on one lock.
  exec 9>"$TOOLS_DIR/.lock"
  flock 9
  install_go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$HELM_LDFLAGS"
  install_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" \
    "$KUBECONFORM_LDFLAGS"
  flock -u 9
}

# Kubernetes JSON schemas for kubeconform, from the newest strict schema set kubernetes-validate
# ships. Those carry an https://kubernetes.io/... $id and absolute $refs (/api/_definitions.json#)
# that kubernetes-validate resolves in its own Python registry; kubeconform loads plain files and
# would resolve them over the network. So a copy without $id, refs relative to the sibling
# _definitions.json, is cached.
# Prints the directory to use in kubeconform's -schema-location.
k8s_schemas() {
  "$PYTHON" - "$TOOLS_DIR/k8s-json-schema" <<'PY'
import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

import kubernetes_validate

root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
dirs = [p for p in root.iterdir() if re.fullmatch(r"v[\d.]+-local-strict", p.name)]
source = max(dirs, key=lambda p: tuple(int(x) for x in p.name[1:].split("-")[0].split(".")))
target = Path(sys.argv[1]) / source.name
stamp = target / ".kubernetes-validate-version"
wanted = version("kubernetes-validate") + " relative-refs-2"
if not (stamp.is_file() and stamp.read_text() == wanted):
    target.mkdir(parents=True, exist_ok=True)
    for schema in source.glob("*.json"):
        document = json.loads(schema.read_text())
        document.pop("$id", None)
        text = json.dumps(document).replace('"/api/_definitions.json#', '"_definitions.json#')
        (target / schema.name).write_text(text)
    stamp.write_text(wanted)
print(target)
PY
}

case "${1:-install}" in
  install) install_all && k8s_schemas >/dev/null ;;
  path) echo "$BIN_DIR" ;;
  env)
    install_all
    echo "export WEIR_HELM=$BIN_DIR/helm"
    echo "export WEIR_KUBECONFORM=$BIN_DIR/kubeconform"
    echo "export WEIR_K8S_SCHEMAS=$(k8s_schemas)"
    ;;
  *) echo "usage: $0 [install|path|env]" >&2; exit 2 ;;
esac
