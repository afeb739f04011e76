"""The cgroups step's bind remount through mount(2), against util-linux's, in a mount namespace."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.unshared import run_unshared

SCRIPT = r"""
import json, subprocess, sys
from helix_init.builtin.level import run_command
from helix_init.dind.cgroups import make_mounts_shared, remount_rw
from helix_init.dind.storage import parse_mountinfo

ours, theirs = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
for point in (ours, theirs):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,nosuid,nodev,noexec,relatime", "t", point],
                   check=True)

def options(point):
    text = open("/proc/self/mountinfo").read()
    return sorted(next(m for m in parse_mountinfo(text) if m.mount_point == point).options)

before = options(ours)
remount_rw(next(m for m in parse_mountinfo(open("/proc/self/mountinfo").read())
                if m.mount_point == ours), run_command)
subprocess.run(["mount", "-o", "remount,rw,bind", theirs], check=True)
make_mounts_shared()
root = next(l for l in open("/proc/self/mountinfo") if l.split()[4] == "/")
print(json.dumps({"before": before, "ours": options(ours), "theirs": options(theirs),
                  "root_shared": "shared:" in root, "ctypes": "ctypes" in sys.modules}))
"""


@pytest.mark.process
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a mount namespace")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")
def test_the_remount_leaves_the_mount_as_util_linux_s_mount_does(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    r = run_unshared(["--mount"], SCRIPT, str(ours), str(theirs))
    assert r["before"] == ["nodev", "noexec", "nosuid", "relatime", "ro"]
    assert r["ours"] == ["nodev", "noexec", "nosuid", "relatime", "rw"]
    assert r["ours"] == r["theirs"]  # exactly what `mount -o remount,rw,bind` leaves
    assert r["root_shared"]  # --make-rshared / through mount(2)
    assert r["ctypes"]  # the syscall, not the command, did it
