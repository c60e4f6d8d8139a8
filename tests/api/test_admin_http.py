"""GET /events/{event_id} and DELETE /users/{user_id}/events at the HTTP level: keys, limits and
the OpenAPI document (their store side: tests/store/contract.py; end to end: tests/e2e)."""

from __future__ import annotations

import httpx

from tests.api.test_auth import READ, WRITE, bearer, keyed

__all__ = ["keyed"]  # the fixture: an app with write and read keys


async def test_both_need_a_read_key(keyed: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/events/e-1"), ("DELETE", "/users/u-1/events")):
        assert (await keyed.request(method, path)).status_code == 401
        refused = await keyed.request(method, path, headers=bearer(WRITE))
        assert refused.status_code == 403 and "needs a read key" in refused.json()["error"]


async def test_an_overlong_user_id_is_refused(keyed: httpx.AsyncClient) -> None:
    response = await keyed.delete(f"/users/{'u' * 129}/events", headers=bearer(READ))
    assert response.status_code == 400 and response.json()["error"].startswith("user_id:")


async def test_openapi_documents_both(keyed: httpx.AsyncClient) -> None:
    paths = (await keyed.get("/openapi.json")).json()["paths"]
    assert "404" in paths["/events/{event_id}"]["get"]["responses"]
    assert paths["/users/{user_id}/events"]["delete"]["tags"] == ["admin"]
