"""CPU load on the api: a few connections posting batches through one URL, bounded in time.

Run in the cluster's network namespace (`scripts/cluster.sh exec python batch_load.py ...`) so
that it reaches the api through its Service. Standard library only. Each connection posts
`--batch` events per request (`POST /events/batch`, keep-alive) until `--stop-file` exists,
`--max-seconds` have passed or (with `--total-events`) its share of that many events is accepted;
then a JSON summary goes to `--summary`: requests answered 202, events accepted, and every other
answer counted by what it was.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from pathlib import Path


def batch_body(event_name: str, size: int, offset: int) -> bytes:
    now = int(time.time())
    # Each its own event_id: without one the api derives it from the content, and events alike
    # (same user, same second) are one event.
    events = [
        {
            "event_id": uuid.uuid4().hex,
            "event_name": event_name,
            "channel": "api",
            "user_id": f"user-{(offset + index) % 500}",
            "timestamp": now,
        }
        for index in range(size)
    ]
    return json.dumps(events).encode()


def post_loop(
    url: urllib.parse.SplitResult, args: argparse.Namespace, deadline: float, counts: Counter[str]
) -> None:
    connection = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=10)
    headers = {"content-type": "application/json"}
    sent = 0
    share = args.total_events // args.connections if args.total_events else None
    while time.monotonic() < deadline and not args.stop_file.exists():
        if share is not None and counts["events accepted"] >= share:
            break
        body = batch_body(args.event_name, args.batch, sent)
        try:
            connection.request("POST", "/events/batch", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            outcome = f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as error:
            outcome = type(error).__name__
            connection.close()
            time.sleep(0.2)
        counts[outcome] += 1
        if outcome == "HTTP 202":
            counts["events accepted"] += args.batch
        sent += args.batch
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--event-name", required=True)
    parser.add_argument("--batch", type=int, default=200, help="events per request")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=240)
    parser.add_argument(
        "--total-events", type=int, default=0, help="stop once this many are accepted (0: no cap)"
    )
    parser.add_argument("--stop-file", type=Path, required=True)
    parser.add_argument("--summary", type=Path, required=True)
    args = parser.parse_args()

    url = urllib.parse.urlsplit(args.url)
    deadline = time.monotonic() + args.max_seconds
    # One counter a connection: no two threads update the same one.
    totals: list[Counter[str]] = [Counter() for _ in range(args.connections)]
    threads = [
        threading.Thread(target=post_loop, args=(url, args, deadline, counts), daemon=True)
        for counts in totals
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    args.summary.write_text(json.dumps(dict(sum(totals, Counter()))))


if __name__ == "__main__":
    main()
