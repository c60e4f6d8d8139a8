#!/usr/bin/env bash
# Pinned CLI tools for the chart and manifests, built from source with `go install` into a
# repo-local cache. Idempotent: a tool already at its pinned version is not rebuilt.
#
#   scripts/tools.sh            install every tool (default)
#   scripts/tools.sh install    same
#   scripts/tools.sh path       print the bin directory (for PATH=...)
#   scripts/tools.sh env        print `export` lines: WEIR_HELM, WEIR_KUBECONFORM, WEIR_K8S_SCHEMAS
#
# Environment (all optional):
#   WEIR_TOOLS_DIR   cache root (default <repo>/.cache/tools); binaries land in $WEIR_TOOLS_DIR/bin
#   WEIR_PYTHON      interpreter that has kubernetes-validate (default <repo>/.venv/bin/python)
#
# Needs Go (>= 1.24) and the Go module proxy. Kubernetes JSON schemas are not downloaded: they
# ship inside the PyPI package kubernetes-validate (a dev dependency), see `env`.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${WEIR_TOOLS_DIR:-$REPO_ROOT/.cache/tools}"
BIN_DIR="$TOOLS_DIR/bin"
PYTHON="${WEIR_PYTHON:-$REPO_ROOT/.venv/bin/python}"

HELM_VERSION="v3.22.0"
KUBECONFORM_VERSION="v0.8.0"

log() { echo "tools.sh: $*" >&2; }

# Each tool records the version it was built from next to it, so a pin bump triggers a rebuild
# without having to parse every tool's own `version` output.
install_go_tool() {
  local name="$1" module="$2" version="$3"
  local stamp="$BIN_DIR/.$name.version"
  if [[ -x "$BIN_DIR/$name" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    return 0
  fi
  command -v go >/dev/null || { log "go is required to build $name"; exit 1; }
  log "building $name $version (go install, first time takes a few minutes)"
  mkdir -p "$BIN_DIR"
  # A private GOBIN per tool keeps a half-built binary from ever being seen as installed.
  local staging
  staging="$(mktemp -d "$TOOLS_DIR/.build-$name.XXXXXX")"
  if ! GOBIN="$staging" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
    go install -ldflags "-s -w" "$module@$version"; then
    rm -rf "$staging"
    exit 1
  fi
  mv -f "$staging/$name" "$BIN_DIR/$name"
  rm -rf "$staging"
  echo "$version" >"$stamp"
}

install_all() {
  mkdir -p "$TOOLS_DIR"
  # Serialise concurrent callers (parallel test sessions) on one lock.
  exec 9>"$TOOLS_DIR/.lock"
  flock 9
  install_go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
  install_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
  flock -u 9
}

# The newest strict, self-contained ("-local-strict": $refs point at a sibling _definitions.json)
# schema directory shipped by kubernetes-validate.
k8s_schema_dir() {
  "$PYTHON" - <<'EOF'
import re
from pathlib import Path

import kubernetes_validate

root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
dirs = [p for p in root.iterdir() if re.fullmatch(r"v[\d.]+-local-strict", p.name)]
newest = max(dirs, key=lambda p: tuple(int(x) for x in p.name[1:].split("-")[0].split(".")))
print(newest)
EOF
}

case "${1:-install}" in
  install) install_all ;;
  path) echo "$BIN_DIR" ;;
  env)
    install_all
    echo "export WEIR_HELM=$BIN_DIR/helm"
    echo "export WEIR_KUBECONFORM=$BIN_DIR/kubeconform"
    echo "export WEIR_K8S_SCHEMAS=$(k8s_schema_dir)"
    ;;
  *) echo "usage: $0 [install|path|env]" >&2; exit 2 ;;
esac
