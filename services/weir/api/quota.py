"""Per-key quotas: a token bucket per key, refilled continuously.

Each API worker process keeps its own buckets (no shared state, no extra hop per request), so a
key's configured rate and burst are split evenly between the workers of a replica: a replica then
grants about the configured rate, and N replicas about N times it (README: sizing quotas).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    """`retry_after`/`reset`: seconds until the request would fit / until the bucket is full."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int
    reset: int


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    burst: float  # bucket size
    tokens: float = -1.0
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, cost: float, now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        allowed = cost <= self.tokens
        if allowed:
            self.tokens -= cost
        missing = 0.0 if allowed else min(cost, self.burst) - self.tokens
        return Verdict(
            allowed=allowed,
            limit=int(self.burst),
            remaining=int(self.tokens),
            retry_after=max(1, math.ceil(missing / self.rate)) if not allowed else 0,
            reset=math.ceil((self.burst - self.tokens) / self.rate),
        )
