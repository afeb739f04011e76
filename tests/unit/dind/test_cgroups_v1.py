"""cgroup v1: read-only hierarchies are bind-remounted read-write, once."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

import pytest

from helix_init.dind import DindError, mountcall
from helix_init.dind.cgroups import (
    read_only_cgroup_mounts,
    remount_cgroups_rw,
    remount_rw,
    rw_bind_remount_flags,
)
from helix_init.dind.mountcall import (
    MS_BIND,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RELATIME,
    MS_REMOUNT,
)
from helix_init.dind.storage import Mount, parse_mountinfo
from helix_init.hostcmd import CommandResult, StepError

# What a level started without --privileged sees on this cgroup v1 (hybrid) host.
READ_ONLY = """\
700 690 0:120 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
705 700 0:125 / /sys ro,nosuid,relatime - sysfs sysfs ro
706 705 0:126 / /sys/fs/cgroup rw,nosuid,relatime - tmpfs tmpfs rw,mode=755
707 706 0:29 /docker/abc /sys/fs/cgroup/cpu ro,nosuid,relatime master:12 - cgroup cgroup rw,cpu
708 706 0:31 /docker/abc /sys/fs/cgroup/cpuset ro,nosuid,relatime - cgroup cgroup rw,cpuset
709 706 0:35 /docker/abc /sys/fs/cgroup/memory ro,nosuid,relatime - cgroup cgroup rw,memory
710 706 0:38 /docker/abc /sys/fs/cgroup/unified ro,nosuid,relatime - cgroup2 cgroup2 rw
711 706 0:37 /docker/abc /sys/fs/cgroup/systemd rw,nosuid,relatime - cgroup cgroup rw,name=systemd
712 700 0:40 / /mnt/other-cgroup ro,relatime - cgroup cgroup rw,pids
"""


def test_only_read_only_cgroup_mounts_under_sys_fs_cgroup_are_chosen() -> None:
    assert read_only_cgroup_mounts(parse_mountinfo(READ_ONLY)) == [
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/cpuset",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/unified",
    ]


def test_each_is_bind_remounted_read_write() -> None:
    seen: list[Mount] = []
    done = remount_cgroups_rw(seen.append, READ_ONLY)
    assert [m.mount_point for m in seen] == done
    assert len(done) == 4


def test_second_run_finds_nothing_to_do() -> None:
    after = READ_ONLY.replace(" ro,", " rw,")
    seen: list[Mount] = []
    assert remount_cgroups_rw(seen.append, after) == []
    assert seen == []


NOSUID_RELATIME = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_RELATIME

# (mountinfo's per-mount options, the flags of the remount or None: the `mount` command)
# fmt: off
FLAGS = [
    ("ro,nosuid,relatime", NOSUID_RELATIME),  # a hierarchy Docker mounted read-only
    ("ro,nosuid,nodev,noexec,relatime",
     MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME),
    ("ro,noatime,nodiratime", MS_REMOUNT | MS_BIND | MS_NOATIME | MS_NODIRATIME),
    ("ro,nosuid", None),  # strictatime: no flag says it
    ("ro,nosuid,relatime,idmapped", None),  # not one this knows to carry over
]
# fmt: on


@pytest.mark.parametrize(("options", "flags"), FLAGS, ids=[f[0] for f in FLAGS])
def test_the_remount_keeps_the_mount_s_own_flags_and_drops_read_only(
    options: str, flags: int | None
) -> None:
    assert rw_bind_remount_flags(frozenset(options.split(","))) == flags


class Recorder:
    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.calls: list[list[str]] = []
        self.result = CommandResult(returncode, "", stderr)

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv))
        return self.result


def test_options_it_cannot_carry_over_go_to_the_mount_command_and_its_failure_says_why() -> None:
    odd = Mount("/sys/fs/cgroup/cpu", "cgroup", frozenset({"ro", "nosuid"}), "cgroup")
    run = Recorder()
    remount_rw(odd, run)
    assert run.calls == [["mount", "-o", "remount,rw,bind", "/sys/fs/cgroup/cpu"]]
    busy = Recorder(32, "mount: /sys/fs/cgroup/cpu: mount point is busy.")
    with pytest.raises(StepError, match=r"remount,rw,bind /sys/fs/cgroup/cpu.* busy"):
        remount_rw(odd, busy)


def test_a_refused_remount_says_which_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(source: str, target: str, fstype: str | None, flags: int) -> None:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), target)

    monkeypatch.setattr(mountcall, "mount", refuse)
    mount = parse_mountinfo(READ_ONLY)[3]
    with pytest.raises(DindError, match=r"cannot remount /sys/fs/cgroup/cpu read-write: .*busy"):
        remount_rw(mount, Recorder())
