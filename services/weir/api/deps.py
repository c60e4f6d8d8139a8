"""Dependencies injected into routes; the app's lifespan puts them on `app.state`.

All `async def`: FastAPI runs a plain `def` dependency in a worker thread, one thread hop per
dependency per request, which cost more CPU than the rest of POST /events together.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from weir.api.ingest import Ingestor
from weir.core.config import Settings
from weir.store import Store, TableSpec


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _ingestor(request: Request) -> Ingestor:
    ingestor: Ingestor = request.app.state.ingestor
    return ingestor


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _table_spec(request: Request) -> TableSpec:
    spec: TableSpec = request.app.state.table_spec
    return spec


SettingsDep = Annotated[Settings, Depends(_settings)]
IngestorDep = Annotated[Ingestor, Depends(_ingestor)]
StoreDep = Annotated[Store, Depends(_store)]
TableSpecDep = Annotated[TableSpec, Depends(_table_spec)]


def hot_path_parts(request: Request) -> tuple[Ingestor, Settings]:
    """The ingestion routes' parts, read directly: FastAPI's dependency resolution costs about a
    sixth of the CPU of a POST /events (measured), so those two routes take only the request."""
    return request.app.state.ingestor, request.app.state.settings
