"""Every process of a service, whatever it does: a cgroup per service, else its descendants.

Runs in PID 1, as root. A daemon that calls setsid() (or forks twice) leaves
its process group, and the group cleanup missed it: 16 copies of a setsid
`sleep` after 8 s of restarts. A cgroup cannot be left by its members, so:

- Where a cgroup2 hierarchy is writable (the v2 root, with or without the
  cgroups step's delegation; or a hybrid host's /sys/fs/cgroup/unified, as
  on the test machine), each service gets `helix-services.ID/NAME` under
  the init's own cgroup, and the init moves a service's first process (and
  whatever it forked already) in right after supervisord spawned it.
  Everything it forks after stays in. Stop and restart end the whole cgroup.
  No controller is enabled there: the cgroup is for membership, so it never
  competes with the delegation a nested dockerd needs (its containers' cgroups
  are made at the hierarchy's root, not under ours). ID is the inode of the
  init's PID namespace: several inits on one host (the test tier) never
  share a service cgroup.
- Elsewhere (a read-only cgroupfs, v1 only), the service's processes are
  its process group, its session, and every descendant seen: each look at
  the service adds the descendants of what it already knows (the init is the
  subreaper every orphan comes back to, but an orphan does not say whose it
  was, so what is tracked is what was seen before it was orphaned).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from helix_init.procgroup import group_alive, signal_group

CGROUP_ROOT = Path("/sys/fs/cgroup")
BASE_PREFIX = "helix-services"


@dataclass(frozen=True)
class Proc:
    """One line of /proc/PID/stat, as far as membership needs it."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    zombie: bool
    start: int  # clock ticks since boot: a pid reused later has another


def read_proc(pid: int, proc: Path = Path("/proc")) -> Proc | None:
    try:
        raw = (proc / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = raw.rpartition(b")")[2].split()
    if len(fields) < 20:
        return None
    return Proc(
        pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0] == b"Z", int(fields[19])
    )


def all_procs(proc: Path = Path("/proc")) -> Iterator[Proc]:
    for entry in os.scandir(proc):
        if entry.name.isdigit():
            found = read_proc(int(entry.name), proc)
            if found is not None:
                yield found


def descendants(roots: Iterable[int], procs: Iterable[Proc]) -> set[int]:
    """Every live process below `roots` (the roots included when alive), from one snapshot."""
    children: dict[int, list[int]] = {}
    alive: set[int] = set()
    for p in procs:
        children.setdefault(p.ppid, []).append(p.pid)
        if not p.zombie:
            alive.add(p.pid)
    found: set[int] = set()
    todo = [r for r in roots]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found & alive


# -- where service cgroups go ------------------------------------------------------


def cgroup2_mounts(mountinfo: str) -> list[Path]:
    """Mount points of cgroup2 filesystems that are mounted read-write."""
    points = []
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        parts, fs = before.split(), after.split()
        if len(parts) >= 6 and fs and fs[0] == "cgroup2" and "rw" in parts[5].split(","):
            points.append(Path(parts[4].replace("\\040", " ")))
    return points


def own_cgroup2_path(proc_self_cgroup: str) -> str | None:
    for line in proc_self_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:] or "/"
    return None


def find_base(
    mountinfo: str,
    proc_self_cgroup: str,
    unique: str,
    writable: Callable[[Path], bool] = lambda p: os.access(p, os.W_OK),
) -> Path | None:
    """The folder for this init's service cgroups, or None where none can be made.

    Under the init's own cgroup of the first writable cgroup2 mount (the v2
    root comes first, then a hybrid's unified), named after `unique`.
    """
    own = own_cgroup2_path(proc_self_cgroup)
    if own is None:
        return None
    mounts = sorted(cgroup2_mounts(mountinfo), key=lambda p: p != CGROUP_ROOT)
    for mount in mounts:
        here = mount / own.lstrip("/")
        if (here / "cgroup.procs").exists() and writable(here):
            return here / f"{BASE_PREFIX}.{unique}"
    return None


def namespace_id() -> str:
    """The inode of our PID namespace: one per init, also on a host shared by many."""
    return str(os.stat("/proc/self/ns/pid").st_ino)


def detect_base() -> Path | None:
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        own = Path("/proc/self/cgroup").read_text()
        unique = namespace_id()
    except OSError:
        return None
    return find_base(mountinfo, own, unique)


