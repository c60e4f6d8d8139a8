"""Dependencies injected into routes; the app's lifespan puts them on `app.state`.

All `async def`: FastAPI runs a plain `def` dependency in a worker thread, one thread hop per
dependency per request, which cost more CPU than the rest of POST /events together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from weir.api.ingest import Ingestor
from weir.core.config import Settings
from weir.store import Store, TableSpec


def _from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    async def part(request: Request) -> Any:
        return getattr(request.app.state, name)

    part.__name__ = f"state_{name}"
    return part


SettingsDep = Annotated[Settings, Depends(_from_state("settings"))]
IngestorDep = Annotated[Ingestor, Depends(_from_state("ingestor"))]
StoreDep = Annotated[Store, Depends(_from_state("store"))]
TableSpecDep = Annotated[TableSpec, Depends(_from_state("table_spec"))]


def hot_path_parts(request: Request) -> tuple[Ingestor, Settings]:
    """The ingestion routes' parts, read directly: the routes are plain Starlette routes, without
    FastAPI's dependency resolution (see routes/events.py)."""
    return request.app.state.ingestor, request.app.state.settings
