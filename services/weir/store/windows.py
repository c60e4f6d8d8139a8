"""Split a time window into rollup-aligned pieces and raw-table edges (pure arithmetic).

Windows are half-open [lo, hi) in unix seconds; None means unbounded on that side.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR = 3600
DAY = 86400


@dataclass(frozen=True)
class Piece:
    """[lo, hi) to read at `step` seconds granularity: DAY/HOUR from a rollup, 1 from raw rows."""

    step: int
    lo: int | None
    hi: int | None


def _ceil(value: int, step: int) -> int:
    return -(-value // step) * step


def split_window(lo: int | None, hi: int | None, steps: tuple[int, ...]) -> list[Piece]:
    """Cover [lo, hi) with the coarsest whole buckets first, finer steps at the edges.

    `steps` is coarsest first and ends with 1 (raw rows), e.g. (DAY, HOUR, 1).
    """
    if lo is not None and hi is not None and lo >= hi:
        return []
    step, finer = steps[0], steps[1:]
    if step == 1 or not finer:
        return [Piece(1, lo, hi)]
    inner_lo = None if lo is None else _ceil(lo, step)
    inner_hi = None if hi is None else hi // step * step
    if inner_lo is not None and inner_hi is not None and inner_lo >= inner_hi:
        return split_window(lo, hi, finer)
    pieces = [Piece(step, inner_lo, inner_hi)]
    if lo is not None and inner_lo is not None and lo < inner_lo:
        pieces = split_window(lo, inner_lo, finer) + pieces
    if hi is not None and inner_hi is not None and inner_hi < hi:
        pieces += split_window(inner_hi, hi, finer)
    return pieces
