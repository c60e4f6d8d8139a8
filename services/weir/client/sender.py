"""The background sender: a bounded queue, batches by size and age, delivery with retries.

One thread per client. `track()` only puts on the queue (or drops when it is full), so the caller
never waits for the network; the thread batches, gzips, posts and retries. Retries re-send the
same events with the same ids, so an answer lost in transit (the API died after Kafka acked)
costs nothing but a duplicate the consumer drops.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import httpx

from weir.client import wire

log = logging.getLogger("weir.client")


@dataclass(frozen=True)
class Stats:
    """Counts since the client started. `dropped`: the queue was full (never sent); `rejected`:
    the API refused them (invalid, unauthorized); `failed`: still unsent when close() gave up."""

    queued: int = 0
    delivered: int = 0
    dropped: int = 0
    rejected: int = 0
    failed: int = 0
    retries: int = 0
    batches: int = 0


@dataclass(frozen=True)
class SenderOptions:
    url: str
    write_key: str | None
    batch_size: int = wire.DEFAULT_BATCH_SIZE
    batch_bytes: int = wire.DEFAULT_BATCH_BYTES
    flush_interval: float = 0.5
    max_queue: int = 10_000
    compress: bool = True
    timeout: float = 10.0
    backoff_base: float = 0.2
    backoff_max: float = 30.0


class Sender:
    def __init__(
        self, options: SenderOptions, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.options = options
        self._http = httpx.Client(
            base_url=options.url,
            headers=wire.auth_headers(options.write_key),
            timeout=options.timeout,
            transport=transport,
        )
        self._queue: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue(options.max_queue)
        self._lock = threading.Condition()
        self._stats = Stats()
        self._unfinished = 0  # queued and not yet delivered, rejected or failed
        self._flush = threading.Event()
        self._stop = threading.Event()
        self._give_up_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="weir-client-sender", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> Stats:
        with self._lock:
            return self._stats

    def put(self, event: dict[str, Any]) -> bool:
        """Queue an event; False (counted, logged) when the queue is full or the client closed."""
        if self._stop.is_set():
            self._count(dropped=1)
            log.warning("weir client closed: event dropped")
            return False
        with self._lock:
            self._unfinished += 1
        try:
            self._queue.put_nowait((time.monotonic(), event))
        except queue.Full:
            dropped = self._count(dropped=1, finished=1).dropped
            if dropped == 1 or dropped % 1000 == 0:  # a warning, not one per event of a flood
                log.warning(
                    "weir client queue full (%d events): %d events dropped so far",
                    self.options.max_queue,
                    dropped,
                )
            return False
        self._count(queued=1)
        return True

    def flush(self, timeout: float | None) -> bool:
        """Send everything queued now; True once all of it was delivered or refused."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._flush.set()
        with self._lock:
            while self._unfinished:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def close(self, timeout: float) -> None:
        """Flush for at most `timeout` seconds, then stop; what is left is counted as failed."""
        if self._stop.is_set():
            return
        self._give_up_at = time.monotonic() + timeout
        self._flush.set()
        self._stop.set()
        self._thread.join(timeout + self.options.timeout)
        left = self.stats
        unsent = left.queued - left.delivered - left.rejected - left.failed
        if unsent > 0:
            self._count(failed=unsent, finished=unsent)
            log.warning("weir client closed with %d events unsent", unsent)
        self._http.close()

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._collect()
            if batch:
                self._deliver(batch)
            elif self._stop.is_set():
                return

    def _collect(self) -> list[dict[str, Any]]:
        """The next batch: up to `batch_size` events / `batch_bytes`, sent when full, when its
        oldest event is `flush_interval` old, or at once on flush() and close()."""
        options = self.options
        try:
            enqueued, first = self._queue.get(timeout=0.1)
        except queue.Empty:
            if self._queue.empty():
                self._flush.clear()
            return []
        batch, size = [first], wire.encoded_size(first)
        deadline = enqueued + options.flush_interval
        while len(batch) < options.batch_size:
            urgent = self._flush.is_set() or self._stop.is_set()
            left = 0.0 if urgent else deadline - time.monotonic()
            try:
                _, event = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            size += wire.encoded_size(event)
            batch.append(event)
            if size >= options.batch_bytes:
                break
        return batch

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            if self._give_up_at is not None and time.monotonic() >= self._give_up_at:
                log.warning("weir client closed: %d events not sent", len(batch))
                self._count(failed=len(batch), finished=len(batch))
                return
            outcome = self._attempt(batch)
            if outcome.delivered or (not outcome.retry and not outcome.split):
                if outcome.rejected:
                    log.warning("weir refused %d events: %s", outcome.rejected, outcome.error)
                self._count(
                    delivered=outcome.accepted,
                    rejected=outcome.rejected,
                    batches=1,
                    finished=len(batch),
                )
                return
            if outcome.split:
                half = len(batch) // 2
                self._deliver(batch[:half])
                self._deliver(batch[half:])
                return
            delay = outcome.delay
            if delay is None:
                delay = wire.backoff(attempt, self.options.backoff_base, self.options.backoff_max)
            if self._give_up_at is not None:
                delay = max(0.0, min(delay, self._give_up_at - time.monotonic()))
            self._count(retries=1)
            attempt += 1
            log.info("weir batch not delivered (%s), retrying in %.2f s", outcome.error, delay)
            if self._give_up_at is None:
                self._stop.wait(delay)  # close() interrupts the wait and sets the deadline
            else:
                time.sleep(delay)

    def _attempt(self, batch: list[dict[str, Any]]) -> wire.Outcome:
        body, headers = wire.batch_body(batch, self.options.compress, int(time.time()))
        try:
            response = self._http.post(wire.BATCH_PATH, content=body, headers=headers)
        except httpx.TransportError as error:
            return wire.Outcome(retry=True, error=f"{type(error).__name__}: {error}")
        return wire.classify(
            response.status_code, dict(response.headers), response.content, len(batch)
        )

    def _count(self, finished: int = 0, **counts: int) -> Stats:
        with self._lock:
            self._stats = replace(
                self._stats,
                **{name: getattr(self._stats, name) + n for name, n in counts.items()},
            )
            if finished:
                self._unfinished -= finished
                if self._unfinished == 0:
                    self._lock.notify_all()
            return self._stats
