"""Fault soak: nothing accepted is lost or counted twice while the pipeline is hurt on purpose.

A benchmark-like script, not a test. It starts a real Kafka broker (scripts/kafka.sh), the chDB
HTTP shim standing in for ClickHouse (tests/harness/chdb_http.py; no server package exists
here), `weir migrate`, `weir api` and two `weir consumer` processes in one group, and sends a
steady load of batches, each event with an id of its own, keeping a ledger of every id that got
a 202 (tests/harness/ledger.py; unanswered batches are resent with the same ids, as a client
does). Meanwhile, on a schedule spread over the run, it

- SIGKILLs a consumer `--faults` times (default 20), each restarted a second later;
- restarts the broker once (`kafka.sh stop` + `start`, same port and data);
- stops the ClickHouse stand-in for `--clickhouse-outage` seconds (default 60) and starts it again;
- forces rebalances: a third consumer joins the group and leaves again, `--rebalances` times.

A process that dies unplanned (e.g. a consumer giving up on the store) is restarted, as a
Deployment would, and counted. After the load stops it waits for the group's lag to reach 0 and
`/metrics` to count every accepted event, then compares the ledger with the raw table (each id's
row count, no FINAL) and with `/metrics`: lost, doubled and unexpected must all be 0. Prints a
table, writes JSON to bench-results/soak.json; exit status 1 when anything was lost or doubled.

    flock /tmp/weir-bench.lock .venv/bin/python scripts/soak.py          # the full soak (~15 min)
    .venv/bin/python scripts/soak.py --faults 2 --duration 60 --clickhouse-outage 10 --rebalances 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # tests.harness: the broker and the ledger the tests use

import httpx  # noqa: E402
from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402
from bench_common import CORES_NOTE, free_port, write_report  # noqa: E402

from tests.harness.kafka import KafkaBroker  # noqa: E402
from tests.harness.ledger import Ledger, Sender  # noqa: E402
from weir.core.config import Settings, StoreBackend, StreamBackend  # noqa: E402
from weir.store import make_store  # noqa: E402


class Child:
    """One child process, restartable with the same command, env and log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self._argv, self._env, self._log = name, argv, env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.planned_down = False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, size: int = 4000) -> list[str]:
        with self._log.open("rb") as log:
            log.seek(max(0, self._log.stat().st_size - size))
            return log.read().decode(errors="replace").splitlines()

    def start(self) -> None:
        with self._log.open("ab") as out:
            self.process = subprocess.Popen(
                self._argv, env=self._env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        self.planned_down = False

    def kill(self) -> None:
        self.planned_down = True
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, grace: float = 30) -> None:
        self.planned_down = True
        if not self.alive:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()


def weir(name: str, command: str, env: dict[str, str], work: Path) -> Child:
    return Child(name, [sys.executable, "-m", "weir.cli", command], env, work / f"{name}.log")


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(0.2)


class Shim(Child):
    """The ClickHouse stand-in on a fixed port and data dir, so it can go away and come back."""

    def __init__(self, port: int, data_dir: Path, work: Path) -> None:
        argv = [sys.executable, "-m", "tests.harness.chdb_http", "--port", str(port)]
        super().__init__(
            "clickhouse",
            [*argv, "--data-dir", str(data_dir)],
            dict(os.environ),
            work / "clickhouse.log",
        )
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        super().start()
        wait_for(lambda: httpx.get(f"{self.url}/ping", timeout=1).text == "Ok.\n", 60, "shim up")


class LagMonitor(threading.Thread):
    """Polls the group's lag (end offsets minus committed offsets) from the broker once a second;
    independent of which consumers are alive. Errors (the broker restarting) are skipped."""

    def __init__(self, bootstrap: str, topic: str, group: str, partitions: int) -> None:
        super().__init__(name="lag-monitor", daemon=True)
        self._servers, self._group = bootstrap, group
        self._partitions = [TopicPartition(topic, p) for p in range(partitions)]
        self._closing = threading.Event()
        self.latest: int | None = None
        self.max = 0
        self.errors = 0

    def run(self) -> None:
        asyncio.run(self._poll())

    def close(self) -> None:
        self._closing.set()
        if self.is_alive():
            self.join(timeout=30)

    async def _poll(self) -> None:
        while not self._closing.is_set():
            admin = AIOKafkaAdminClient(bootstrap_servers=self._servers)
            consumer = AIOKafkaConsumer(bootstrap_servers=self._servers)
            try:
                await admin.start()
                await consumer.start()
                while not self._closing.is_set():
                    # Bounded: a request to a broker that restarted can otherwise wait forever,
                    # leaving `latest` stale (a full soak once timed out its drain on that).
                    committed = await asyncio.wait_for(
                        admin.list_consumer_group_offsets(self._group), 10
                    )
                    ends = await asyncio.wait_for(consumer.end_offsets(self._partitions), 10)
                    lag = 0
                    for tp in self._partitions:
                        done = committed.get(tp)
                        lag += ends[tp] - (done.offset if done and done.offset >= 0 else 0)
                    self.latest, self.max = lag, max(self.max, lag)
                    await asyncio.sleep(1)
            except Exception:
                self.errors += 1
                self.latest = None
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                with contextlib.suppress(Exception):
                    await admin.close()


