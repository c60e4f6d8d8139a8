"""What the client sends and how it reads answers: pure functions, no I/O (unit-tested alone)."""

from __future__ import annotations

import gzip
import json
import random
import time
import uuid
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

BATCH_PATH = "/events/batch"
METRICS_PATH = "/metrics"
# The API's own limits are 1,000 events and 1 MiB per batch (WEIR_MAX_BATCH_*): stay under them.
DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCH_BYTES = 512 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class WeirError(Exception):
    """The API refused a request; `status` is its HTTP status, the message its `error`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def new_event(
    event_name: str,
    user_id: str,
    channel: str,
    timestamp: int | None,
    event_id: str | None,
    campaign_id: str | None,
    tags: list[str] | None,
    metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    """One event as the API takes it. The id is fixed here, once, so every retry of the event is
    the same event to the API and the consumer (which drop ids they already stored)."""
    event: dict[str, Any] = {
        "event_id": event_id or uuid.uuid4().hex,
        "event_name": event_name,
        "user_id": user_id,
        "channel": channel,
        "timestamp": int(time.time()) if timestamp is None else timestamp,
    }
    if campaign_id is not None:
        event["campaign_id"] = campaign_id
    if tags:
        event["tags"] = list(tags)
    if metadata:
        event["metadata"] = metadata
    return event


def encoded_size(event: dict[str, Any]) -> int:
    return len(json.dumps(event, separators=(",", ":")))


def batch_body(
    events: list[dict[str, Any]], compress: bool, sent_at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt to deliver `events`. `sent_at` (this machine's clock,
    stamped on every attempt) lets the API correct timestamps for this clock's error; it is not
    part of an event's identity, so a retry is still the same event."""
    if sent_at is not None:
        events = [event | {"sent_at": sent_at} for event in events]
    data = json.dumps(events, separators=(",", ":")).encode()
    headers = {"content-type": "application/json"}
    if compress:
        data = gzip.compress(data, compresslevel=5)
        headers["content-encoding"] = "gzip"
    return data, headers


def auth_headers(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


@dataclass(frozen=True)
class Outcome:
    """What to do after an attempt: `delivered` (with `accepted`/`rejected` counts), `retry`
    (after `delay` seconds when the server said so), `split` the batch (too large), or give up
    on it (`rejected` all: the server will never take it)."""

    delivered: bool = False
    retry: bool = False
    split: bool = False
    delay: float | None = None
    accepted: int = 0
    rejected: int = 0
    error: str = ""


def classify(status: int, headers: dict[str, str], body: bytes, size: int) -> Outcome:
    """Read the answer to a batch of `size` events."""
    if status in (202, 207):
        answer = _json(body)
        accepted = int(answer.get("accepted", size)) if isinstance(answer, dict) else size
        return Outcome(delivered=True, accepted=accepted, rejected=size - accepted)
    if status in RETRY_STATUSES:
        delay = retry_after(headers.get("retry-after"))
        return Outcome(retry=True, delay=delay, error=_error(body))
    if status == 413 and size > 1:
        return Outcome(split=True, error=_error(body))
    return Outcome(rejected=size, error=f"{status}: {_error(body)}")


def retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (AWS's), so clients that failed together spread out."""
    return random.uniform(0, min(cap, base * 2**attempt))


def metrics_params(
    event_name: str,
    from_ts: int | None,
    to_ts: int | None,
    group_by: str | None,
    channel: str | None,
) -> dict[str, str]:
    params = {"event_name": event_name}
    optional = {"from": from_ts, "to": to_ts, "group_by": group_by, "channel": channel}
    params.update({name: str(value) for name, value in optional.items() if value is not None})
    return params


def read_answer(status: int, body: bytes) -> dict[str, Any]:
    """A JSON object answer, or WeirError naming the refusal."""
    if status != 200:
        raise WeirError(status, _error(body))
    answer = _json(body)
    if not isinstance(answer, dict):
        raise WeirError(status, "answer is not a JSON object")
    return answer


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _error(body: bytes) -> str:
    answer = _json(body)
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return str(answer["error"])
    return body[:200].decode(errors="replace")
