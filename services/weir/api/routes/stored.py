"""GET /events/{event_id}: an event as stored (read key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.convertors import Convertor, register_url_convertor

from weir.api.deps import ReadKey, StoreDep, TableSpecDep
from weir.api.errors import ApiError
from weir.store import StoreError, stored_event

router = APIRouter(tags=["events"])


def store_unavailable(error: StoreError) -> ApiError:
    return ApiError(
        503,
        "clickhouse: the query failed, retry later",
        headers={"Retry-After": "1"},
        detail=repr(error),  # logged with the request id, not sent (api/errors.py)
    )


class AnyText(Convertor[str]):
    """A path parameter that is any text, slashes and line breaks included: ids are what
    ingestion accepted, and Starlette's `path` convertor (`.*`) stops at a line break."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("text", AnyText())


@router.get(
    "/events/{event_id:text}",
    responses={404: {"description": "No stored event has this id (yet)."}, 503: {}},
)
async def get_event(
    event_id: str, _key: ReadKey, store: StoreDep, spec: TableSpecDep
) -> dict[str, Any]:
    """The stored event: its fields, `timestamp` on the server's clock and `client_timestamp`
    as sent (unix seconds), `received_at` (unix ms). 404 until the consumer has stored it."""
    try:
        event = await stored_event(store, spec, event_id)
    except StoreError as error:
        raise store_unavailable(error) from None
    if event is None:
        raise ApiError(404, f"event_id: no stored event has the id {event_id[:128]!r}")
    return event
