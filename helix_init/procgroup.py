"""Process groups: signal one, and ask whether any live process is still in it.

Used in PID 1 by the step runner, the CMD's stop, the services and the probes.
Every step, service and probe gets a process group of its own, so "stop it" means
"stop the group", and "gone" means no live member is left: a zombie waiting for
its parent (supervisord reaps on its loop tick) is already gone for our purpose.
"""

from __future__ import annotations

import contextlib
import os


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
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False
