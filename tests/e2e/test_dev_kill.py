"""`weir dev` under `kill -9` mid-stream: every event that got a 202 is counted exactly once.

A steady stream of batches with an event id each (tests/harness/ledger.py) runs through three
SIGKILLs of the one `weir dev` process and the restarts after them. At the end the raw table
holds each accepted id once and nothing else, and `/metrics` counts exactly those.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

from tests.e2e.processes import REPO_ROOT, dev_settings, get_json, start_weir, wait_until_up
from tests.harness.ledger import Ledger, Sender
from weir.core.config import Settings

CYCLES = 3
# Run in a child once `weir dev` is gone: chDB opens a data path in one process at a time.
STORED_IDS = """
import asyncio, sys
import orjson
from pathlib import Path
from weir.store.chdb import ChdbStore

async def main() -> None:
    store = ChdbStore(Path(sys.argv[1]))
    rows = await store.query_rows(
        f"SELECT event_id, count() FROM {sys.argv[2]} WHERE event_name = {{name:String}}"
        " GROUP BY event_id",
        {"name": sys.argv[3]},
    )
    await store.close()
    sys.stdout.buffer.write(orjson.dumps(dict(rows)))

asyncio.run(main())
"""


def stored_ids(settings: Settings, event_name: str) -> dict[str, int]:
    """event_id -> rows in the raw table (no FINAL: a second copy would show as 2)."""
    table = f"{settings.clickhouse_database}.{settings.table}"
    done = subprocess.run(
        [sys.executable, "-c", STORED_IDS, str(settings.data_dir / "chdb"), table, event_name],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    counts: dict[str, int] = orjson.loads(done.stdout)
    return counts


def test_dev_counts_every_accepted_event_once_through_kill_9(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path / "data")
    port = settings.port
    base = f"http://127.0.0.1:{port}"
    ledger = Ledger(event_name=f"kill9-{uuid.uuid4().hex[:8]}")
    metrics_url = f"{base}/metrics?event_name={ledger.event_name}"
    sender = Sender(base, ledger, rate=400, batch=20)
    log = tmp_path / "dev.log"
    dev = start_weir("dev", settings, log)
    try:
        wait_until_up(f"{base}/health", dev)
        sender.start()
        for cycle in range(CYCLES):
            # Mid-stream: batches in flight, accepted events not yet consumed (1 s batches).
            target = len(ledger.accepted) + 600
            deadline = time.monotonic() + 20
            while len(ledger.accepted) < target and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(ledger.accepted) >= target, f"cycle {cycle}: the stream stalled"
            dev.send_signal(signal.SIGKILL)
            assert dev.wait(timeout=10) == -signal.SIGKILL
            dev = start_weir("dev", settings, log)
            wait_until_up(f"{base}/health", dev)
        time.sleep(1)  # the stream goes on against the last process
        sender.stop(drain_seconds=20)
        assert not ledger.in_doubt and not ledger.refused, (ledger.answers, ledger.refused)
        # The sender saw the kills: answers that never came (reset or refused connections).
        assert set(ledger.answers) - {"202"}, ledger.answers
        deadline = time.monotonic() + 30
        while get_json(metrics_url)["total_events"] != len(ledger.accepted):
            assert time.monotonic() < deadline, (get_json(metrics_url), len(ledger.accepted))
            time.sleep(0.3)
        metrics = get_json(metrics_url)
    finally:
        sender.stop(drain_seconds=0)
        dev.send_signal(signal.SIGTERM)
        code = dev.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]
    stored = stored_ids(settings, ledger.event_name)
    verdict = ledger.verdict(stored)
    assert verdict.ok, verdict.summary()
    assert verdict.accepted == verdict.stored >= CYCLES * 600
    assert (metrics["total_events"], metrics["unique_users"]) == ledger.expected_metrics(stored)
