"""Shared pieces of the benchmark scripts: a throwaway Kafka broker, event payloads, statistics.

Not a test harness: the scripts print numbers and write JSON under bench-results/.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from weir.core.config import Settings, StreamBackend
from weir.stream import TopicAdmin

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = REPO_ROOT / "scripts" / "kafka.sh"
CHANNELS = ("web", "mobile", "api", "email", "push")
NAMES = ("signup", "purchase", "click", "view")
CORES_NOTE = (
    f"machine: {os.cpu_count()} cores shared by the load generator, the weir process(es) "
    "and the Kafka broker (all on loopback); figures are a floor, not a capacity plan"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def kafka_broker(data_dir: Path) -> Iterator[tuple[str, int | None]]:
    """A single-node broker on free ports (scripts/kafka.sh); yields (bootstrap, broker pid).

    Stopped at the end through `kafka.sh stop` with the same env, i.e. by its own pid file.
    """
    port = free_port()
    env = os.environ | {
        "WEIR_KAFKA_PORT": str(port),
        "WEIR_KAFKA_CONTROLLER_PORT": str(free_port()),
        "WEIR_KAFKA_DATA_DIR": str(data_dir),
    }

    def run(command: str, timeout: float) -> None:
        done = subprocess.run(
            [str(KAFKA_SCRIPT), command], env=env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} failed:\n{done.stdout}\n{done.stderr}")

    try:
        run("start", timeout=180)
        pid_file = data_dir / "kafka.pid"
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        yield f"127.0.0.1:{port}", pid
    finally:
        run("stop", timeout=60)


def kafka_settings(bootstrap: str, **update: Any) -> Settings:
    return Settings(
        stream_backend=StreamBackend.KAFKA,
        kafka_bootstrap_servers=bootstrap,
        kafka_auto_offset_reset="earliest",
        **update,
    )


async def create_topic(settings: Settings, name: str, partitions: int) -> None:
    async with TopicAdmin(settings) as admin:
        await admin.ensure_topic(name, partitions, replication_factor=1)


def event_payload(index: int, now: int, rng: random.Random) -> dict[str, Any]:
    """A realistic client event; `index` in metadata keeps every event id (digest) unique."""
    return {
        "event_name": rng.choice(NAMES),
        "channel": rng.choice(CHANNELS),
        "campaign_id": f"c{index % 17}" if index % 3 else None,
        "user_id": f"user-{rng.randint(0, 50_000)}",
        "timestamp": now - rng.randint(0, 6 * 86400),
        "tags": ["bench", f"t{index % 5}"],
        "metadata": {"i": index, "plan": "pro"},
    }


def percentile(sorted_samples: list[float], fraction: float) -> float:
    if not sorted_samples:
        return 0.0
    return sorted_samples[min(len(sorted_samples) - 1, int(len(sorted_samples) * fraction))]


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU of another process, from /proc (0 when unknown or gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime/stime are fields 14/15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of its live descendants (e.g. uvicorn workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += process_cpu_seconds(current)
        todo += children.get(current, [])
    return total


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **report}
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


@contextmanager
def baseline_worktree(ref: str | None, work: Path) -> Iterator[Path | None]:
    """A detached worktree of `ref` under `work` (None without a ref), removed afterwards."""
    if ref is None:
        yield None
        return
    tree = work / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), ref],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    try:
        yield tree
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)],
            cwd=REPO_ROOT,
            check=False,
            capture_output=True,
        )


def baseline_pythonpath(tree: Path) -> str:
    """PYTHONPATH that makes this venv import the baseline tree's packages instead of ours."""
    return f"{tree / 'services'}{os.pathsep}{tree / 'operator'}"


def compare_with_baseline(
    script: str,
    child_args: list[str],
    baseline: str,
    rounds: int,
    work: Path,
    columns: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """Run `script` as a child `rounds` times per target against one broker, the revision
    `baseline` (a worktree) and the working tree alternating, so the machine's noise hits both
    alike; print the median of each `(key, label, format)` column per target and their ratio.
    Returns the report: every run's JSON, the medians and the ratios."""
    import statistics
    import sys

    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "current": []}
    with (
        kafka_broker(work / "kafka") as (bootstrap, _pid),
        baseline_worktree(baseline, work) as tree,
    ):
        assert tree is not None
        for round_number in range(rounds):
            for target in runs:
                out = work / f"{target}-{round_number}.json"
                env = dict(os.environ)
                if target == "baseline":
                    env["PYTHONPATH"] = baseline_pythonpath(tree)
                command = [sys.executable, script, *child_args, "--bootstrap", bootstrap]
                subprocess.run(
                    [*command, "--out", str(out)], env=env, check=True, stdout=subprocess.DEVNULL
                )
                runs[target].append(json.loads(out.read_text()))
    keys = [key for key, _, _ in columns]
    medians = {
        target: {key: statistics.median(run[key] for run in done) for key in keys}
        for target, done in runs.items()
    }
    ratios = {key: medians["current"][key] / medians["baseline"][key] for key in keys}
    print(CORES_NOTE)
    print(f"{'target':10}" + "".join(f" {label:>14}" for _, label, _ in columns) + "   (medians)")
    for target, figures in medians.items():
        print(f"{target:10}" + "".join(f" {figures[k]:>14{fmt}}" for k, _, fmt in columns))
    print(f"{'ratio':10}" + "".join(f" {ratios[key]:>13.2f}x" for key in keys))
    return {"note": CORES_NOTE, "baseline_ref": baseline, "rounds": runs, "medians": medians,
            "ratios": ratios}  # fmt: skip
