#!/usr/bin/env bash
# Pinned CLI tools for the chart and manifests, built from source with `go install` into a
# machine-wide cache outside the clone, keyed by version, so that a fresh clone on the same machine
# reuses them. Idempotent: a tool already at its pinned version is not rebuilt.
#
#   scripts/tools.sh            install every tool and the Kubernetes schemas (default)
#   scripts/tools.sh install    same
#   scripts/tools.sh path       print one bin directory holding every pinned tool (for PATH=...)
#   scripts/tools.sh env        print `export` lines: WEIR_HELM, WEIR_KUBECONFORM, WEIR_K8S_SCHEMAS
#
# Layout, under $WEIR_TOOLS_DIR:
#   helm-<version>/bin/helm, kubeconform-<version>/bin/kubeconform     the builds
#   tools-helm-<version>+kubeconform-<version>/bin/                    links to both (`path`)
#   k8s-json-schema-<kubernetes-validate version>/v<k8s>-local-strict/  schemas for kubeconform
#
# Environment (all optional):
#   WEIR_CACHE_DIR   machine-wide build cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/weir)
#   WEIR_TOOLS_DIR   where the tools go (default $WEIR_CACHE_DIR)
#   WEIR_PYTHON      interpreter that has kubernetes-validate (default <repo>/.venv/bin/python)
#
# Needs Go (>= 1.24) and the Go module proxy. Kubernetes JSON schemas are not downloaded: they
# ship inside the PyPI package kubernetes-validate (a dev dependency), see k8s_schemas below.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${WEIR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}"
TOOLS_DIR="${WEIR_TOOLS_DIR:-$CACHE_ROOT}"
PYTHON="${WEIR_PYTHON:-$REPO_ROOT/.venv/bin/python}"

HELM_VERSION="v3.22.0"
KUBECONFORM_VERSION="v0.8.0"
# What helm's own Makefile injects: its version, and the default Kubernetes version of
# `helm template`/`lint` (client-go v0.37 -> 1.37). Without them helm assumes Kubernetes 1.20.
HELM_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37 \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37"
KUBECONFORM_LDFLAGS="-X main.version=$KUBECONFORM_VERSION"

HELM="$TOOLS_DIR/helm-$HELM_VERSION/bin/helm"
KUBECONFORM="$TOOLS_DIR/kubeconform-$KUBECONFORM_VERSION/bin/kubeconform"
# One directory with every pinned tool, for PATH: links into the per-tool builds.
BIN_DIR="$TOOLS_DIR/tools-helm-$HELM_VERSION+kubeconform-$KUBECONFORM_VERSION/bin"

log() { echo "tools.sh: $*" >&2; }

# Each tool lives in <name>-<version>/bin and records the version and flags it was built from, so
# a pin bump lands in a new directory and a flag change triggers a rebuild, without having to
# parse every tool's own `version` output.
install_go_tool() {
  local name="$1" module="$2" version="$3" ldflags="$4"
  local bin_dir="$TOOLS_DIR/$name-$version/bin"
  local stamp="$bin_dir/.$name.version" wanted="$version $ldflags"
  if [[ -x "$bin_dir/$name" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    return 0
  fi
  command -v go >/dev/null || { log "go is required to build $name"; exit 1; }
  log "building $name $version into $bin_dir (go install, first time takes a few minutes)"
  mkdir -p "$bin_dir"
  # A private GOBIN per build keeps a half-built binary from ever being seen as installed.
  local staging
  staging="$(mktemp -d "$TOOLS_DIR/$name-$version/.build.XXXXXX")"
  if ! GOBIN="$staging" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
    go install -ldflags "-s -w $ldflags" "$module@$version"; then
    rm -rf "$staging"
    exit 1
  fi
  mv -f "$staging/$name" "$bin_dir/$name"
  rm -rf "$staging"
  echo "$wanted" >"$stamp"
}

# The PATH directory: made once per combination of pins, never changed afterwards.
link_bin_dir() {
  [[ -L "$BIN_DIR/helm" && -L "$BIN_DIR/kubeconform" ]] && return 0
  local staging
  staging="$(mktemp -d "$TOOLS_DIR/.bin.XXXXXX")"
  chmod 755 "$staging"
  ln -s "$HELM" "$staging/helm"
  ln -s "$KUBECONFORM" "$staging/kubeconform"
  rm -rf "$BIN_DIR"
  mkdir -p "$(dirname "$BIN_DIR")"
  mv -T "$staging" "$BIN_DIR"
}

install_all() {
  mkdir -p "$TOOLS_DIR"
  # Serialise concurrent callers (parallel test sessions, other clones) on one lock.
  exec 9>"$TOOLS_DIR/.tools.lock"
  flock 9
  install_go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$HELM_LDFLAGS"
  install_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" \
    "$KUBECONFORM_LDFLAGS"
  link_bin_dir
  flock -u 9
}

# Kubernetes JSON schemas for kubeconform, from the newest strict schema set kubernetes-validate
# ships. Those carry an https://kubernetes.io/... $id and absolute $refs (/api/_definitions.json#)
# that kubernetes-validate resolves in its own Python registry; kubeconform loads plain files and
# would resolve them over the network. So a copy without $id, refs relative to the sibling
# _definitions.json, is cached, keyed by the kubernetes-validate version it came from.
# Prints the directory to use in kubeconform's -schema-location.
k8s_schemas() {
  "$PYTHON" - "$TOOLS_DIR" <<'PY'
import json
import os
import re
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import kubernetes_validate

root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
dirs = [p for p in root.iterdir() if re.fullmatch(r"v[\d.]+-local-strict", p.name)]
source = max(dirs, key=lambda p: tuple(int(x) for x in p.name[1:].split("-")[0].split(".")))
target = Path(sys.argv[1]) / f"k8s-json-schema-{version('kubernetes-validate')}" / source.name
stamp = target / ".kubernetes-validate-version"
wanted = version("kubernetes-validate") + " relative-refs-2"
if not (stamp.is_file() and stamp.read_text() == wanted):
    # Written aside and renamed into place: another clone may be reading the same cache.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{source.name}.", dir=target.parent))
    for schema in source.glob("*.json"):
        document = json.loads(schema.read_text())
        document.pop("$id", None)
        text = json.dumps(document).replace('"/api/_definitions.json#', '"_definitions.json#')
        (staging / schema.name).write_text(text)
    (staging / stamp.name).write_text(wanted)
    staging.chmod(0o755)
    stale = target.with_name(f".{source.name}.stale.{os.getpid()}")
    if target.exists():
        target.rename(stale)
    try:
        staging.rename(target)
    except OSError:  # another process put a complete copy there first
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(stale, ignore_errors=True)
print(target)
PY
}

case "${1:-install}" in
  install) install_all && k8s_schemas >/dev/null ;;
  path) echo "$BIN_DIR" ;;
  env)
    install_all
    echo "export WEIR_HELM=$HELM"
    echo "export WEIR_KUBECONFORM=$KUBECONFORM"
    echo "export WEIR_K8S_SCHEMAS=$(k8s_schemas)"
    ;;
  *) echo "usage: $0 [install|path|env]" >&2; exit 2 ;;
esac
