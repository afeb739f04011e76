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
