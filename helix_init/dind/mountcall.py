"""mount(2) through libc, for the cgroups and hide-proc steps' remounts; root, in a step process.

Why not the `mount` command: the cgroups step made one per read-only cgroup
hierarchy (nine on this cgroup v1 host) plus `--make-rshared /`, each a fork
of the step and an exec of util-linux's mount, most of that step's time in a
level's boot (the hide-proc step made one more). The calls are the ones
util-linux makes (seen with strace): a remount passes the mount's own
per-mount flags again, as mountinfo shows them (per_mount_flags), with
MS_REMOUNT (and MS_BIND for a bind remount) and the new options as data.
Never in PID 1: the steps' forks import this.
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


# mountinfo's per-mount options (its sixth field) and their flags: a remount
# replaces all of them, so util-linux passes them again. ro/rw are the caller's.
PER_MOUNT = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "nosymfollow": MS_NOSYMFOLLOW,
}


def per_mount_flags(options: frozenset[str]) -> int | None:
    """The flags that keep a mount's per-mount options (but ro) on a remount; None: unsure.

    None for an option not in PER_MOUNT, or no atime option at all
    (strictatime: no flag says it, and the kernel would make it relatime):
    the caller runs the `mount` command then.
    """
    if options - PER_MOUNT.keys() - {"ro", "rw"} or not options & {"noatime", "relatime"}:
        return None
    flags = 0
    for option in options:
        flags |= PER_MOUNT.get(option, 0)
    return flags


def mount(
    source: str, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    """mount(2); OSError (errno, strerror, target) when the kernel refuses."""
    import ctypes  # here: only the steps' forks need it, never PID 1

    libc = ctypes.CDLL(None, use_errno=True)
    fs = fstype.encode() if fstype is not None else None
    raw = data.encode() if data is not None else None
    if libc.mount(source.encode(), os.fsencode(target), fs, ctypes.c_ulong(flags), raw) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), target)
