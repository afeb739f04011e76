"""Where boot time goes: `status` gives each stage's and step's start and duration, from exec.

The real init as PID 1, asked on its control socket (what `helix-init status
--json` prints) while the CMD runs, and through `helix-init status` itself.
"""

from __future__ import annotations

import itertools
import signal

import pytest

from tests.support.pid1 import HELIX_INIT, Pid1, init_status

pytestmark = pytest.mark.process


def test_status_gives_every_stage_and_step_its_start_and_duration(pid1: Pid1) -> None:
    pid1.step("10-first.sh", "echo one\n")
    pid1.step("20-builtin", f"#!/bin/sh\nexec {HELIX_INIT} step user\n")
    running = pid1.start_running()

    status = init_status(pid1.run_dir)
    shown = pid1.command("status")
    running.signal(signal.SIGTERM)
    assert running.wait(timeout=15).code == 0

    assert status["stage"] == "running"
    stages = status["timeline"]["stages"]
    assert [s["stage"] for s in stages] == [
        "startup",
        "preflight",
        "cont-init",
        "services",
        "running",
    ]
    for before, after in itertools.pairwise(stages):
        assert before["seconds"] >= 0 and after["start"] >= before["start"]
        assert abs(before["start"] + before["seconds"] - after["start"]) < 0.002
    assert stages[0]["seconds"] > 0  # the interpreter's start is counted too
    assert "seconds_so_far" in stages[-1]
    steps = status["timeline"]["steps"]
    assert [(s["step"], s["stage"], s["outcome"]) for s in steps] == [
        ("10-first.sh", "cont-init", "ok"),
        ("20-builtin", "cont-init", "ok"),
    ]
    cont_init = stages[2]
    for s in steps:
        assert cont_init["start"] <= s["start"] <= cont_init["start"] + cont_init["seconds"]
        assert s["start"] + s["seconds"] <= cont_init["start"] + cont_init["seconds"] + 0.002
    assert shown.code == 0, shown.describe()
    assert "boot: startup " in shown.stdout and "running " in shown.stdout
    assert "engine" not in status["timeline"]  # no services, no supervisord


def test_status_gives_supervisords_start_from_its_spawn_to_its_first_answer(pid1: Pid1) -> None:
    pid1.step("10-first.sh", "echo one\n")
    pid1.idle_service()
    running = pid1.start_running()

    status = init_status(pid1.run_dir)
    running.signal(signal.SIGTERM)
    assert running.wait(timeout=15).code == 0

    stages = {s["stage"]: s for s in status["timeline"]["stages"]}
    engine = status["timeline"]["engine"]
    assert engine["seconds"] > 0
    # spawned beside cont-init (it begins with preflight's end), answered before services ended
    assert stages["cont-init"]["start"] - 0.002 <= engine["start"]
    services_end = stages["services"]["start"] + stages["services"]["seconds"]
    assert engine["start"] + engine["seconds"] <= services_end + 0.002


def test_status_says_cont_init_while_a_step_runs(pid1: Pid1) -> None:
    marker = pid1.path("step-running")
    pid1.step("10-slow.sh", f'touch "{marker}"; sleep 60\n')
    running = pid1.start("true")
    running.wait_for_file(marker)

    status = init_status(pid1.run_dir)
    running.signal(signal.SIGTERM)
    assert running.wait(timeout=15).code == 0

    assert status["stage"] == "cont-init"  # was "preflight" through the whole stage
    assert status["timeline"]["steps"] == []  # none finished yet
