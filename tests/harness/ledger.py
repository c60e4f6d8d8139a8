"""A ledger of every event the API acknowledged, and a steady sender that keeps it.

Used where faults are injected (tests/e2e/test_dev_kill.py, scripts/soak.py): each event carries
an `event_id` of its own, the sender records it as accepted only on a 202 (or an accepted item of
a 207), and a batch that got no answer (connection refused or reset, timeout, 503, 429) is sent
again with the same ids, as a real client does, until it is accepted. So at the end every event
sent is either accepted or, if the sender gave up, "in doubt" (it may or may not have been
written). `Ledger.verdict` compares that with what the store holds: lost (accepted, not stored),
doubled (stored more than once), unexpected (stored, never sent). The raw table is a
ReplacingMergeTree, so a merge can fold a second copy away while the rollups keep counting it:
compare `/metrics` with `expected_metrics` too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

CHANNELS = ("web", "mobile", "api", "email", "push")


@dataclass
class Verdict:
    accepted: int
    in_doubt: int
    stored: int
    lost: list[str]
    doubled: list[str]
    unexpected: list[str]
    in_doubt_stored: int

    @property
    def ok(self) -> bool:
        return not (self.lost or self.doubled or self.unexpected)

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "in_doubt": self.in_doubt,
            "in_doubt_stored": self.in_doubt_stored,
            "stored": self.stored,
            "lost": len(self.lost),
            "doubled": len(self.doubled),
            "unexpected": len(self.unexpected),
            "examples": {
                "lost": self.lost[:5],
                "doubled": self.doubled[:5],
                "unexpected": self.unexpected[:5],
            },
        }


@dataclass
class Ledger:
    """What the API answered, by event id; thread-safe."""

    event_name: str
    accepted: set[str] = field(default_factory=set)
    in_doubt: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)  # id -> error (a valid event: a bug)
    users: dict[str, str] = field(default_factory=dict)  # id -> user_id, for unique_users
    answers: dict[str, int] = field(default_factory=dict)  # "202", "503", "error", ...
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sent(self, events: list[dict[str, Any]]) -> None:
        with self._lock:
            for event in events:
                self.users[event["event_id"]] = event["user_id"]
                self.in_doubt.add(event["event_id"])

    def answered(self, what: str) -> None:
        with self._lock:
            self.answers[what] = self.answers.get(what, 0) + 1

    def settle(self, accepted: list[str], refused: dict[str, str]) -> None:
        with self._lock:
            for event_id in accepted:
                self.accepted.add(event_id)
                self.in_doubt.discard(event_id)
            for event_id, error in refused.items():
                self.refused[event_id] = error
                self.in_doubt.discard(event_id)

    def expected_metrics(self, stored: dict[str, int]) -> tuple[int, int]:
        """(total_events, unique_users) /metrics must answer for what is stored."""
        return len(stored), len({self.users[i] for i in stored if i in self.users})

    def verdict(self, stored: dict[str, int]) -> Verdict:
        with self._lock:
            return Verdict(
                accepted=len(self.accepted),
                in_doubt=len(self.in_doubt),
                stored=len(stored),
                lost=sorted(self.accepted - stored.keys()),
                doubled=sorted(i for i, n in stored.items() if n > 1),
                unexpected=sorted(stored.keys() - self.accepted - self.in_doubt),
                in_doubt_stored=len(self.in_doubt & stored.keys()),
            )


class Sender:
    """`workers` threads POSTing batches of fresh events to /events/batch at about `rate`
    events/s in all, one batch at a time each, each batch retried until it is answered. The
    stream goes on through faults: an API that is down only delays it."""

    def __init__(
        self,
        base_url: Callable[[], str] | str,
        ledger: Ledger,
        *,
        rate: float,
        batch: int = 20,
        workers: int = 1,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        users: int = 1000,
    ) -> None:
        self._base = base_url if callable(base_url) else (lambda: str(base_url))
        self.ledger = ledger
        self._interval = batch * workers / rate
        self._batch = batch
        self._headers = headers or {}
        self._timeout = timeout
        self._users = users
        self._stop = threading.Event()
        self._drain_deadline = float("inf")
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"ledger-sender-{n}", daemon=True)
            for n in range(workers)
        ]
        self.retries = 0

    def start(self) -> Sender:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, drain_seconds: float = 30.0) -> None:
        """Stop making new events; keep retrying unanswered batches for up to `drain_seconds`."""
        self._drain_deadline = time.monotonic() + drain_seconds
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=drain_seconds + self._timeout + 5)

    def _events(self, worker: int, first: int) -> list[dict[str, Any]]:
        now = int(time.time())
        name = self.ledger.event_name
        return [
            {
                "event_id": f"{name}-{worker}-{n:09d}",
                "event_name": name,
                "channel": CHANNELS[n % len(CHANNELS)],
                "user_id": f"user-{(n * 7919 + worker) % self._users}",
                "timestamp": now,
                "metadata": {"n": n},
            }
            for n in range(first, first + self._batch)
        ]

    def _run(self, worker: int) -> None:
        with httpx.Client(timeout=self._timeout, headers=self._headers) as http:
            n, next_at = 0, time.monotonic()
            while not self._stop.is_set():
                events = self._events(worker, n)
                n += self._batch
                self.ledger.sent(events)
                self._deliver(http, events)
                next_at += self._interval
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at, time.monotonic() - self._interval)  # no catch-up burst

    def _deliver(self, http: httpx.Client, events: list[dict[str, Any]]) -> None:
        """POST until every event is accepted or refused, or the drain deadline passes."""
        pending = events
        while pending and time.monotonic() < self._drain_deadline:
            try:
                response = http.post(f"{self._base()}/events/batch", json=pending)
            except httpx.HTTPError as error:
                self.ledger.answered(type(error).__name__)
                self._backoff()
                continue
            self.ledger.answered(str(response.status_code))
            if response.status_code not in (202, 207, 400):
                self._backoff(response.headers.get("retry-after"))
                continue
            results = response.json()["results"]
            accepted = [r["event_id"] for r in results if r["status"] == "accepted"]
            refused = {
                pending[r["index"]]["event_id"]: str(r.get("error"))
                for r in results
                if r["status"] != "accepted"
            }
            self.ledger.settle(accepted, refused)
            pending = []

    def _backoff(self, retry_after: str | None = None) -> None:
        self.retries += 1
        wait = 0.2
        if retry_after and retry_after.isdigit():
            wait = min(float(retry_after), 2.0)
        time.sleep(wait)
