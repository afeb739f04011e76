"""The images' /entrypoint.sh (COMPAT: a Helm chart runs `exec /entrypoint.sh`): it is helix-init.

The real script from images/, run as PID 1 with the venv's helix-init first
on PATH, as the images have it in /usr/local/bin.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.pid1 import BASE_PATH, HELIX_INIT, LOG_LINE, Pid1

pytestmark = pytest.mark.process

ENTRYPOINT = str(Path(__file__).resolve().parents[2] / "images" / "entrypoint.sh")
PATH = {"PATH": f"{HELIX_INIT.parent}:{BASE_PATH}"}


def _cmd_output(lines: list[str]) -> list[str]:
    return [line for line in lines if not LOG_LINE.match(line)]


def test_without_arguments_it_boots_and_runs_until_stopped(pid1: Pid1) -> None:
    marker = pid1.path("step-ran")
    pid1.step("10-step.sh", f'touch "{marker}"\n')
    running = pid1.start(env=PATH, program=ENTRYPOINT)
    running.wait_for_file(pid1.run_dir / "ready")

    assert marker.exists()
    assert pid1.command("health").stdout == "ready\n"
    running.signal(signal.SIGTERM)
    result = running.wait(15)
    assert result.code == 0, result.describe()


def test_arguments_are_the_cmd_argv_unchanged(pid1: Pid1) -> None:
    result = pid1.run(
        "sh", "-c", 'echo "$0|$1|$2"; exit 3', "zero", "one two", "*", env=PATH, program=ENTRYPOINT
    )

    assert result.code == 3, result.describe()
    assert _cmd_output(result.lines) == ["zero|one two|*"]


def test_one_shell_string_runs_through_bash_with_the_compat_switch(pid1: Pid1) -> None:
    line = 'for w in "one two" three; do echo "[$w]"; done; exit 4'

    with_switch = pid1.run(line, env={**PATH, "HELIX_INIT_CMD_SHELL": "1"}, program=ENTRYPOINT)
    without = pid1.run(line, env=PATH, program=ENTRYPOINT)

    assert with_switch.code == 4, with_switch.describe()
    assert _cmd_output(with_switch.lines) == ["[one two]", "[three]"]
    # Default: plain argv, as Docker does: the whole string is a program name.
    assert without.code == 127, without.describe()
    assert without.errors() == [f"CMD: cannot start {line}: No such file or directory"]


def test_env_as_pid1_is_the_cmd_not_the_operator_command(pid1: Pid1) -> None:
    result = pid1.run("env", env={**PATH, "MARKER": "42"}, program=ENTRYPOINT)

    assert result.code == 0, result.describe()
    assert "MARKER=42" in _cmd_output(result.lines)
