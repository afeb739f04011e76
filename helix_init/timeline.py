"""Where boot time goes: the stage the init is in, and when each stage and step began and took.

Pure bookkeeping with an injectable clock (unit-testable with a fake one).
Times are seconds since the init's process began (its exec, as near as the
kernel tells: /proc/self/stat counts in clock ticks), so the first entry,
`startup`, is the interpreter and the imports before boot's first stage.
`helix-init status --json` shows it as "timeline"; `status` prints one line.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable
from typing import Any


class Stage(enum.Enum):
    """The init's stages, in order (DESIGN.md's lifecycle; boot.py's table of contents)."""

    STARTUP = "startup"  # exec to the first stage: the interpreter and the imports
    PREFLIGHT = "preflight"  # PID-1 duties, drop-ins validated, the run dir made ours
    CONT_INIT = "cont-init"
    SERVICES = "services"  # started in dependency order; the CMD waits for their readiness
    RUNNING = "running"  # the CMD (if any) runs; services are supervised
    SHUTDOWN = "shutdown"


def seconds_since_exec(clock: Callable[[], float] = time.monotonic) -> float:
    """How long ago this process began, from /proc (0.0 when it cannot be told)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime, in ticks
    return max(0.0, uptime - started)


class Timeline:
    def __init__(self, clock: Callable[[], float] = time.monotonic, since_exec: float = 0.0):
        self._clock = clock
        self._origin = clock() - since_exec  # the process's start, on `clock`
        self.stage = Stage.STARTUP
        self._stages: list[dict[str, Any]] = [{"stage": Stage.STARTUP.value, "start": 0.0}]
        self._steps: list[dict[str, Any]] = []
        self._engine: dict[str, float] | None = None

    def now(self) -> float:
        """Seconds since exec, on this timeline."""
        return self._clock() - self._origin

    def enter(self, stage: Stage) -> None:
        """Begin `stage`: the one before it ends now."""
        at = round(self.now(), 3)
        self._stages[-1]["seconds"] = round(at - self._stages[-1]["start"], 3)
        self.stage = stage
        self._stages.append({"stage": stage.value, "start": at})

    def step(self, stage: Stage, name: str, started: float, seconds: float, outcome: str) -> None:
        """Record a finished step; `started` is on the clock given at construction."""
        self._steps.append(
            {
                "stage": stage.value,
                "step": name,
                "start": round(started - self._origin, 3),
                "seconds": round(seconds, 3),
                "outcome": outcome,
            }
        )

    def engine(self, started: float, seconds: float) -> None:
        """supervisord's first start this boot: its spawn (on the clock given) to its first answer.

        A later start (after it died) is not boot time: only the first is kept.
        """
        if self._engine is None:
            self._engine = {"start": round(started - self._origin, 3), "seconds": round(seconds, 3)}

    def to_json(self) -> dict[str, Any]:
        stages = [dict(s) for s in self._stages]
        if "seconds" not in stages[-1]:  # the current stage, so far
            stages[-1]["seconds_so_far"] = round(self.now() - stages[-1]["start"], 3)
        made: dict[str, Any] = {"stages": stages, "steps": [dict(s) for s in self._steps]}
        if self._engine is not None:
            made["engine"] = dict(self._engine)
        return made


def summary(timeline: dict[str, Any]) -> str:
    """The `status` table's line: `boot: startup 0.15s, preflight 0.02s, cont-init 0.40s, ...`."""
    parts = []
    for s in timeline.get("stages", []):
        if s["stage"] == Stage.SHUTDOWN.value:
            continue
        took = s.get("seconds", s.get("seconds_so_far", 0.0))
        more = "" if "seconds" in s else " so far"
        parts.append(f"{s['stage']} {took:.2f}s{more}")
    return "boot: " + ", ".join(parts)
