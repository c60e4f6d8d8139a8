"""A steady trickle of events to one URL, each with its own `event_id`, kept in a ledger.

Run in the cluster's network namespace (`scripts/cluster.sh exec python tests/cluster/trickle.py`)
so that it reaches the api through its Service, as a client in the cluster would. Standard library
only. Every event is sent until it is answered 202 (the same `event_id`, so a retry can never count
twice); every attempt that was not a 202 is recorded, since a rolling update should cause none.
Stops when `--stop-file` exists, then writes a JSON summary to `--summary`.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path


def post(url: str, event: dict[str, object]) -> str | None:
    """None on 202, else what went wrong."""
    request = urllib.request.Request(
        url + "/events",
        data=json.dumps(event).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return None if response.status == 202 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except OSError as error:
        return type(error).__name__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--event-name", required=True)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--ledger", type=Path, required=True, help="one accepted event_id a line")
    parser.add_argument("--stop-file", type=Path, required=True)
    parser.add_argument("--summary", type=Path, required=True)
    args = parser.parse_args()

    failures: list[dict[str, object]] = []
    accepted = 0
    slowest = 0.0
    with args.ledger.open("w") as ledger:
        while not args.stop_file.exists():
            event = {
                "event_id": uuid.uuid4().hex,
                "event_name": args.event_name,
                "channel": "api",
                "user_id": f"user-{accepted % 50}",
                "timestamp": int(time.time()),
            }
            while True:
                started = time.monotonic()
                problem = post(args.url, event)
                slowest = max(slowest, time.monotonic() - started)
                if problem is None:
                    break
                failures.append({"at": time.time(), "problem": problem})
                time.sleep(0.2)
            ledger.write(f"{event['event_id']}\n")
            ledger.flush()
            accepted += 1
            time.sleep(1 / args.rate)
    summary = {"accepted": accepted, "failures": failures, "slowest_seconds": slowest}
    args.summary.write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
