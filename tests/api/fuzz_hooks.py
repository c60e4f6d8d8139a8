"""schemathesis hooks for tests/api/test_fuzz.py (loaded by the schemathesis process through
SCHEMATHESIS_HOOKS; settings come from WEIR_FUZZ_* variables).

- Keys: a write key on the ingestion routes (POST), a read key on the others, sent as
  schemathesis's auth so that its `ignored_auth` check still tries requests without them.
- Three rules of the API that JSON Schema cannot state, so the document says them in words, and
  generated requests are kept to them (leaving every other part of a request as generated):
  `from` not after `to` (two parameters), the device-clock correction by `sent_at`/`sentAt` (two
  fields), and the timestamp window on Segment's ISO-8601 strings. A well-formed `sent_at` is
  dropped (its own type and range are still fuzzed when malformed), a well-formed Segment
  `timestamp` is set to the server's (frozen) time, and `from`/`to` are put in order.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from typing import Any

import schemathesis

from weir.api.segment import DATE_TIME

NOW = int(os.environ.get("WEIR_FUZZ_NOW", "0"))
_RFC3339 = re.compile(DATE_TIME)


@schemathesis.auth().apply_to(method=["GET", "DELETE"])  # /metrics and the admin routes
class ReadKey:
    def get(self, case: schemathesis.Case[Any], context: Any) -> str:
        return os.environ["WEIR_FUZZ_READ_KEY"]

    def set(self, case: schemathesis.Case[Any], data: str, context: Any) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.auth().apply_to(method="POST")  # the ingestion routes
class WriteKey:
    def get(self, case: schemathesis.Case[Any], context: Any) -> str:
        return os.environ["WEIR_FUZZ_WRITE_KEY"]

    def set(self, case: schemathesis.Case[Any], data: str, context: Any) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case[Any]) -> Any:
    """In every phase (coverage included, which runs no per-part hooks)."""
    path, query, body = case.operation.path, case.query, case.body
    if path == "/metrics" and isinstance(query, dict):
        start, end = _integer(query.get("from")), _integer(query.get("to"))
        if start is not None and end is not None and start > end:
            query["from"], query["to"] = query["to"], query["from"]
    elif path in ("/events", "/events/batch"):
        for event in body if isinstance(body, list) else [body]:
            if isinstance(event, dict) and _unix(event.get("sent_at")):
                del event["sent_at"]
    elif path == "/v1/track":
        _segment(body)
    elif path == "/v1/batch" and isinstance(body, dict):
        if _datetime(body.get("sentAt")):
            del body["sentAt"]
        messages = body.get("batch")
        for message in messages if isinstance(messages, list) else []:
            _segment(message)
    return case


def _segment(message: Any) -> None:
    if not isinstance(message, dict):
        return
    if _datetime(message.get("sentAt")):
        del message["sentAt"]
    if _datetime(message.get("timestamp")):
        message["timestamp"] = datetime.fromtimestamp(NOW, UTC).isoformat()


def _unix(value: object) -> bool:
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return whole and not isinstance(value, bool) and value > 0  # type: ignore[operator]


def _datetime(value: object) -> bool:
    """Well-formed by the pattern and a real moment (no 31 February): what the format means."""
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _integer(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    return None
