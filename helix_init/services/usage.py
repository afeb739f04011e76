"""What a service's processes use right now: CPU time, resident memory, open files (psutil).

Runs in PID 1, for `helix-init status` only: psutil is imported on the first
question, not at boot. Summed over every process of the service (its cgroup,
or its group, session and descendants), because the leak to catch is often in
a child: Helix once leaked 1,564 fds in desktop-bridge over 45 hours before
anyone noticed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    processes: int
    cpu_seconds: float  # user + system, since each process started
    rss_bytes: int
    fds: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "processes": self.processes,
            "cpu_seconds": round(self.cpu_seconds, 2),
            "rss_bytes": self.rss_bytes,
            "fds": self.fds,
        }


def usage(pids: Iterable[int]) -> Usage:
    import psutil

    count = fds = rss = 0
    cpu = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                times = proc.cpu_times()
                rss += proc.memory_info().rss
                fds += proc.num_fds()
                cpu += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        count += 1
    return Usage(count, cpu, rss, fds)
