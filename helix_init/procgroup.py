"""Process groups and sessions: signal one, ask whether it lives, find the ones a step escaped to.

Used in PID 1 by the step runner, the CMD's stop, the services and the probes.
Every step, service and probe gets a process group of its own, so "stop it" means
"stop the group", and "gone" means no live member is left: a zombie waiting for
its parent (supervisord reaps on its loop tick) is already gone for our purpose.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterable, Iterator


def signal_group(pgid: int, sig: int) -> None:
    """Send `sig` to every process of the group; a group that is gone is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """True while any live (non-zombie) process is in group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return any(pgrp == pgid for _, _, pgrp, _ in live_processes())


def live_processes() -> Iterator[tuple[int, int, int, int]]:
    """(pid, ppid, pgrp, sid) of every live (non-zombie) process in /proc, read as it goes
    (group_alive stops at the first member, as the scan it replaced did)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 3 and fields[0] != b"Z":
            yield int(entry.name), int(fields[1]), int(fields[2]), int(fields[3])


def escaped_sessions(
    procs: Iterable[tuple[int, int, int, int]], me: int, ours: Collection[int],
    known: Collection[int],
) -> list[int]:  # fmt: skip
    """The sessions daemons made for themselves (setsid, a double fork) and left to `me`.

    A daemon that calls setsid leaves its step's session, and once its parent
    exits the kernel hands it to PID 1 (or to the subreaper, `me`). So a
    session with a process whose parent is now `me`, that is not one of the
    children `me` spawned itself (`ours`: the steps, supervisord starting
    beside cont-init), nor a session already accounted for (`known`: the
    steps' own and those found after earlier steps), was made by the step that
    just ended. Pure; the caller scans (live_processes).
    """
    return sorted({sid for pid, ppid, _, sid in procs
                   if ppid == me and pid not in ours and sid not in known})  # fmt: skip