# -- one service's processes -----------------------------------------------------------


class ServiceCgroup:
    """BASE/NAME: created once, joined by each run's first process, emptied by stop."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self) -> bool:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return (self.path / "cgroup.procs").exists()

    def join(self, pids: Iterable[int]) -> None:
        """Move `pids` in; one that exited meanwhile (ESRCH) is no error."""
        for pid in pids:
            try:
                fd = os.open(self.path / "cgroup.procs", os.O_WRONLY)
            except OSError:
                return
            try:
                os.write(fd, str(pid).encode())
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    raise
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """KILL every member at once (cgroup.kill, Linux 5.14), else one by one."""
        try:
            fd = os.open(self.path / "cgroup.kill", os.O_WRONLY)
        except OSError:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return
        try:
            os.write(fd, b"1")
        finally:
            os.close(fd)

    def remove(self) -> bool:
        """rmdir; True once it is gone. EBUSY while a member has not been reaped yet."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


def clear_stale(base: Path) -> None:
    """What an earlier init left under `base`: its name is a PID namespace's inode, and
    the kernel reuses those once a namespace is gone (that init and all its processes
    with it). Its service cgroups are emptied (KILL) and removed before ours are made."""
    try:
        children = [entry for entry in os.scandir(base) if entry.is_dir()]
    except OSError:
        return
    for entry in children:
        stale = ServiceCgroup(Path(entry.path))
        if not stale.remove():
            stale.kill()
            stale.remove()


async def remove_all(cgroups: list[ServiceCgroup], base: Path, timeout: float = 0.5) -> bool:
    """At the end: every service cgroup, then the base; what is still in one is KILLed.

    A cgroup stays busy for a moment after its last process ended (until it is
    reaped), so this retries; True when all is gone.
    """
    deadline = time.monotonic() + timeout
    left = list(cgroups)
    while True:
        left = [cg for cg in left if not cg.remove()]
        if not left and ServiceCgroup(base).remove():
            return True
        if time.monotonic() > deadline:
            return False
        for cg in left:
            cg.kill()
        await asyncio.sleep(0.02)


@dataclass
class RunProcesses:
    """The processes of one run of a service: the way to signal them all and to ask if any is left.

    `cgroup` None: the fallback (process group, session, descendants seen).
    """

    leader: int
    cgroup: ServiceCgroup | None = None
    seen: dict[int, int] = field(default_factory=dict)  # pid -> start ticks, fallback only

    def enter(self) -> None:
        """Right after the spawn: the leader into the cgroup (svcexec joined it already,
        before the exec; this covers a launcher that did not), or, without a cgroup,
        remember what it forked so far."""
        if self.cgroup is not None:
            self.cgroup.join([self.leader])
            return
        procs = list(all_procs())
        self._remember(descendants([self.leader], procs), procs)

    def members(self) -> set[int]:
        """Every live process of this run (and, with a cgroup, of the runs before it) now."""
        if self.cgroup is not None:
            live = set()
            for pid in self.cgroup.pids():
                found = read_proc(pid)
                if found is not None and not found.zombie:
                    live.add(pid)
            return live
        procs = list(all_procs())
        by_pid = {p.pid: p for p in procs}
        known = [pid for pid, start in self.seen.items() if _same(by_pid.get(pid), start)]
        found_pids = descendants([self.leader, *known], procs)
        found_pids |= {p.pid for p in procs if self.leader in (p.pgid, p.sid) and not p.zombie}
        self._remember(found_pids, procs)
        return found_pids - {os.getpid()}

    def _remember(self, pids: Iterable[int], procs: list[Proc]) -> None:
        if self.cgroup is not None:
            return
        by_pid = {p.pid: p for p in procs}
        for pid in pids:
            if pid in by_pid:
                self.seen[pid] = by_pid[pid].start

    def alive(self) -> bool:
        return bool(self.members()) or group_alive(self.leader)

    def signal(self, sig: int) -> None:
        signal_group(self.leader, sig)
        if sig == signal.SIGKILL and self.cgroup is not None:
            self.cgroup.kill()
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def _same(proc: Proc | None, start: int) -> bool:
    return proc is not None and proc.start == start and not proc.zombie
