"""API keys: what a key is, how it is made, and how it is stored (only as a SHA-256 digest).

A key is `weir_<kind>_<43 random URL-safe characters>` (256 bits from `secrets`). Because keys
are random and long, one SHA-256 is the right stored form: nothing to brute-force, and the API
checks a key with one hash and one dict lookup. The key itself is shown once, by `weir keys`.

The API reads its keys from `WEIR_API_KEYS` (JSON) and/or `WEIR_API_KEYS_FILE` (the same JSON,
e.g. a Kubernetes Secret mounted as a file): a list of `{"id", "kind", "sha256"}` objects with an
optional per-key quota (`rate`, `burst`). Several keys may share a kind (rotation: add the new
one, move clients, remove the old one).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class KeyKind(StrEnum):
    WRITE = "write"  # ingestion routes
    READ = "read"  # /metrics and the admin routes


KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ApiKey(BaseModel):
    """One provisioned key, as stored: never the key, only its digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=KEY_ID.pattern, description="Names the key in logs and metrics.")
    kind: KeyKind
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the key, hex.")
    rate: float | None = Field(
        None, gt=0, description="Events (write) or requests (read) per second; default setting."
    )
    burst: int | None = Field(None, ge=1, description="Bucket size; default setting.")


KEY_LIST: TypeAdapter[list[ApiKey]] = TypeAdapter(list[ApiKey])


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(kind: KeyKind) -> str:
    return f"weir_{kind}_{secrets.token_urlsafe(32)}"


def load_keys(path: Path) -> list[ApiKey]:
    """The keys in a JSON file; a missing file holds none."""
    if not path.exists():
        return []
    return KEY_LIST.validate_json(path.read_bytes())


def dump_keys(keys: list[ApiKey]) -> bytes:
    return KEY_LIST.dump_json(keys, indent=2, exclude_none=True) + b"\n"
