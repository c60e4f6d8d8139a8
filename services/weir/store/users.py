"""Dense user ids: every user_id gets one UInt32 `uid` that every consumer agrees on, forever.

The rollups count users as `groupBitmap` states of uids, which is exact only if a user has one
uid everywhere and no two users share one. Consumers are not partitioned by user (the Kafka key is
the event id), so several of them may meet a new user at the same moment. Agreement comes from the
store, not from the consumers:

- Claims. A consumer that meets users without a uid inserts claims `(user_id, uid)` into
  `<table>_users` and then reads back, per user, the claim with the smallest block number
  (`argMin(uid, _block_number)`): the claim that became visible first. A MergeTree numbers its
  inserted blocks in the order they are committed, under the same lock that makes them visible, so
  when an insert has returned, every claim with a smaller block number is already readable: the
  winner a reader sees after its own claim is final and every reader sees the same one. Losing
  claims leave holes in the uid space, nothing else.
- Slots. Candidate uids come from slots of `SLOT_SIZE` ids leased in `<table>_user_ranges` by the
  same rule (earliest lease of a slot wins; the loser leases the next one), so two consumers never
  offer the same uid for different users. A process leases slots as it needs them and abandons
  the rest of its slot when it stops: restarts and rebalances cost holes, never agreement.

A winning claim never changes, so `UserIds` caches it for the life of the process.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection, Sequence

from weir.store.base import Store
from weir.store.params import string_list
from weir.store.spec import TableSpec

SLOT_SIZE = 4096
# uid 0 means "no id yet" (rows inserted before the column existed); slot s holds
# 1 + s * SLOT_SIZE ... (s + 1) * SLOT_SIZE, so the last slot must end within UInt32.
MAX_SLOT = (2**32 - 1) // SLOT_SIZE - 1
CACHE_SIZE = 2_000_000


def slot_uids(slot: int) -> range:
    return range(1 + slot * SLOT_SIZE, 1 + (slot + 1) * SLOT_SIZE)


def new_owner() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


async def lease_slots(store: Store, spec: TableSpec, count: int, owner: str) -> list[int]:
    """`count` slots nobody else holds: claim the next free ones, keep those this owner won."""
    won: list[int] = []
    while len(won) < count:
        rows = await store.query_rows(f"SELECT count(), max(slot) FROM {spec.ranges_ref}")
        top = int(rows[0][1]) + 1 if rows[0][0] else 0
        wanted = list(range(top, top + count - len(won)))
        if wanted[-1] > MAX_SLOT:
            raise OverflowError("dense user ids exhausted (UInt32)")
        await store.insert(spec.ranges_ref, ("slot", "owner"), [wanted, [owner] * len(wanted)])
        winners = await store.query_rows(
            f"SELECT slot, argMin(owner, _block_number) FROM {spec.ranges_ref} "
            "WHERE slot IN {slots:Array(UInt32)} GROUP BY slot",
            {"slots": wanted},
        )
        won += sorted(int(slot) for slot, holder in winners if holder == owner)
    return won


async def winning_uids(store: Store, spec: TableSpec, user_ids: Collection[str]) -> dict[str, int]:
    """The uid each of `user_ids` has (users without one are absent)."""
    found: dict[str, int] = {}
    unique = sorted(set(user_ids))
    chunk = store.max_lookup_ids
    for start in range(0, len(unique), chunk):
        ids, id_params = string_list("ids", unique[start : start + chunk])
        rows = await store.query_rows(
            f"SELECT user_id, argMin(uid, _block_number) FROM {spec.users_ref} "
            f"WHERE user_id IN {ids} GROUP BY user_id",
            id_params,
        )
        found.update((str(user), int(uid)) for user, uid in rows)
    return found


class UserIds:
    """One process's view of the dense ids: a cache of winners, its leased slot, its claims."""

    def __init__(self, store: Store, spec: TableSpec, cache_size: int = CACHE_SIZE) -> None:
        self.store = store
        self.spec = spec
        self.owner = new_owner()
        self._cache: dict[str, int] = {}
        self._cache_size = cache_size
        self._free: list[int] = []  # candidate uids of the leased slots, in order, reversed

    async def uids(self, user_ids: Sequence[str]) -> list[int]:
        """The uid of each of `user_ids` (in order), claiming ids for users that have none."""
        cache = self._cache
        unknown = {user for user in user_ids if user not in cache}
        if unknown:
            await self._resolve(unknown)
        return [cache[user] for user in user_ids]

    async def _resolve(self, unknown: set[str]) -> None:
        found = await winning_uids(self.store, self.spec, unknown)
        new = sorted(unknown - found.keys())
        if new:
            candidates = await self._take(len(new))
            await self.store.insert(self.spec.users_ref, ("user_id", "uid"), [new, candidates])
            found |= await winning_uids(self.store, self.spec, new)  # after ours: final
        if len(self._cache) + len(found) > self._cache_size:
            self._cache.clear()  # winners never change: forgetting costs a lookup, not accuracy
        self._cache.update(found)

    async def _take(self, count: int) -> list[int]:
        if len(self._free) < count:
            missing = -(-(count - len(self._free)) // SLOT_SIZE)
            slots = await lease_slots(self.store, self.spec, missing, self.owner)
            fresh = [uid for slot in slots for uid in slot_uids(slot)]
            self._free = fresh[::-1] + self._free  # older candidates are used first
        taken = self._free[-count:][::-1]
        del self._free[-count:]
        return taken


async def backfill_user_ids(store: Store, spec: TableSpec) -> int:
    """Give ids to raw rows that have none (`user_uid = 0`: made before the column existed, or
    inserted by a consumer of the previous version); returns how many rows were updated.

    Run by the migration owner. New users are claimed in bulk in SQL from slots leased like any
    consumer's, so claims made meanwhile by consumers are respected: the earliest claim wins.
    """
    raw = spec.raw_ref
    missing = (
        f"SELECT DISTINCT user_id FROM {raw} WHERE user_uid = 0 "
        f"AND user_id NOT IN (SELECT user_id FROM {spec.users_ref})"
    )
    # Users a consumer of the previous version inserts meanwhile are claimed by the next round.
    for _ in range(10):
        count = int((await store.query_rows(f"SELECT count() FROM ({missing})"))[0][0])
        if not count:
            break
        slots = await lease_slots(store, spec, -(-count // SLOT_SIZE), new_owner())
        uid = f"1 + {slots}[intDiv(n, {SLOT_SIZE}) + 1] * {SLOT_SIZE} + n % {SLOT_SIZE}"
        await store.command(
            f"INSERT INTO {spec.users_ref} (user_id, uid) SELECT user_id, {uid} FROM ("
            f"SELECT user_id, row_number() OVER (ORDER BY user_id) - 1 AS n FROM ({missing}) "
            f"ORDER BY user_id LIMIT {count})"
        )
    rows = int((await store.query_rows(f"SELECT count() FROM {raw} WHERE user_uid = 0"))[0][0])
    if not rows:
        return 0
    join = f"{spec.database}.{spec.table}_uid_backfill"
    await store.command(f"DROP TABLE IF EXISTS {join}")
    await store.command(
        f"CREATE TABLE {join} ENGINE = Join(ANY, LEFT, user_id) AS "
        f"SELECT user_id, argMin(uid, _block_number) AS uid FROM {spec.users_ref} "
        f"WHERE user_id IN (SELECT user_id FROM {raw} WHERE user_uid = 0) GROUP BY user_id"
    )
    try:
        await store.command(
            f"ALTER TABLE {raw} UPDATE user_uid = joinGet('{join}', 'uid', user_id) "
            "WHERE user_uid = 0",
            {"mutations_sync": 2},
        )
    finally:
        await store.command(f"DROP TABLE IF EXISTS {join}")
    return rows
