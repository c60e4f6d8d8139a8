"""Random events as column-oriented data in `INSERT_COLUMNS` order, plus brute-force metrics."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from weir.store import (
    INSERT_COLUMNS,
    GroupBy,
    GroupRow,
    MetricsQuery,
    Store,
    TableSpec,
    Totals,
    UserIds,
)

CHANNELS = ("web", "ios", "android", "email")
NAMES = ("click", "view")


@dataclass(frozen=True)
class Ev:
    event_id: str
    event_name: str
    channel: str
    campaign_id: str
    user_id: str
    timestamp: int
    plan: str


def random_events(rng: random.Random, n: int, start: int, span: int) -> list[Ev]:
    return [
        Ev(
            event_id=f"ev-{rng.getrandbits(64):016x}",
            event_name=rng.choice(NAMES),
            channel=rng.choice(CHANNELS),
            campaign_id=rng.choice(["", "c1", "c2"]),
            user_id=f"u{rng.randrange(60)}",
            timestamp=start + rng.randrange(span),
            plan=rng.choice(["free", "pro"]),
        )
        for _ in range(n)
    ]


async def columns(store: Store, spec: TableSpec, events: list[Ev]) -> list[list[Any]]:
    """The rows as the consumer inserts them, with dense user ids claimed through `UserIds`."""
    uids = await UserIds(store, spec).uids([e.user_id for e in events])
    received = datetime.now(UTC)
    rows = [
        [
            e.event_id, e.event_name, e.channel, e.campaign_id, e.user_id, uid, e.timestamp,
            e.timestamp - 5, ["t1"] if e.plan == "pro" else [],
            json.dumps({"account": {"plan": e.plan}}), received, "",
        ]
        for e, uid in zip(events, uids, strict=True)
    ]  # fmt: skip
    assert len(rows[0]) == len(INSERT_COLUMNS)
    return [list(column) for column in zip(*rows, strict=True)]


def old_columns(events: list[Ev]) -> list[list[Any]]:
    """The rows as the previous version inserted them: no user_uid (`schema_v1`)."""
    received = datetime.now(UTC)
    rows = [
        [
            e.event_id, e.event_name, e.channel, e.campaign_id, e.user_id, e.timestamp,
            [], json.dumps({"account": {"plan": e.plan}}), received, "",
        ]
        for e in events
    ]  # fmt: skip
    return [list(column) for column in zip(*rows, strict=True)]


def _label(e: Ev, group_by: GroupBy) -> str:
    if group_by is GroupBy.CHANNEL:
        return e.channel
    step = 3600 if group_by is GroupBy.HOUR else 86400
    bucket = datetime.fromtimestamp(e.timestamp // step * step, UTC)
    return bucket.strftime("%Y-%m-%dT%H:%M:%SZ")


def selected(events: list[Ev], q: MetricsQuery) -> list[Ev]:
    return [
        e
        for e in events
        if e.event_name == q.event_name
        and (q.from_ts is None or e.timestamp >= q.from_ts)
        and (q.to_ts is None or e.timestamp <= q.to_ts)
        and (q.channel is None or e.channel == q.channel)
    ]


def brute_totals(events: list[Ev], q: MetricsQuery) -> Totals:
    chosen = selected(events, q)
    return Totals(len(chosen), len({e.user_id for e in chosen}))


def brute_groups(events: list[Ev], q: MetricsQuery) -> list[GroupRow]:
    assert q.group_by is not None
    groups: dict[str, list[Ev]] = defaultdict(list)
    for e in selected(events, q):
        groups[_label(e, q.group_by)].append(e)
    return [
        GroupRow(label, len(evs), len({e.user_id for e in evs}))
        for label, evs in sorted(groups.items())
    ]