def plan(args: argparse.Namespace) -> list[tuple[float, str]]:
    """(seconds into the load, action), sorted. Kills spread over 5-90 % of the run; the broker
    restart, the ClickHouse outage and the rebalances at fixed fractions between them."""
    d = args.duration
    steps = [
        (d * (0.05 + 0.85 * (i + 0.5) / args.faults), "kill-consumer") for i in range(args.faults)
    ]
    steps.append((d * 0.30, "restart-broker"))
    steps += [(d * 0.50, "clickhouse-down"), (d * 0.50 + args.clickhouse_outage, "clickhouse-up")]
    for i in range(args.rebalances):
        at = d * (0.15 + 0.7 * (i + 0.5) / args.rebalances)
        steps += [(at, "consumer-join"), (at + args.rebalance_hold, "consumer-leave")]
    return sorted(steps)


def soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    broker = KafkaBroker(free_port(), free_port(), work / "kafka")
    shim = Shim(free_port(), work / "chdb", work)
    api_port = free_port()
    group, topic = f"soak-{run}", f"soak-{run}"
    env = os.environ | {
        "WEIR_STREAM_BACKEND": "kafka",
        "WEIR_STORE_BACKEND": "clickhouse",
        "WEIR_CLICKHOUSE_URL": shim.url,
        "WEIR_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "WEIR_KAFKA_TOPIC": topic,
        "WEIR_KAFKA_DLQ_TOPIC": f"{topic}.dlq",
        "WEIR_KAFKA_TOPIC_PARTITIONS": str(args.partitions),
        "WEIR_KAFKA_TOPIC_REPLICATION_FACTOR": "1",
        "WEIR_KAFKA_CONSUMER_GROUP": group,
        "WEIR_PORT": str(api_port),
        "WEIR_METRICS_PORT": "0",
        "WEIR_LOG_FORMAT": "json",  # the fields of a warning (the error, the batch) are kept
    }
    api = weir("api", "api", env, work)
    # Each stored batch logged (token, counts, offsets committed): what a loss is traced with.
    consumer_env = env | {"WEIR_LOG_LEVEL": "DEBUG"}
    consumers = [weir(f"consumer-{n}", "consumer", consumer_env, work) for n in (1, 2)]
    third = weir("consumer-3", "consumer", consumer_env, work)
    children = [api, *consumers, third]
    base = f"http://127.0.0.1:{api_port}"
    ledger = Ledger(event_name=f"soak-{run}")
    faults = {"consumer_kills": 0, "broker_restarts": 0, "clickhouse_outages": 0, "rebalances": 0}
    unplanned: dict[str, int] = {}
    lag = LagMonitor(broker.bootstrap_servers, topic, group, args.partitions)
    broker.start()
    try:
        shim.start()
        migrate = [sys.executable, "-m", "weir.cli", "migrate"]
        subprocess.run(migrate, env=env, cwd=REPO_ROOT, check=True, capture_output=True)
        for child in (api, *consumers):
            child.start()
        wait_for(lambda: httpx.get(f"{base}/health", timeout=1).status_code == 200, 90, "api up")
        lag.start()
        sender = Sender(base, ledger, rate=args.rate, batch=args.batch, workers=args.senders)
        sender.start()
        started = time.monotonic()
        kills = 0
        for at, action in plan(args):
            while time.monotonic() - started < at:
                supervise(children, unplanned)
                time.sleep(0.2)
            print(f"{time.monotonic() - started:7.1f}s  {action}", flush=True)
            if action == "kill-consumer":
                victim = consumers[kills % len(consumers)]
                kills += 1
                victim.kill()
                time.sleep(1)  # a crash-looping pod's restart, quick
                victim.start()
                faults["consumer_kills"] += 1
            elif action == "restart-broker":
                broker.stop()
                broker.start()
                faults["broker_restarts"] += 1
            elif action == "clickhouse-down":
                shim.stop(grace=5)
                faults["clickhouse_outages"] += 1
            elif action == "clickhouse-up":
                shim.start()
            elif action == "consumer-join":
                third.start()
                faults["rebalances"] += 1
            elif action == "consumer-leave":
                third.stop()
                faults["rebalances"] += 1
        while time.monotonic() - started < args.duration:
            supervise(children, unplanned)
            time.sleep(0.2)
        load_seconds = time.monotonic() - started
        load_end = time.monotonic()
        sender.stop(drain_seconds=120)
        accepted = len(ledger.accepted)

        def drained() -> bool:
            supervise(children, unplanned)
            total = httpx.get(f"{base}/metrics", params={"event_name": ledger.event_name}).json()
            return lag.latest == 0 and int(total["total_events"]) >= accepted

        drain_timed_out = False
        try:
            wait_for(drained, args.drain_timeout, "lag 0 and every accepted event counted")
        except TimeoutError as error:
            # Not raised: what was lost, and where in the topic, is what the run is for.
            drain_timed_out = True
            print(f"{error}: lag {lag.latest} ({lag.errors} monitor errors)", file=sys.stderr)
        drain_seconds = time.monotonic() - load_end
        metrics = httpx.get(f"{base}/metrics", params={"event_name": ledger.event_name}).json()
        stored = asyncio.run(stored_ids(env, ledger.event_name))
        missing = ledger.accepted - stored.keys()
        lost_offsets = {}
        if missing:
            located = locate(broker.bootstrap_servers, topic, args.partitions, missing)
            lost_offsets = asyncio.run(located)
    finally:
        # Every step, even when one fails: nothing of the run may outlive it.
        for step in [lag.close, *(c.stop for c in reversed(children)), shim.stop, broker.stop]:
            try:
                step()
            except Exception as error:
                print(f"cleanup: {error!r}", file=sys.stderr)
    verdict = ledger.verdict(stored)
    want_total, want_users = ledger.expected_metrics(stored)
    return {
        "faults": faults,
        "faults_injected": sum(faults.values()),
        "unplanned_restarts": unplanned,
        "load_seconds": round(load_seconds, 1),
        "rate_target": args.rate,
        "partitions": args.partitions,
        "clickhouse_outage_seconds": args.clickhouse_outage,
        **verdict.summary(),
        # The raw table is a ReplacingMergeTree: a merge folds a second copy away, the rollups
        # keep counting it. So /metrics over the distinct stored ids is the doubling that shows.
        "doubled_metrics": int(metrics["total_events"]) - want_total,
        "metrics_total_events": metrics["total_events"],
        "metrics_unique_users": metrics["unique_users"],
        "metrics_exact": (metrics["total_events"], metrics["unique_users"])
        == (want_total, want_users),
        # Where the lost events are in the topic, as runs of offsets per partition: the
        # consumer logs name the batch (token, offsets committed) that covered each run.
        "lost_offsets": lost_offsets,
        "max_lag": lag.max,
        "drain_seconds": round(drain_seconds, 1),
        "drain_timed_out": drain_timed_out,
        "answers": ledger.answers,
        "sender_retries": sender.retries,
        "ok": verdict.ok
        and not drain_timed_out
        and (metrics["total_events"], metrics["unique_users"]) == (want_total, want_users),
    }


