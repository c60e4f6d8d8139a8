"""`Client` (threads) and `AsyncClient` (asyncio): the same tracking, one background sender.

Both hand events to a `Sender` thread: `track()` must never wait for the network, and a thread
keeps delivering when the caller's event loop is busy or closing, and at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import weakref
from typing import Any

import httpx

from weir.client import wire
from weir.client.sender import Sender, SenderOptions, Stats


class _Tracking:
    """What both clients share: the sender, `track()`, stats, and the flush at exit."""

    def __init__(
        self,
        url: str,
        write_key: str | None = None,
        *,
        read_key: str | None = None,
        batch_size: int = wire.DEFAULT_BATCH_SIZE,
        flush_interval: float = 0.5,
        max_queue: int = 10_000,
        compress: bool = True,
        timeout: float = 10.0,
        backoff_max: float = 30.0,
        close_timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`batch_size` events or `flush_interval` seconds, whichever comes first, make a batch;
        at most `max_queue` events wait (more are dropped and counted in `stats`). `read_key`
        (defaults to the write key) authorizes `metrics()`."""
        self.url = url.rstrip("/")
        self._read_key = read_key or write_key
        self._timeout = timeout
        self._close_timeout = close_timeout
        self._sender = Sender(
            SenderOptions(
                url=self.url,
                write_key=write_key,
                batch_size=batch_size,
                flush_interval=flush_interval,
                max_queue=max_queue,
                compress=compress,
                timeout=timeout,
                backoff_max=backoff_max,
            ),
            transport=transport,
        )
        # At interpreter exit, deliver what is queued (for at most close_timeout seconds). A weak
        # reference: registering the client must not keep it alive.
        ref = weakref.ref(self)

        def at_exit() -> None:
            client = ref()
            if client is not None:
                client._close_sender()

        self._at_exit = at_exit
        atexit.register(at_exit)

    def track(
        self,
        event_name: str,
        user_id: str,
        channel: str,
        *,
        timestamp: int | None = None,
        event_id: str | None = None,
        campaign_id: str | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Queue one event and return its id at once (the event is dropped, counted in `stats`
        and logged, when the queue is full). `timestamp`: unix seconds, now by default."""
        event = wire.new_event(
            event_name, user_id, channel, timestamp, event_id, campaign_id, tags, metadata
        )
        self._sender.put(event)
        return str(event["event_id"])

    @property
    def stats(self) -> Stats:
        return self._sender.stats

    def _close_sender(self, timeout: float | None = None) -> None:
        atexit.unregister(self._at_exit)
        self._sender.close(self._close_timeout if timeout is None else timeout)

    def _read_headers(self) -> dict[str, str]:
        return wire.auth_headers(self._read_key)


class Client(_Tracking):
    """Tracks events from any thread; `flush()` and `close()` block until delivered."""

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything queued; False if `timeout` seconds passed first."""
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (for at most `timeout`, default `close_timeout`), then stop."""
        self._close_sender(timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def metrics(
        self,
        event_name: str,
        *,
        from_ts: int | None = None,
        to_ts: int | None = None,
        group_by: str | None = None,
        channel: str | None = None,
    ) -> dict[str, Any]:
        """`GET /metrics` as a dict; raises WeirError when the API refuses."""
        params = wire.metrics_params(event_name, from_ts, to_ts, group_by, channel)
        response = httpx.get(
            self.url + wire.METRICS_PATH,
            params=params,
            headers=self._read_headers(),
            timeout=self._timeout,
        )
        return wire.read_answer(response.status_code, response.content)


class AsyncClient(_Tracking):
    """For asyncio code: `track()` never blocks the loop; `flush()`, `aclose()` and `metrics()`
    are awaited. Delivery runs on the sender thread, so it goes on while the loop is busy."""

    async def flush(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self._sender.flush, timeout)

    async def aclose(self, timeout: float | None = None) -> None:
        await asyncio.to_thread(self._close_sender, timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def metrics(
        self,
        event_name: str,
        *,
        from_ts: int | None = None,
        to_ts: int | None = None,
        group_by: str | None = None,
        channel: str | None = None,
    ) -> dict[str, Any]:
        params = wire.metrics_params(event_name, from_ts, to_ts, group_by, channel)
        async with httpx.AsyncClient(timeout=self._timeout) as http:
            response = await http.get(
                self.url + wire.METRICS_PATH, params=params, headers=self._read_headers()
            )
        return wire.read_answer(response.status_code, response.content)
