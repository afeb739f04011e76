"""Today's GOW-style cont-init scripts run unedited (COMPAT): prelude, functions, return, exit 0.

The fixtures in tests/fixtures/gow are copied as they are; only the
HELIX_INIT_STEP_PRELUDE setting differs between the tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.pid1 import Pid1

pytestmark = pytest.mark.process

GOW = Path(__file__).resolve().parents[1] / "fixtures" / "gow"
STEP_FAILED = 79
SHOW = (
    'echo "cmd GOW_READY=$GOW_READY BEFORE_EXIT=$BEFORE_EXIT '
    'AFTER_EXIT=${AFTER_EXIT-unset} EXTRA=${EXTRA-unset} JOINED=$JOINED"'
)


def _install(pid1: Pid1) -> Path:
    shutil.copytree(GOW / "cont-init.d", pid1.cont_init, dirs_exist_ok=True)
    return GOW / "bash-lib" / "utils.sh"


def test_gow_scripts_run_in_order_and_their_exports_reach_the_cmd(pid1: Pid1) -> None:
    prelude = _install(pid1)

    result = pid1.run("sh", "-c", SHOW, env={"HELIX_INIT_STEP_PRELUDE": str(prelude)})

    assert result.code == 0, result.describe()
    assert result.texts("10-setup.sh") == ["[GOW] setting up"]
    assert result.texts("20-optional-extra.sh") == ["[GOW] no extra wanted; skipping"]
    assert result.texts("30-done-early.sh") == ["[GOW] nothing more to do"]
    # A function defined by 10 is called by 40; it calls the prelude's gow_log.
    assert result.texts("40-uses-earlier.sh") == ["[GOW] announce: GOW_READY=yes BEFORE_EXIT=yes"]
    assert "cmd GOW_READY=yes BEFORE_EXIT=yes AFTER_EXIT=unset EXTRA=unset JOINED=a,b,c" in (
        result.lines
    )
    # Traceable: who exported what, who defined what; prelude functions are not news.
    assert result.has("step 10-setup.sh exported GOW_READY")
    assert result.has("step 10-setup.sh defined announce (for later *.sh steps)")
    assert not result.has("defined gow_log")
    assert result.has("step 40-uses-earlier.sh exported JOINED")
    plan = pid1.command("plan", env={"HELIX_INIT_STEP_PRELUDE": str(prelude)})
    assert f"  prelude before each *.sh step: {prelude}" in plan.stdout.splitlines()


def test_without_the_prelude_the_failure_names_the_missing_function(pid1: Pid1) -> None:
    _install(pid1)

    result = pid1.run("sh", "-c", SHOW)

    assert result.code == STEP_FAILED, result.describe()
    assert "cmd" not in result.stdout
    failure = [e for e in result.errors() if e.startswith("cont-init step 10-setup.sh failed")]
    assert failure == [
        "cont-init step 10-setup.sh failed: exit code 127; command not found: gow_log "
        "(a function from a helper library? list it in HELIX_INIT_STEP_PRELUDE)"
    ], result.describe()
    # bash's own message, with the script and line, is in the step's output too.
    assert any(
        "10-setup.sh: line 3: gow_log: command not found" in t for t in result.texts("10-setup.sh")
    ), result.describe()


def test_a_probe_for_a_missing_command_is_no_failure(pid1: Pid1) -> None:
    pid1.step("10-probe.sh", "nvidia-smi >/dev/null 2>&1 || echo 'no GPU'\n")

    result = pid1.run("true")

    assert result.code == 0, result.describe()
    assert result.texts("10-probe.sh") == ["no GPU"]
    assert not result.has("command not found")


def test_prelude_exports_are_recorded_once_under_the_prelude(pid1: Pid1) -> None:
    lib = pid1.path("lib.sh")
    lib.write_text("export LIB_VERSION=7\nlib_fn() { echo lib; }\n")
    pid1.step("10-a.sh", 'echo "a $LIB_VERSION $(lib_fn)"\n')
    pid1.step("20-b.sh", 'echo "b $LIB_VERSION $(lib_fn)"\n')

    result = pid1.run(
        "sh", "-c", 'echo "cmd LIB_VERSION=$LIB_VERSION"', env={"HELIX_INIT_STEP_PRELUDE": str(lib)}
    )

    assert result.code == 0, result.describe()
    assert result.texts("10-a.sh") == ["a 7 lib"]
    assert result.texts("20-b.sh") == ["b 7 lib"]
    assert "cmd LIB_VERSION=7" in result.lines
    exported = [t for t in result.init_texts() if "exported" in t]
    assert exported == ["step prelude exported LIB_VERSION"], result.describe()


def test_a_missing_prelude_file_stops_before_anything_runs(pid1: Pid1) -> None:
    marker = pid1.path("ran")
    pid1.step("10-a.sh", f'touch "{marker}"\n')

    result = pid1.run("true", env={"HELIX_INIT_STEP_PRELUDE": "/nonexistent/utils.sh"})

    assert result.code == 78, result.describe()
    assert not marker.exists()
    assert "HELIX_INIT_STEP_PRELUDE: /nonexistent/utils.sh: no such readable file" in (
        result.stdout + result.stderr
    )


@pytest.mark.parametrize(
    "step10",
    [
        pytest.param("env() { echo shadow; }\ndeclare() { :; }\nexport A=1\n", id="shadowed-env"),
        pytest.param("set -C\nexport A=1\n", id="noclobber"),
        pytest.param("trap 'rm -f /tmp/never-there' EXIT\nexport A=1\n", id="own-exit-trap"),
        pytest.param("set -eu\nexport A=1\n", id="set-eu"),
    ],
)
def test_what_a_step_leaves_behind_never_loses_its_exports(pid1: Pid1, step10: str) -> None:
    pid1.step("10-odd.sh", step10)
    pid1.step("20-next.sh", 'echo "A=$A PATH=${PATH:+set}"\n')

    result = pid1.run("sh", "-c", 'echo "cmd A=$A"')

    assert result.code == 0, result.describe()
    assert result.texts("20-next.sh") == ["A=1 PATH=set"]
    assert "cmd A=1" in result.lines


def test_functions_written_under_extglob_reach_later_steps(pid1: Pid1) -> None:
    pid1.step(
        "10-define.sh",
        "shopt -s extglob\n"
        "isnum() { case $1 in +([0-9])) return 0 ;; esac; return 1; }\n"
        "later() { echo later; }\n",
    )
    pid1.step("20-use.sh", "isnum 42 && ! isnum 4x && later\n")

    result = pid1.run("true")

    assert result.code == 0, result.describe()
    assert result.texts("20-use.sh") == ["later"]


def test_a_prelude_that_exits_fails_the_steps_instead_of_skipping_them(pid1: Pid1) -> None:
    lib = pid1.path("lib.sh")
    lib.write_text("exit 0\n")
    marker = pid1.path("ran")
    pid1.step("10-a.sh", f'touch "{marker}"\n')

    result = pid1.run("true", env={"HELIX_INIT_STEP_PRELUDE": str(lib)})

    assert result.code == STEP_FAILED, result.describe()
    assert not marker.exists()
    assert "prelude: sourcing it did not end cleanly (exit code 0)" in result.warnings()
    assert result.texts("10-a.sh") == [
        "helix-init: a prelude file ended the shell before the step ran"
    ]
