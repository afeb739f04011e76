"""Built-in steps run in a fork of the init: no new interpreter, every guarantee of a step.

A drop-in whose one command is `exec helix-init step NAME` is run as NAME in
a forked child of the real init (PID 1 of its own namespace). Here: its
output prefixed with the step's name, its exit code under the failure
policy; its exports reaching the CMD are test_user_setup.py's (whose user
step is such a drop-in), its own session, group and clean descriptors
tests/unit/test_reaper.py's. That no interpreter started is read
from PYTHONPROFILEIMPORTTIME: a fresh interpreter lists `site` and
`encodings` among its imports on the step's output; a fork imports only
what the step itself needs.
"""

from __future__ import annotations

import pytest

from tests.support.pid1 import HELIX_INIT, Pid1

pytestmark = pytest.mark.process


def _builtin(name: str) -> str:
    return f"#!/bin/sh\n# a built-in step\nexec {HELIX_INIT} step {name}\n"


def test_a_builtin_step_is_a_fork_of_the_init_not_a_new_interpreter(pid1: Pid1) -> None:
    pid1.step("05-user", _builtin("user"))

    result = pid1.run("true", env={"PYTHONPROFILEIMPORTTIME": "1"})

    assert result.code == 0, result.describe()
    assert result.has("step 05-user: starting (built-in user, in a fork of the init)")
    assert "PUID, PGID and UNAME are unset: no desktop user to set up" in result.texts("05-user")
    fresh = [t for t in result.texts("05-user") if t.endswith(("| site", "| encodings"))]
    assert fresh == [], "the step started an interpreter of its own"


# What a step's fork must not import unless its own module needs it: every
# step's fork imports builtin/level.py first, and these were ~20 ms of each of
# a level's nine forks (preflight alone needs facts, storage and ctypes); a
# step that is off (localhost-forward without HELIX_LOCALHOST_FORWARD) loads
# nothing of what it would do.
NOT_FOR_EVERY_STEP = {
    "shutil", "ctypes", "pyroute2", "helix_init.dind.facts", "helix_init.dind.cgroups",
    "helix_init.dind.storage", "helix_init.sibling.localhost",
}  # fmt: skip


def test_a_builtin_step_imports_what_it_needs_not_what_every_step_might(pid1: Pid1) -> None:
    pid1.step("05-user", _builtin("user"))
    pid1.step("06-revdial", _builtin("revdial"))
    pid1.step("07-forward", _builtin("localhost-forward"))

    result = pid1.run("true", env={"PYTHONPROFILEIMPORTTIME": "1"})

    assert result.code == 0, result.describe()
    for step in ("05-user", "06-revdial", "07-forward"):
        lines = [t for t in result.texts(step) if t.startswith("import time:")]
        assert lines, f"{step}: no import lines (PYTHONPROFILEIMPORTTIME not passed on?)"
        names = {t.rsplit("|", 1)[1].strip() for t in lines}
        assert names & NOT_FOR_EVERY_STEP == set(), step


def test_the_same_drop_in_with_anything_more_runs_as_written(pid1: Pid1) -> None:
    pid1.step("05-user", f"#!/bin/sh\necho via the shell\nexec {HELIX_INIT} step user\n")

    result = pid1.run("true")

    assert result.code == 0, result.describe()
    assert result.texts("05-user")[0] == "via the shell"
    assert not result.has("in a fork of the init")


def test_a_failing_builtin_step_stops_the_boot_as_any_step_does(pid1: Pid1) -> None:
    pid1.step("10-bad", _builtin("no-such-step"))
    later = pid1.path("later")
    pid1.step("20-later.sh", f'touch "{later}"\n')

    result = pid1.run("true")

    assert result.code == 79, result.describe()  # Exit.STEP_FAILED
    assert result.texts("10-bad")[0].startswith("helix-init step: unknown step 'no-such-step'")
    assert "cont-init step 10-bad failed: exit code 64" in result.errors()
    assert not later.exists()
