"""The process-moving half of cgroup v2 delegation against the kernel's own cgroupfs.

This machine runs cgroup v1 with an empty (controller-less) cgroup2 at
/sys/fs/cgroup/unified, so controllers cannot be tested for real, but moving
processes can. A child interpreter in a fresh mount namespace mounts cgroup2
privately, makes a scratch cgroup that plays the namespace's root, puts a few
sleeping processes and a dead pid's worth of race into it, and delegates.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.unshared import run_unshared

SCRIPT = r"""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
from helix_init.dind.cgroups import KernelCgroupIO, delegate_cgroup_v2

mnt = Path(tempfile.mkdtemp(prefix="helix-cg2-"))
subprocess.run(["mount", "-t", "cgroup2", "none", str(mnt)], check=True)
root = mnt / f"helix-test-{os.getpid()}"
root.mkdir()
sleepers = [subprocess.Popen(["sleep", "30"]) for _ in range(3)]
gone = subprocess.Popen(["true"])
try:
    io = KernelCgroupIO()
    for p in sleepers:
        io.write(root / "cgroup.procs", str(p.pid))
    io.write(root / "cgroup.procs", str(gone.pid))
    gone.wait()  # exited: its pid is listed no more, or gives ESRCH on the move
    first = delegate_cgroup_v2(root, io)
    second = delegate_cgroup_v2(root, io)
    result = {
        "moved": sorted(first.moved),
        "sleepers": sorted(p.pid for p in sleepers),
        "root_procs": (root / "cgroup.procs").read_text().split(),
        "init_procs": sorted(int(p) for p in (root / "init" / "cgroup.procs").read_text().split()),
        "second_moved": list(second.moved),
        "subtree": list(first.subtree_control),
    }
finally:
    for p in sleepers:
        p.kill()
        p.wait()
    time.sleep(0.1)
    for d in (root / "init", root):
        if d.exists():
            d.rmdir()
    subprocess.run(["umount", str(mnt)], check=True)
    mnt.rmdir()
print(json.dumps(result))
"""


def _has_cgroup2() -> bool:
    return "cgroup2" in Path("/proc/filesystems").read_text()


@pytest.mark.process
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount cgroup2")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_moves_real_processes_in_a_fresh_mount_namespace() -> None:
    if not _has_cgroup2() or not Path("/sys/fs/cgroup/unified").is_dir():
        pytest.skip("no cgroup2 hierarchy next to v1 here")
    result = run_unshared(["--mount", "--propagation", "private"], SCRIPT)
    assert result["moved"] == result["sleepers"]
    assert result["init_procs"] == result["sleepers"]
    assert result["root_procs"] == []
    assert result["second_moved"] == []
