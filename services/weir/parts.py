"""The parts every deployable starts the same way: store, table spec, (migration), producer.

Schema migration has one owner per installation: in a cluster the operator (Table resources) or
the `weir migrate` Job when the operator is off; `weir dev` migrates for itself. `weir api` and
`weir consumer` never run DDL, so replicas starting together cannot race on it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from weir.core.config import Settings
from weir.store import MigrationResult, Store, TableSpec, make_store, migrate
from weir.stream import Producer, make_producer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parts:
    settings: Settings
    store: Store
    spec: TableSpec
    producer: Producer


async def migrate_schema(store: Store, spec: TableSpec) -> MigrationResult:
    """Apply the spec's schema and log what was applied and what was refused (with why)."""
    result = await migrate(store, spec)
    for statement in result.applied:
        log.info("schema change applied", extra={"statement": statement})
    for reason in result.refused:
        log.warning("schema change refused", extra={"reason": reason})
    return result


@asynccontextmanager
async def open_parts(
    settings: Settings,
    *,
    migrate: bool = False,
    store: Store | None = None,
    producer: Producer | None = None,
) -> AsyncIterator[Parts]:
    """Start what is not passed in (and stop it on exit); parts passed in stay the caller's."""
    async with AsyncExitStack() as owned:
        if store is None:
            store = make_store(settings)
            owned.push_async_callback(store.close)
        spec = TableSpec.from_settings(settings)
        if migrate:
            await migrate_schema(store, spec)
        if producer is None:
            producer = make_producer(settings)
            await producer.start()
            owned.push_async_callback(producer.stop)
        yield Parts(settings, store, spec, producer)
