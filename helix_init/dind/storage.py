"""Storage for dockerd: the driver for /var/lib/docker; root, before dockerd.

How the filesystem is detected: statfs(2) through ctypes, then the magic number
mapped to a name. os.statvfs lacks f_type, and statfs answers for the path
itself, through bind mounts, which is what the kernel checks when overlay2
stacks on it. /proc/self/mountinfo (the longest mount point that prefixes the
path) is the fallback when statfs cannot answer; both paths end in the same
names, the ones mountinfo uses ("overlay", "ext4", ...).

Why the guard: overlay2 on top of overlayfs fails (the kernel's stacking
depth), which is what a level gets when /var/lib/docker is not a volume.
moby's overlay2 refuses the other names in OVERLAY2_REFUSES as well.

This module also owns /proc/self/mountinfo parsing, which the cgroup remount
uses too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from helix_init.dind import DindError
from helix_init.settings.dind import STORAGE_FALLBACK

DATA_ROOT = Path("/var/lib/docker")

FS_MAGIC: Mapping[int, str] = {
    0x794C7630: "overlay",
    0xEF53: "ext4",  # ext2, ext3 and ext4 share it
    0x58465342: "xfs",
    0x01021994: "tmpfs",
    0x9123683E: "btrfs",
    0x2FC12FC1: "zfs",
    0x6969: "nfs",
    0x61756673: "aufs",
    0xF15F: "ecryptfs",
    0x65735546: "fuse",
    0x73717368: "squashfs",
    0xF2F52010: "f2fs",
    0x858458F6: "ramfs",
    0xFF534D42: "cifs",
    0x01021997: "9p",
}

OVERLAY2_REFUSES = frozenset({"overlay", "aufs", "ecryptfs", "nfs", "zfs"})


def fs_name(magic: int) -> str:
    """The filesystem's name for a statfs magic number; unknown ones as hex."""
    return FS_MAGIC.get(magic & 0xFFFFFFFF, f"unknown(0x{magic & 0xFFFFFFFF:X})")


# --- mountinfo -------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo: where, what type, and the per-mount options."""

    mount_point: str
    fstype: str
    options: frozenset[str]
    source: str = ""

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """Mounts in the kernel's order (later entries shadow earlier ones at the same point)."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 6 or len(rest) < 2:
            continue
        mounts.append(
            Mount(
                mount_point=_unescape(fields[4]),
                fstype=rest[0],
                options=frozenset(fields[5].split(",")),
                source=_unescape(rest[1]),
            )
        )
    return mounts


def mount_containing(path: Path, mounts: Sequence[Mount]) -> Mount | None:
    """The mount that holds path: the longest mount point prefixing it, the last one on ties."""
    best: Mount | None = None
    for mount in mounts:
        point = Path(mount.mount_point)
        if (path == point or point in path.parents) and (
            best is None or len(point.parts) >= len(Path(best.mount_point).parts)
        ):
            best = mount
    return best


# --- detection -------------------------------------------------------------


def statfs_magic(path: Path) -> int:
    """f_type of statfs(2) on path."""
    # ctypes here, not at the top: the cgroups step imports this module for
    # mountinfo alone, in a fork of PID 1, where ctypes' import is a few ms.
    import ctypes

    class _Statfs(ctypes.Structure):
        # f_type is the first field (a long) of struct statfs on every Linux ABI;
        # the padding covers the rest (120 bytes on x86_64).
        _fields_ = (("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 256))

    libc = ctypes.CDLL(None, use_errno=True)
    buf = _Statfs()
    if libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), str(path))
    return int(buf.f_type) & 0xFFFFFFFF


def nearest_existing(path: Path) -> Path:
    """path, or its closest existing parent: /var/lib/docker may not exist yet on first boot."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def detect_fs_type(path: Path = DATA_ROOT, mountinfo: str | None = None) -> str:
    """Filesystem type under path: statfs first, mountinfo when statfs fails."""
    where = nearest_existing(path)
    try:
        return fs_name(statfs_magic(where))
    except OSError:
        text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
        return fs_type_from_mountinfo(where, text)


def fs_type_from_mountinfo(path: Path, mountinfo: str) -> str:
    mount = mount_containing(path, parse_mountinfo(mountinfo))
    return mount.fstype if mount else "unknown"


# --- the guard -------------------------------------------------------------


@dataclass(frozen=True)
class StorageChoice:
    driver: str  # overlay2, fuse-overlayfs or vfs
    fs_type: str
    warning: str | None = None  # to be logged loudly when set


def choose_storage_driver(
    fs_type: str,
    fallback: str | None,
    *,
    fuse_device: bool,
    fuse_binary: bool,
    data_root: Path = DATA_ROOT,
) -> StorageChoice:
    """overlay2 on a real filesystem; on overlay, the configured fallback or a DindError."""
    if fs_type not in OVERLAY2_REFUSES:
        return StorageChoice("overlay2", fs_type)
    volume_hint = (
        f"{data_root} is on {fs_type}, where overlay2 cannot work: "
        f"give it a volume (docker run -v NAME:{data_root} ...)"
    )
    if fallback is None:
        raise DindError(f"{volume_hint}, or set {STORAGE_FALLBACK}=fuse-overlayfs|vfs")
    if fallback == "fuse-overlayfs":
        missing = [
            what
            for what, present in (
                ("/dev/fuse", fuse_device),
                ("fuse-overlayfs on PATH", fuse_binary),
            )
            if not present
        ]
        if missing:
            raise DindError(
                f"{volume_hint}; {STORAGE_FALLBACK}=fuse-overlayfs needs {' and '.join(missing)}"
            )
        return StorageChoice("fuse-overlayfs", fs_type, f"{volume_hint}; using fuse-overlayfs")
    return StorageChoice(
        "vfs",
        fs_type,
        f"{volume_hint}; using vfs: every layer is a full copy, slow and disk-hungry",
    )
