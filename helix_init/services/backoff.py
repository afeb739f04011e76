"""Restart delays and the restart budget (pure; randomness is passed in).

Exponential from `initial`, doubling per consecutive failure, capped at `max`,
spread by ±`jitter` so a thousand containers do not restart in lockstep, and
reset once a run lasted `reset_after` seconds. The budget counts restarts since
that reset; it only ends in giving up where the spec asked for a budget.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from helix_init.services.spec import Backoff


@dataclass
class RestartClock:
    backoff: Backoff
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0  # consecutive short runs since the last reset

    def record_exit(self, ran_for: float) -> None:
        """Count an unwanted end; a run of `reset_after` seconds or more starts over."""
        if ran_for >= self.backoff.reset_after:
            self.failures = 0
        self.failures += 1

    def exhausted(self, max_restarts: int) -> bool:
        """True once more than `max_restarts` (>0) ends happened since the last reset."""
        return max_restarts > 0 and self.failures > max_restarts

    def delay(self) -> float:
        """Delay before the next start after `failures` consecutive ends."""
        b = self.backoff
        base = min(b.max, b.initial * 2 ** max(0, self.failures - 1))
        spread = 1 + self.rng.uniform(-b.jitter, b.jitter)
        return float(min(b.max, base * spread))
