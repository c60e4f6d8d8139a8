"""Who may call: API keys of two kinds (write: ingestion; read: /metrics and admin routes), and
each key's quota.

A key arrives as `Authorization: Bearer <key>` or as the HTTP Basic user (password empty), which
is how Segment-style SDKs send a write key. It is checked by its SHA-256 against the configured
digests (`weir.core.keys`). No key: 401; a key of the other kind: 403; over its quota: 429 with
`Retry-After` and `RateLimit-*`. With no key configured at all Weir runs open: every request is
let through as the key `open`, without quota (allowed on a loopback address, or with
`WEIR_API_OPEN`: see `check_exposure`).

Routes declare the kind they need with `WriteKey` / `ReadKey` from `weir.api.deps`; the plain
Starlette ingestion routes call `Authenticator.require` directly.
"""

from __future__ import annotations

import binascii
import ipaddress
import logging
from base64 import b64decode
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from weir.api.errors import ApiError
from weir.api.quota import TokenBucket
from weir.core.config import Settings
from weir.core.keys import ApiKey, KeyKind, digest, load_keys
from weir.observability import metrics

log = logging.getLogger(__name__)
OPEN = "open"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="weir", Basic realm="weir"'}
_HOW = "send it as 'Authorization: Bearer <key>' or as the HTTP Basic user"


@dataclass(frozen=True)
class Principal:
    """The key a request was made with (`key_id` `open` when Weir runs without keys)."""

    key_id: str
    kind: KeyKind | None
    bucket: TokenBucket | None = None

    def charge(self, cost: int = 1) -> None:
        """Take `cost` from the key's quota (events for a write key, 1 per read request);
        raise 429 when it does not fit now, 413 when it never would."""
        if self.bucket is None:
            return
        verdict = self.bucket.take(cost)
        if verdict.allowed:
            metrics.KEY_USAGE.labels(self.key_id).inc(cost)
            return
        metrics.KEY_THROTTLED.labels(self.key_id).inc()
        if cost > self.bucket.burst:
            raise ApiError(
                413,
                f"quota: {cost} at once is more than key {self.key_id!r} may ever send at once "
                f"({verdict.limit}); split the request",
            )
        raise ApiError(
            429,
            f"quota: key {self.key_id!r} is over its rate of {self.bucket.rate:g}/s; "
            f"retry after {verdict.retry_after} s",
            headers={
                "Retry-After": str(verdict.retry_after),
                "RateLimit-Limit": str(verdict.limit),
                "RateLimit-Remaining": str(verdict.remaining),
                "RateLimit-Reset": str(verdict.reset),
            },
        )


class Authenticator:
    def __init__(self, keys: list[ApiKey], rate: float, burst: int, workers: int = 1) -> None:
        self._by_digest = {key.sha256: key for key in keys}
        self._principals: dict[str, Principal] = {}
        for key in keys:  # keys sharing an id (one client's old and new key) share a bucket
            if key.id not in self._principals:
                bucket = TokenBucket(
                    rate=(key.rate or rate) / workers, burst=max(1, (key.burst or burst) / workers)
                )
                self._principals[key.id] = Principal(key.id, key.kind, bucket)
        self._open = Principal(OPEN, None)

    @classmethod
    def from_settings(cls, settings: Settings, workers: int = 1) -> Authenticator:
        return cls(configured_keys(settings), settings.key_rate, settings.key_burst, workers)

    @property
    def open(self) -> bool:
        return not self._by_digest

    def require(self, connection: HTTPConnection, kind: KeyKind) -> Principal:
        """The request's key, which must be of `kind`; raise 401 / 403 otherwise."""
        if not self._by_digest:
            return self._open
        presented = _presented_key(connection.headers.get("authorization"))
        if presented is None:
            raise ApiError(401, f"authorization: an API key is required; {_HOW}", _CHALLENGE)
        key = self._by_digest.get(digest(presented))
        if key is None:
            raise ApiError(401, "authorization: unknown API key", _CHALLENGE)
        if key.kind is not kind:
            raise ApiError(
                403, f"authorization: this route needs a {kind} key, not a {key.kind} key"
            )
        return self._principals[key.id]


def _presented_key(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer":
        return credentials or None
    if scheme == "basic":
        try:
            user, _, password = b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or password or None
    return None


def configured_keys(settings: Settings) -> list[ApiKey]:
    keys = list(settings.api_keys)
    if settings.api_keys_file is not None:
        keys.extend(load_keys(settings.api_keys_file))
    return keys


def check_exposure(settings: Settings) -> None:
    """Refuse to serve without keys on an address others can reach, unless told to run open;
    say so loudly when running open. Refusing exits the process (status 2)."""
    if configured_keys(settings):
        return
    where = f"{settings.host}:{settings.port}"
    if not (is_loopback(settings.host) or settings.api_open):
        log.error(
            "refusing to start: no API keys configured and %s is not a loopback address, so "
            "anyone could write and read. Configure keys (WEIR_API_KEYS / WEIR_API_KEYS_FILE, "
            "`weir keys create`) or set WEIR_API_OPEN=true to run open on purpose.",
            where,
        )
        raise SystemExit(2)
    log.warning(
        "running open: no API keys configured, anyone who can reach %s may write and read", where
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
