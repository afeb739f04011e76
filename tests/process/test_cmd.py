"""The CMD: how it is started, as whom, what it sees, and what the log around it looks like."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.pid1 import LOG_LINE, Pid1, wait_until

pytestmark = pytest.mark.process


def test_cmd_runs_as_the_configured_user_steps_as_root(pid1: Pid1) -> None:
    pid1.step("10-who.sh", 'echo "step runs as $(id -un)"\n')

    result = pid1.run(
        "sh",
        "-c",
        'echo "cmd runs as $(id -un) uid $(id -u) HOME=$HOME USER=$USER"',
        env={"HELIX_INIT_CMD_USER": "nobody"},
    )

    assert result.code == 0, result.describe()
    assert result.texts("10-who.sh") == ["step runs as root"]
    assert "cmd runs as nobody uid 65534 HOME=/nonexistent USER=nobody" in result.lines


def test_a_cmd_that_cannot_be_found_gives_127_and_one_line(pid1: Pid1) -> None:
    result = pid1.run("no-such-program", "--flag")

    assert result.code == 127, result.describe()
    assert result.errors() == ["CMD: cannot start no-such-program: No such file or directory"]


def test_double_dash_separates_the_cmd_from_helix_init_commands(pid1: Pid1) -> None:
    result = pid1.run("--", "sh", "-c", "echo check is just an argument here")

    assert result.code == 0, result.describe()
    assert "check is just an argument here" in result.lines


def test_cmd_shell_compat_runs_one_string_through_bash(pid1: Pid1) -> None:
    result = pid1.run(
        "echo first && [[ -n bash ]] && echo second", env={"HELIX_INIT_CMD_SHELL": "1"}
    )

    assert result.code == 0, result.describe()
    assert [line for line in result.lines if not LOG_LINE.match(line)] == ["first", "second"]


def test_without_a_cmd_the_init_runs_until_told_to_stop(pid1: Pid1) -> None:
    running = pid1.start()
    ready = pid1.run_dir / "ready"
    running.wait_for_file(ready)
    assert pid1.command("health").stdout == "ready\n"

    running.signal(signal.SIGTERM)
    result = running.wait(timeout=15)

    assert result.code == 0, result.describe()
    assert not ready.exists()
    assert pid1.command("health").code == 1


def test_every_line_but_the_cmds_own_is_timestamped_and_prefixed(pid1: Pid1) -> None:
    pid1.step("10-talk.sh", "echo from a step\necho to stderr >&2\nprintf 'no newline'\n")
    pid1.step("20-fails.sh", "# helix-init: optional\necho failing; exit 1\n")
    pid1.finish_step("10-bye.sh", "echo from cont-finish\n")

    result = pid1.run("sh", "-c", "echo cmd-out one; echo cmd-out two >&2; echo cmd-out three")

    assert result.code == 0, result.describe()
    cmd_lines = [line for line in result.lines if line.startswith("cmd-out ")]
    assert cmd_lines == ["cmd-out one", "cmd-out three"]
    assert result.stderr == "cmd-out two\n"
    others = [line for line in result.lines if not line.startswith("cmd-out ")]
    assert len(others) > 10
    assert [line for line in others if not LOG_LINE.match(line)] == []
    assert result.texts("10-talk.sh") == ["from a step", "to stderr", "no newline"]
    assert result.texts("10-bye.sh") == ["from cont-finish"]
    log_file = (pid1.log_dir / "init.log").read_text().splitlines()
    assert log_file == others  # the init's own log has the same lines


def test_not_pid_1_it_runs_as_a_child_subreaper_and_sweeps_orphans(pid1: Pid1) -> None:
    orphan_pid = pid1.path("orphan.pid")
    # The orphan's parent exits at once, so the orphan is re-parented to us.
    cmd = f'(sleep 60 & echo $! > "{orphan_pid}"); exit 7'
    result = pid1.run("sh", "-c", cmd, pid1=False)

    orphan = int(orphan_pid.read_text())
    try:
        assert result.code == 7, result.describe()
        assert any(
            t.startswith("not PID 1 (pid ")
            and t.endswith("running as child subreaper for our descendants")
            for t in result.init_texts()
        ), result.describe()
        assert result.has("sending TERM to the remaining processes")
        wait_until(lambda: not _is_sleep(orphan), 5, "the orphan to be gone")
    finally:
        if _is_sleep(orphan):
            os.kill(orphan, signal.SIGKILL)


def _is_sleep(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return "(sleep)" in stat and " Z " not in stat


def test_env_forms_that_name_no_service_are_the_cmd_even_when_not_pid_1(pid1: Pid1) -> None:
    bare = pid1.run("env", env={"MARKER": "7"}, pid1=False)
    assignment = pid1.run("env", "FOO=1", "sh", "-c", 'echo "FOO=$FOO"', pid1=False)

    assert bare.code == 0, bare.describe()
    assert "MARKER=7" in bare.lines
    assert assignment.code == 0, assignment.describe()
    assert "FOO=1" in assignment.lines
