#!/usr/bin/env bash
# The Weir image, built from the repository's Dockerfile offline: FROM the debootstrap base
# (scripts/cluster/build.sh base) instead of python:3.11-slim-bookworm from a container registry,
# with pip reading a wheel directory downloaded beforehand from PyPI on this machine. buildah
# (chroot isolation) builds it; the result is a docker-archive for `ctr images import`.
#
#   scripts/cluster/image.sh          build if the inputs changed; print `<image ref> <archive>`
#
# Cached in $WEIR_CACHE_DIR/weir-image/<inputs hash>.tar, keyed by the content of the Dockerfile,
# pyproject.toml, README.md, services/ and operator/ (the build context). buildah's storage and
# layer cache: $WEIR_CACHE_DIR/buildah/ (its mounts stay in a mount namespace of its own).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO_ROOT/scripts/cluster"
# shellcheck source=scripts/cluster/common.sh
source "$HERE/common.sh"

log() { echo "cluster/image.sh: $*" >&2; }

IMAGE_HOME="$CACHE_ROOT/weir-image"
BUILDAH_HOME="$CACHE_ROOT/buildah"
IMAGE_REPO="localhost/weir/weir"

inputs_hash() {
    cd "$REPO_ROOT"
    git ls-files -z -- Dockerfile pyproject.toml README.md services operator \
        | xargs -0 sha256sum | sha256sum | cut -c1-16
}

# Wheels for the image's dependencies and build backend, for pip's --no-index --find-links.
wheels() {
    local requirements hash dir
    requirements="$(python3 -c 'import sys, tomllib
d = tomllib.load(open(sys.argv[1], "rb"))
# What an editable install (pip install -e, as the Dockerfile does) asks the backend for too.
print("\n".join(d["project"]["dependencies"] + d["build-system"]["requires"] + ["editables"]))' "$REPO_ROOT/pyproject.toml")"
    hash="$(sha256sum <<<"$requirements" | cut -c1-16)"
    dir="$CACHE_ROOT/wheels-$hash"
    if [[ ! -f "$dir/.complete" ]]; then
        log "downloading wheels into $dir"
        mkdir -p "$dir"
        # shellcheck disable=SC2086
        python3 -m pip download --quiet --only-binary :all: --python-version 3.11 \
            --platform manylinux_2_36_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform linux_x86_64 --implementation cp \
            -d "$dir" $requirements >&2
        touch "$dir/.complete"
    fi
    echo "$dir"
}

buildah_() {
    buildah --root "$BUILDAH_HOME/root" --runroot "$BUILDAH_HOME/runroot" --storage-driver overlay "$@"
}

build() {
    local hash tag out wheel_dir
    hash="$(inputs_hash)"
    tag="$IMAGE_REPO:$hash"
    out="$IMAGE_HOME/$hash.tar"
    if [[ ! -f "$out" ]]; then
        mkdir -p "$IMAGE_HOME" "$BUILDAH_HOME/tmp"
        exec 9>"$CACHE_ROOT/.weir-image.lock"
        flock 9
        if [[ ! -f "$out" ]]; then
            "$HERE/build.sh" base
            wheel_dir="$(wheels)"
            log "building $tag from the Dockerfile (buildah, FROM $BASE_IMAGE)"
            # Mounts buildah makes stay in this mount namespace; its temporary files in ours.
            export -f buildah_
            export BUILDAH_HOME
            TMPDIR="$BUILDAH_HOME/tmp" unshare --mount --propagation private -- bash -c '
                set -euo pipefail
                buildah_ images -q "$1" >/dev/null 2>&1 || {
                    id=$(buildah_ pull -q "oci-archive:$2")
                    buildah_ tag "$id" "$1"
                }
                buildah_ bud --isolation chroot --pull-never --layers \
                    --build-arg PYTHON_IMAGE="$1" \
                    --build-arg PIP_INSTALL_FLAGS="--no-index --find-links /wheels" \
                    --volume "$3:/wheels:ro" -f "$4/Dockerfile" -t "$5" "$4"
                rm -f "$6.tmp"
                buildah_ push -q "$5" "docker-archive:$6.tmp:$5"
            ' _ "$BASE_IMAGE" "$BASE_TAR" "$wheel_dir" "$REPO_ROOT" "$tag" "$out" >&2
            mv "$out.tmp" "$out"
            log "built $out"
            # An archive per code version is a gigabyte: keep this one and the one before.
            ls -t "$IMAGE_HOME"/*.tar | tail -n +3 | xargs -r rm -f
        fi
        exec 9>&-
    fi
    echo "$tag $out"
}

build
