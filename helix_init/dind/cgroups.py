"""cgroups a nested dockerd can use: v2 delegation, v1 read-write remounts; root, before dockerd.

v2 (moby hack/dind): a cgroup with processes in it cannot hand controllers to
its children (the "no internal processes" rule, EBUSY), and inside a container
every process starts in the namespace's root cgroup. So every process moves to
a child cgroup first, then every controller the parent offers is enabled in
cgroup.subtree_control. runc silently skips controllers that are not enabled,
so a missing memory, io or pids controller is an error here rather than a
nested kind cluster failing much later.

v1: without --privileged, Docker mounts the hierarchies read-only and the
nested dockerd fails with "mkdir /sys/fs/cgroup/cpuset/docker: read-only file
system". A bind remount read-write fixes it, but only before dockerd starts
(afterwards the remount fails with "busy").

The v2 functions work on a root directory through a CgroupIO, so tests run
them on a fake cgroupfs tree with the kernel's write semantics.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from helix_init.dind import DindError, mountcall
from helix_init.dind.storage import Mount, parse_mountinfo
from helix_init.hostcmd import Runner, check

CGROUP_ROOT = Path("/sys/fs/cgroup")
INIT_CGROUP = "init"
REQUIRED_CONTROLLERS = ("memory", "io", "pids")


class CgroupIO(Protocol):
    def read(self, path: Path) -> str: ...

    def write(self, path: Path, data: str) -> None:
        """One write(2) of data; cgroupfs acts on each write, errors come back as OSError."""

    def mkdir(self, path: Path) -> None: ...


class KernelCgroupIO:
    """The real cgroupfs."""

    def read(self, path: Path) -> str:
        return path.read_text()

    def write(self, path: Path, data: str) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)

    def mkdir(self, path: Path) -> None:
        path.mkdir(exist_ok=True)


@dataclass(frozen=True)
class Delegation:
    moved: tuple[int, ...]  # pids moved to the child cgroup
    enabled: tuple[str, ...]  # controllers enabled by this run
    refused: tuple[str, ...]  # "ctrl: reason" for optional controllers the kernel refused
    subtree_control: tuple[str, ...]  # read back afterwards


def evacuate_root_cgroup(
    root: Path, io: CgroupIO, child: str = INIT_CGROUP, rounds: int = 50
) -> list[int]:
    """Move every process of root into root/child, again while new ones appear.

    Processes keep starting while this runs; one pass would leave them behind
    and enabling controllers would then fail with EBUSY. A pid that exited
    between reading and writing gives ESRCH and is skipped.
    """
    io.mkdir(root / child)
    moved: list[int] = []
    for _ in range(rounds):
        pids = [int(p) for p in io.read(root / "cgroup.procs").split()]
        if not pids:
            return moved
        for pid in pids:
            try:
                io.write(root / child / "cgroup.procs", str(pid))
            except OSError as e:
                if e.errno == errno.ESRCH:
                    continue
                raise DindError(
                    f"cannot move pid {pid} to {root / child}: {os.strerror(e.errno or 0)}"
                ) from e
            moved.append(pid)
    raise DindError(f"processes keep appearing in {root / 'cgroup.procs'} after {rounds} rounds")


def enable_all_controllers(
    root: Path,
    io: CgroupIO,
    *,
    on_busy: Callable[[], object] = lambda: None,
    attempts: int = 20,
    pause: float = 0.05,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[str], dict[str, str]]:
    """Enable every controller of cgroup.controllers in cgroup.subtree_control, one at a time.

    One "+ctrl" per write, so that one controller the kernel refuses does not
    take the others down with it. EBUSY means a process slipped into root:
    on_busy (moving them out again) runs, then the write is retried.
    Returns the controllers this call enabled, and those refused with the reason.
    """
    offered = io.read(root / "cgroup.controllers").split()
    already = set(io.read(root / "cgroup.subtree_control").split())
    enabled: list[str] = []
    refused: dict[str, str] = {}
    for ctrl in offered:
        if ctrl in already:
            continue
        for attempt in range(attempts):
            try:
                io.write(root / "cgroup.subtree_control", f"+{ctrl}")
            except OSError as e:
                if e.errno == errno.EBUSY and attempt + 1 < attempts:
                    on_busy()
                    sleep(pause)
                    continue
                refused[ctrl] = os.strerror(e.errno or 0)
            else:
                enabled.append(ctrl)
            break
    after = set(io.read(root / "cgroup.subtree_control").split())
    require_controllers(root, offered, after, refused)
    return enabled, refused


def require_controllers(
    root: Path, offered: Sequence[str], enabled: set[str], refused: dict[str, str]
) -> None:
    """Fail loudly when memory, io or pids is offered by the parent but not enabled."""
    missing = [c for c in REQUIRED_CONTROLLERS if c in offered and c not in enabled]
    if missing:
        why = "; ".join(f"{c}: {refused[c]}" for c in missing if c in refused)
        raise DindError(
            f"cgroup v2 controller(s) {', '.join(missing)} offered in "
            f"{root / 'cgroup.controllers'} but not enabled in cgroup.subtree_control"
            + (f" ({why})" if why else "")
            + "; nested containers would run without those limits"
        )


def at_namespace_root(proc_self_cgroup: str) -> bool:
    """True when /proc/self/cgroup puts us at the root of our own v2 hierarchy ("0::/").

    With a private cgroup namespace (Docker's default on v2) /sys/fs/cgroup is
    the container's own cgroup, and delegation is safe. With --cgroupns=host it
    is the host's root, whose processes are not ours to move: skip delegation.
    """
    return any(line == "0::/" for line in proc_self_cgroup.splitlines())


def delegate_cgroup_v2(
    root: Path = CGROUP_ROOT,
    io: CgroupIO | None = None,
    *,
    child: str = INIT_CGROUP,
    sleep: Callable[[float], None] = time.sleep,
) -> Delegation:
    """Empty the root cgroup, then hand every controller down; running it again changes nothing."""
    cgio = io or KernelCgroupIO()
    moved = evacuate_root_cgroup(root, cgio, child)

    def move_late_arrivals() -> None:
        moved.extend(evacuate_root_cgroup(root, cgio, child))

    enabled, refused = enable_all_controllers(root, cgio, on_busy=move_late_arrivals, sleep=sleep)
    subtree = tuple(cgio.read(root / "cgroup.subtree_control").split())
    return Delegation(
        tuple(moved), tuple(enabled), tuple(f"{c}: {r}" for c, r in refused.items()), subtree
    )


# --- v1 ----------------------------------------------------------------------


def cgroup_mounts(mounts: Sequence[Mount], under: Path = CGROUP_ROOT) -> list[Mount]:
    """The cgroup hierarchies (v1, and v2 or a hybrid's cgroup2) mounted at or below `under`."""
    return [
        m
        for m in mounts
        if m.fstype in ("cgroup", "cgroup2")
        and (Path(m.mount_point) == under or under in Path(m.mount_point).parents)
    ]


def read_only_cgroup_mounts(mounts: Sequence[Mount], under: Path = CGROUP_ROOT) -> list[str]:
    return [m.mount_point for m in cgroup_mounts(mounts, under) if m.read_only]


def rw_bind_remount_flags(options: frozenset[str]) -> int | None:
    """mount(2) flags for `mount -o remount,rw,bind` of a mount with these options; None: unsure.

    util-linux's mount passes the mount's own flags again with MS_REMOUNT and
    MS_BIND, and no MS_RDONLY (strace); None when mountcall.per_mount_flags
    cannot say them exactly: the `mount` command then.
    """
    kept = mountcall.per_mount_flags(options)
    return None if kept is None else mountcall.MS_REMOUNT | mountcall.MS_BIND | kept


def remount_rw(mount: Mount, runner: Runner) -> None:
    """Bind-remount `mount` read-write, its other flags kept: mount(2), else the `mount` command."""
    flags = rw_bind_remount_flags(mount.options)
    if flags is None:
        check(runner, ["mount", "-o", "remount,rw,bind", mount.mount_point])
        return
    try:
        mountcall.mount(mount.source, mount.mount_point, mount.fstype, flags)
    except OSError as exc:
        raise DindError(f"cannot remount {mount.mount_point} read-write: {exc.strerror}") from None


def make_mounts_shared() -> None:
    """`mount --make-rshared /` (the same mount(2) call): dockerd's mounts reach its containers."""
    mountcall.mount("none", "/", None, mountcall.MS_REC | mountcall.MS_SHARED)


def remount_cgroups_rw(
    remount: Callable[[Mount], None], mountinfo: str, under: Path = CGROUP_ROOT
) -> list[str]:
    """Remount each read-only cgroup mount read-write (`remount`); return the ones remounted.

    Must run before dockerd starts. Once they are read-write, a second run
    finds nothing to do.
    """
    mounts = [m for m in cgroup_mounts(parse_mountinfo(mountinfo), under) if m.read_only]
    for mount in mounts:
        remount(mount)
    return [m.mount_point for m in mounts]
