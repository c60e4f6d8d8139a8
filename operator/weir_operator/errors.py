"""Map failures of Kafka, ClickHouse and the Kubernetes API to kopf's retry semantics.

Transient (broker down, timeout, ClickHouse unreachable) -> kopf.TemporaryError with a delay, so
kopf backs off; anything the same spec would hit again -> kopf.PermanentError.
"""

from __future__ import annotations

import asyncio

import kopf
from aiokafka.errors import KafkaError

from weir.store import StoreError, StoreUnavailable


def is_transient(error: BaseException) -> bool:
    if isinstance(error, KafkaError):
        return bool(error.retriable)
    if isinstance(error, StoreUnavailable):
        return True
    if isinstance(error, StoreError):
        return False
    return isinstance(error, OSError | asyncio.TimeoutError | TimeoutError)


def reason_for(error: BaseException, transient_reason: str) -> str:
    """A condition reason: the transient one, InvalidSpec, or the error's class name."""
    if is_transient(error):
        return transient_reason
    if isinstance(error, ValueError | KeyError | TypeError):
        return "InvalidSpec"
    return type(error).__name__.removesuffix("Error") or "Failed"


def to_kopf(error: BaseException, delay: float) -> kopf.TemporaryError | kopf.PermanentError:
    message = f"{type(error).__name__}: {error}"
    if is_transient(error):
        return kopf.TemporaryError(message, delay=delay)
    return kopf.PermanentError(message)


class Waiting(Exception):
    """Something the resource needs does not exist yet (a Table's Topic): Ready=False with
    `reason`, retried after RETRY_SECONDS, and no Warning Event (nothing is wrong with it)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
