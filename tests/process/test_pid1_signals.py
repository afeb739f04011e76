"""Signals to PID 1: TERM/INT stop gracefully, HUP & co. reach the CMD, exit codes pass through."""

from __future__ import annotations

import signal

import pytest
from conftest import Pid1

pytestmark = pytest.mark.process

GRACE = 5.0


def _long_cmd(marker: str) -> tuple[str, ...]:
    # The marker says the init has reached stage 3 (so its handlers are in
    # place); `sleep & wait` keeps the shell responsive to trapped signals.
    return ("sh", "-c", f'touch "{marker}"; sleep 60 & wait $!')


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_stop_signal_is_graceful_and_runs_cont_finish(pid1: Pid1, sig: signal.Signals) -> None:
    finished = pid1.path("finish-ran")
    pid1.finish_step("10-record.sh", f'echo "cont-finish ran" > "{finished}"\n')
    marker = pid1.path("cmd-running")
    running = pid1.start(*_long_cmd(str(marker)), env={"HELIX_INIT_CMD_GRACETIME": f"{GRACE:g}"})
    running.wait_for_file(marker)

    running.signal(sig)
    result = running.wait(timeout=GRACE + 10)

    assert result.code == 0, result.describe()
    assert result.has(f"got {sig.name}: graceful shutdown")
    assert finished.read_text() == "cont-finish ran\n"
    assert not result.has("did not stop within"), result.describe()
    assert result.errors() == [] and result.warnings() == []


def test_cmd_that_ignores_term_is_killed_after_its_grace_time(pid1: Pid1) -> None:
    marker = pid1.path("cmd-running")
    cmd = f'trap "" TERM; touch "{marker}"; while :; do sleep 0.1; done'
    running = pid1.start("sh", "-c", cmd, env={"HELIX_INIT_CMD_GRACETIME": "0.5"})
    running.wait_for_file(marker)

    running.signal(signal.SIGTERM)
    result = running.wait(timeout=15)

    assert result.code == 0, result.describe()
    assert result.warnings() == ["CMD did not stop within 0.5s; killing it"]


@pytest.mark.parametrize(
    "sig",
    [signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH],
    ids=lambda s: s.name,
)
def test_forwarded_signal_reaches_the_cmd(pid1: Pid1, sig: signal.Signals) -> None:
    got = pid1.path("got")
    marker = pid1.path("cmd-running")
    name = sig.name.removeprefix("SIG")
    cmd = f'trap \'echo {name} > "{got}"; exit 42\' {name}; touch "{marker}"; sleep 60 & wait $!'
    running = pid1.start("sh", "-c", cmd)
    running.wait_for_file(marker)

    running.signal(sig)
    result = running.wait(timeout=15)

    assert got.read_text() == f"{name}\n"
    assert result.code == 42, result.describe()  # the trap's exit code ends the container
    assert result.has("CMD ended with exit code 42")


def test_cmd_exit_code_is_the_container_exit_code(pid1: Pid1) -> None:
    result = pid1.run("sh", "-c", "exit 3")

    assert result.code == 3, result.describe()
    assert result.has("CMD ended with exit code 3; stopping the container")


def test_cmd_killed_by_sigkill_gives_137(pid1: Pid1) -> None:
    result = pid1.run("sh", "-c", "kill -KILL $$")

    assert result.code == 137, result.describe()


def test_term_during_cont_init_skips_the_rest_and_exits_0(pid1: Pid1) -> None:
    marker = pid1.path("step-running")
    later = pid1.path("later-step-ran")
    pid1.step("10-slow.sh", f'touch "{marker}"; sleep 60\n')
    pid1.step("20-later.sh", f'touch "{later}"\n')
    running = pid1.start("true")
    running.wait_for_file(marker)

    running.signal(signal.SIGTERM)
    result = running.wait(timeout=15)

    assert result.code == 0, result.describe()
    assert not later.exists()
    assert result.has("cont-init: stop requested, skipping 20-later.sh and later steps")
    assert not result.has("CMD started")
