"""Restart delays and the restart budget (pure; randomness is passed in).

Exponential from `initial`, doubling per consecutive failure, capped at `max`,
spread by ±`jitter` so a thousand containers do not restart in lockstep, and
reset once a run lasted `reset_after` seconds. The budget counts restarts since
that reset; it only ends in giving up where the spec asked for a budget.

The doubling stops at MAX_DOUBLINGS: `2 ** failures` grows without bound, and
from the 1,025th consecutive crash `initial * 2 ** 1024` raised OverflowError,
which ended the service's supervision without a line (never restarted again,
exit 70 at shutdown). 2 ** 40 times the smallest `initial` the parser allows
is far past the largest `max`, so the cap never shortens a delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from helix_init.services.spec import Backoff

if TYPE_CHECKING:
    import random

MAX_DOUBLINGS = 40


@dataclass
class RestartClock:
    backoff: Backoff
    # Made at the first restart: PID 1 does not load `random` while no service has ended.
    rng: random.Random | None = None
    failures: int = 0  # consecutive short runs since the last reset

    def record_exit(self, ran_for: float) -> None:
        """Count an unwanted end; a run of `reset_after` seconds or more starts over."""
        if ran_for >= self.backoff.reset_after:
            self.failures = 0
        self.failures += 1

    def reset(self) -> None:
        self.failures = 0

    def exhausted(self, max_restarts: int) -> bool:
        """True once more than `max_restarts` (>0) ends happened since the last reset."""
        return max_restarts > 0 and self.failures > max_restarts

    def delay(self) -> float:
        """Delay before the next start after `failures` consecutive ends."""
        if self.rng is None:
            import random

            self.rng = random.Random()
        return delay_after(self.backoff, self.failures, self.rng.uniform(-1.0, 1.0))


def delay_after(b: Backoff, failures: int, spread: float) -> float:
    """The delay after `failures` consecutive ends; `spread` in [-1, 1] scales the jitter."""
    doublings = min(max(0, failures - 1), MAX_DOUBLINGS)
    base = min(b.max, b.initial * 2.0**doublings)
    return float(max(0.0, min(b.max, base * (1 + b.jitter * spread))))
