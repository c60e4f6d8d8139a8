"""Weir's Python client: `track()` returns at once, a background sender delivers in batches.

    from weir.client import Client

    weir = Client("http://127.0.0.1:8080", write_key="wk_...")
    weir.track("signup", user_id="u1", channel="web", metadata={"plan": "pro"})
    weir.flush()                       # optional: close() and interpreter exit flush too
    weir.metrics("signup", group_by="channel")

`AsyncClient` is the same for asyncio code (`await flush()`, `await aclose()`, `await metrics()`).
Independent of the server: it imports httpx and the standard library only (`.importlinter`).
"""

from __future__ import annotations

from weir.client.clients import AsyncClient, Client
from weir.client.sender import Stats
from weir.client.wire import WeirError

__all__ = ["AsyncClient", "Client", "Stats", "WeirError"]
