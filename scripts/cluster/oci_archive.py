"""Write a one-layer OCI image archive of a directory, for `ctr images import` / `buildah pull`.

    python3 oci_archive.py ROOTFS IMAGE_REF ENTRYPOINT_JSON OUT.tar

Used for images that are a plain file tree (the pause binary, a debootstrap root filesystem), so
no image builder and no registry is needed for them. Owners are kept numerically; device nodes
are left out (the runtime provides /dev).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path


def _layer(root: Path, out: Path) -> str:
    """Tar ROOT into OUT (uncompressed); return the digest of the tar."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if info.ischr() or info.isblk() or info.isfifo():
            return None
        info.uname = info.gname = ""
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(os.listdir(root)):
            tar.add(root / entry, arcname=entry, filter=keep)
    return _sha256(out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _add_blob(tar: tarfile.TarFile, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return digest, len(data)


def main(root: str, ref: str, entrypoint: str, out: str) -> None:
    target = Path(out)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        layer_path = Path(scratch) / "layer.tar"
        layer_digest = _layer(Path(root), layer_path)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": json.loads(entrypoint),
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
            # Image builders (buildah) match history entries to layers.
            "history": [{"created_by": "scripts/cluster/oci_archive.py"}],
        }
        staging = target.with_name(f".{target.name}.{os.getpid()}")
        with tarfile.open(staging, "w") as tar:
            tar.add(layer_path, arcname=f"blobs/sha256/{layer_digest}")
            config_digest, config_size = _add_blob(tar, json.dumps(config).encode())
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": f"sha256:{config_digest}",
                    "size": config_size,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": f"sha256:{layer_digest}",
                        "size": layer_path.stat().st_size,
                    }
                ],
            }
            manifest_digest, manifest_size = _add_blob(tar, json.dumps(manifest).encode())
            index = {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": f"sha256:{manifest_digest}",
                        "size": manifest_size,
                        "annotations": {
                            "io.containerd.image.name": ref,
                            "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1],
                        },
                    }
                ],
            }
            for name, data in (
                ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
                ("index.json", json.dumps(index).encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        staging.rename(target)


if __name__ == "__main__":
    main(*sys.argv[1:5])
