"""A consumer group of the local log: partition assignment and committed offsets.

Rebalances are eager and immediate: when a member joins or leaves, every member's partitions
are revoked (each member's `on_revoked` runs and may commit), then all are re-assigned
round-robin. Committed offsets live in `<topic>/groups/<group>.json`, replaced atomically.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class Member(Protocol):
    async def revoke(self) -> None: ...

    async def assign(self, partitions: frozenset[int]) -> None: ...


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Group:
    def __init__(self, partitions: int, offsets_path: Path) -> None:
        self.partitions = partitions
        self._path = offsets_path
        self._members: list[Member] = []
        self._rebalancing = asyncio.Lock()
        self._writing = asyncio.Lock()
        self.committed: dict[int, int] = {}
        if offsets_path.exists():
            stored = json.loads(offsets_path.read_text())
            self.committed = {int(p): int(o) for p, o in stored.items()}

    async def join(self, member: Member) -> None:
        async with self._rebalancing:
            await self._revoke_all()
            self._members.append(member)
            await self._assign_all()

    async def leave(self, member: Member) -> None:
        async with self._rebalancing:
            await self._revoke_all()
            self._members.remove(member)
            await self._assign_all()

    async def commit(self, offsets: dict[int, int]) -> None:
        self.committed.update(offsets)
        async with self._writing:
            # Whoever writes, writes the latest state: concurrent commits are never lost.
            snapshot = {str(p): o for p, o in sorted(self.committed.items())}
            await asyncio.to_thread(self._write, snapshot)

    def _write(self, snapshot: dict[str, int]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_name(f".{self._path.name}.tmp")
        with temporary.open("w") as file:
            json.dump(snapshot, file)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(self._path)  # atomic: the old state or the new one, never half
        fsync_directory(self._path.parent)

    async def _revoke_all(self) -> None:
        for member in self._members:
            try:
                await member.revoke()
            except Exception:  # like Kafka clients: a failing hook must not wedge the group
                log.exception("on_revoked hook failed")

    async def _assign_all(self) -> None:
        count = len(self._members)
        for index, member in enumerate(self._members):
            partitions = frozenset(p for p in range(self.partitions) if p % count == index)
            try:
                await member.assign(partitions)
            except Exception:
                log.exception("on_assigned hook failed")
