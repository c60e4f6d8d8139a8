"""Dependencies injected into routes; the app's lifespan puts them on `app.state`.

Keys: a route declares the key kind it needs with a parameter typed `WriteKey` (ingestion) or
`ReadKey` (/metrics, admin routes); without it a route is public. A `ReadKey` request costs one
unit of the key's quota; a write route spends its events itself: `key.charge(len(events))`.

All `async def`: FastAPI runs a plain `def` dependency in a worker thread, one thread hop per
dependency per request, which cost more CPU than the rest of POST /events together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBasic, HTTPBearer

from weir.api.auth import Authenticator, Principal
from weir.api.ingest import Ingestor
from weir.core.config import Settings
from weir.core.keys import KeyKind
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


# The two schemes put the key's two forms in the OpenAPI document; they check nothing:
# `Authenticator` does (one place, also used by the plain Starlette ingestion routes).
class _Bearer(HTTPBearer):
    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


class _Basic(HTTPBasic):
    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


BEARER = _Bearer(scheme_name="key", description="An API key: `Authorization: Bearer <key>`.")
BASIC = _Basic(scheme_name="basicKey", description="An API key as the HTTP Basic user.")
_Schemes = (Security(BEARER), Security(BASIC))


async def _write_key(
    request: Request,
    _bearer: Annotated[None, _Schemes[0]],
    _basic: Annotated[None, _Schemes[1]],
) -> Principal:
    authenticator: Authenticator = request.app.state.auth
    return authenticator.require(request, KeyKind.WRITE)


async def _read_key(
    request: Request,
    _bearer: Annotated[None, _Schemes[0]],
    _basic: Annotated[None, _Schemes[1]],
) -> Principal:
    authenticator: Authenticator = request.app.state.auth
    key = authenticator.require(request, KeyKind.READ)
    key.charge(1)
    return key


WriteKey = Annotated[Principal, Depends(_write_key)]
ReadKey = Annotated[Principal, Depends(_read_key)]


def hot_path_parts(request: Request) -> tuple[Ingestor, Settings, Authenticator]:
    """The ingestion routes' parts, read directly: the routes are plain Starlette routes, without
    FastAPI's dependency resolution (see routes/events.py)."""
    state = request.app.state
    return state.ingestor, state.settings, state.auth
