"""DELETE /users/{user_id}/events: erase a user (read key: an admin route)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from weir.api.deps import ReadKey, StoreDep, TableSpecDep
from weir.api.errors import ApiError
from weir.api.routes.stored import store_unavailable
from weir.core.event import NAME_MAX
from weir.store import StoreError, erase_user

router = APIRouter(tags=["admin"])


@router.delete("/users/{user_id:text}/events", responses={400: {}, 503: {}})
async def erase_user_events(
    user_id: Annotated[str, Path(json_schema_extra={"minLength": 1, "maxLength": NAME_MAX})],
    _key: ReadKey,
    store: StoreDep,
    spec: TableSpecDep,
) -> dict[str, Any]:
    """Delete every stored event of `user_id` and recount every rollup bucket it was counted
    in: /metrics no longer counts the user. Idempotent (a second call erases 0 events)."""
    if not 1 <= len(user_id) <= NAME_MAX:
        raise ApiError(400, f"user_id: must be 1-{NAME_MAX} characters")
    try:
        erased = await erase_user(store, spec, user_id)
    except StoreError as error:
        raise store_unavailable(error) from None
    return {
        "user_id": user_id,
        "erased_events": erased.total,
        "rebuilt_hours": erased.hours,
        "seconds": round(erased.seconds, 3),
    }
