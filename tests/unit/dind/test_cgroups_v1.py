"""cgroup v1: read-only hierarchies are bind-remounted read-write, once."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from helix_init.dind.cgroups import read_only_cgroup_mounts, remount_cgroups_rw
from helix_init.dind.storage import parse_mountinfo
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


class Recorder:
    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.calls: list[list[str]] = []
        self.result = CommandResult(returncode, "", stderr)

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv))
        return self.result


def test_only_read_only_cgroup_mounts_under_sys_fs_cgroup_are_chosen() -> None:
    assert read_only_cgroup_mounts(parse_mountinfo(READ_ONLY)) == [
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/cpuset",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/unified",
    ]


def test_each_is_bind_remounted_read_write() -> None:
    run = Recorder()
    done = remount_cgroups_rw(run, READ_ONLY)
    assert run.calls == [["mount", "-o", "remount,rw,bind", p] for p in done]
    assert len(done) == 4


def test_second_run_finds_nothing_to_do() -> None:
    after = READ_ONLY.replace(" ro,", " rw,")
    run = Recorder()
    assert remount_cgroups_rw(run, after) == []
    assert run.calls == []


def test_a_failed_remount_says_which_and_why() -> None:
    run = Recorder(32, "mount: /sys/fs/cgroup/cpu: mount point is busy.")
    with pytest.raises(StepError, match=r"remount,rw,bind /sys/fs/cgroup/cpu.* busy"):
        remount_cgroups_rw(run, READ_ONLY)