def supervise(children: list[Child], unplanned: dict[str, int]) -> None:
    """Restart what died without being told to (what a Deployment's restart would do)."""
    for child in children:
        if child.process is not None and not child.alive and not child.planned_down:
            unplanned[child.name] = unplanned.get(child.name, 0) + 1
            lines = [line for line in child.log_tail() if line.strip()]
            last = lines[-1][:200] if lines else ""
            print(f"         {child.name} exited ({child.process.returncode}): restarted; {last}")
            child.start()


async def stored_ids(env: dict[str, str], event_name: str) -> dict[str, int]:
    """event_id -> rows in the raw table, read through the store's own HTTP client."""
    settings = Settings(
        store_backend=StoreBackend.CLICKHOUSE,
        stream_backend=StreamBackend.KAFKA,
        clickhouse_url=env["WEIR_CLICKHOUSE_URL"],
    )
    store = make_store(settings)
    try:
        rows = await store.query_rows(
            f"SELECT event_id, count() FROM {settings.clickhouse_database}.{settings.table}"
            " WHERE event_name = {name:String} GROUP BY event_id",
            {"name": event_name},
        )
    finally:
        await store.close()
    return {str(event_id): int(count) for event_id, count in rows}


async def locate(
    bootstrap: str, topic: str, partitions: int, ids: set[str]
) -> dict[str, list[list[int]]]:
    """Partition -> [first, last] offset runs of the records keyed by one of `ids`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        found: dict[int, list[int]] = {}
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    if record.key is not None and record.key.decode() in ids:
                        found.setdefault(tp.partition, []).append(record.offset)
    finally:
        await consumer.stop()
    runs: dict[str, list[list[int]]] = {}
    for partition, offsets in sorted(found.items()):
        for offset in sorted(offsets):
            spans = runs.setdefault(str(partition), [])
            if spans and spans[-1][1] == offset - 1:
                spans[-1][1] = offset
            else:
                spans.append([offset, offset])
    return runs


def print_table(report: dict[str, Any]) -> None:
    print(CORES_NOTE)
    faults = report["faults"]
    breakdown = (
        f"{faults['consumer_kills']} consumer kills, {faults['broker_restarts']} broker restart, "
        f"{faults['clickhouse_outages']} ClickHouse outage "
        f"of {report['clickhouse_outage_seconds']} s, "
        f"{faults['rebalances']} forced rebalances"
    )
    rows = [
        ("faults injected", f"{report['faults_injected']} ({breakdown})"),
        ("unplanned restarts", str(report["unplanned_restarts"] or 0)),
        ("events accepted (202)", f"{report['accepted']:,} in {report['load_seconds']} s"),
        ("lost", str(report["lost"])),
        ("doubled (raw rows, before merges)", str(report["doubled"])),
        ("doubled (/metrics over stored ids)", str(report["doubled_metrics"])),
        ("unexpected (never sent)", str(report["unexpected"])),
        ("in doubt at the end", f"{report['in_doubt']} ({report['in_doubt_stored']} stored)"),
        (
            "/metrics total (exact?)",
            f"{report['metrics_total_events']:,} "
            f"({'exact' if report['metrics_exact'] else 'WRONG'})",
        ),
        ("max lag (events)", f"{report['max_lag']:,}"),
        (
            "time to drain",
            f"{report['drain_seconds']} s" + (" (timed out)" if report["drain_timed_out"] else ""),
        ),
    ]
    if report["lost_offsets"]:
        runs = "; ".join(
            f"p{partition} " + ", ".join(f"{a}-{b}" for a, b in spans)
            for partition, spans in report["lost_offsets"].items()
        )
        rows.append(("lost, by offset", runs))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def main() -> int:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the lag monitor's reconnects
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", type=int, default=20, help="consumer SIGKILLs")
    parser.add_argument("--duration", type=float, default=900, help="seconds of load")
    parser.add_argument("--rate", type=float, default=500, help="events per second offered")
    parser.add_argument("--batch", type=int, default=50, help="events per POST /events/batch")
    parser.add_argument("--senders", type=int, default=2, help="sending threads")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--clickhouse-outage", type=float, default=60, help="seconds")
    parser.add_argument("--rebalances", type=int, default=3, help="third-consumer join+leave")
    parser.add_argument("--rebalance-hold", type=float, default=15, help="seconds it stays")
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/soak.json"))
    args = parser.parse_args()
    if args.faults < 1 or args.rebalances < 0 or args.duration <= args.clickhouse_outage:
        parser.error("need --faults >= 1, --rebalances >= 0, --duration > --clickhouse-outage")
    work = Path(tempfile.mkdtemp(prefix="weir-soak-"))
    try:
        report = soak(args, work)
    except BaseException:
        print(f"soak failed; logs and data kept in {work}", file=sys.stderr)
        raise
    print_table(report)
    write_report(
        args.out, {"note": CORES_NOTE, "args": vars(args) | {"out": str(args.out)}, **report}
    )
    if args.keep or not report["ok"]:
        print(f"logs and data kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
