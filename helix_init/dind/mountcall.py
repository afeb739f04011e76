"""mount(2) through libc, for the cgroups step's remounts; root, in a step process (never PID 1).

Why not the `mount` command: the cgroups step made one per read-only cgroup
hierarchy (nine on this cgroup v1 host) plus `--make-rshared /`, each a fork
of the step and an exec of util-linux's mount, most of that step's time in a
level's boot. The call is the one util-linux makes (seen with strace: the
mount's own per-mount flags, MS_REMOUNT|MS_BIND, no MS_RDONLY); which flags a
mount keeps is cgroups.rw_bind_remount_flags' decision, made from mountinfo.
"""

from __future__ import annotations

import os

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21


def mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    """mount(2) with no data; OSError (errno, strerror, target) when the kernel refuses."""
    import ctypes  # here: only the cgroups step's fork needs it

    libc = ctypes.CDLL(None, use_errno=True)
    fs = fstype.encode() if fstype is not None else None
    if libc.mount(source.encode(), os.fsencode(target), fs, ctypes.c_ulong(flags), None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), target)
