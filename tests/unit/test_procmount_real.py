"""The hide-proc step's /proc remount through mount(2), against util-linux's, in a namespace."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.unshared import run_unshared

SCRIPT = r"""
import json, subprocess, sys
from helix_init.builtin.hideproc import remount_proc

theirs = sys.argv[1]
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
subprocess.run(["mount", "-t", "proc", "-o", "nosuid,nodev,noexec", "proc", theirs], check=True)

def seen(point):
    line = [l for l in open("/proc/self/mountinfo") if l.split()[4] == point][-1].split()
    dash = line.index("-")
    return {"mount": sorted(line[5].split(",")), "super": sorted(line[dash + 3].split(","))}

before = seen("/proc")
code, why = remount_proc("invisible")
subprocess.run(["mount", "-o", "remount,hidepid=invisible", theirs], check=True)
print(json.dumps({"code": code, "why": why, "before": before, "ours": seen("/proc"),
                  "theirs": seen(theirs), "ctypes": "ctypes" in sys.modules}))
"""


@pytest.mark.process
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for mount and PID namespaces")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")
def test_proc_is_remounted_as_util_linux_s_mount_leaves_it(tmp_path: Path) -> None:
    theirs = tmp_path / "proc"
    theirs.mkdir()
    r = run_unshared(["--mount", "--pid", "--fork", "--mount-proc"], SCRIPT, str(theirs))
    assert (r["code"], r["why"]) == (0, "")
    assert r["before"]["mount"] == ["nodev", "noexec", "nosuid", "relatime", "rw"]
    assert "hidepid=invisible" not in r["before"]["super"]
    assert r["ours"]["mount"] == r["before"]["mount"]  # the per-mount flags kept
    assert "hidepid=invisible" in r["ours"]["super"]
    assert r["ours"] == r["theirs"]  # exactly what `mount -o remount,hidepid=invisible` leaves
    assert r["ctypes"]  # the syscall, not the command, did it
