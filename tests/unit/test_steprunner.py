"""run_folder: failure policy, timeouts and budget, as scenario tables (fake runner and clock)."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from helix_init.dropins import Step
from helix_init.logsink import Log
from helix_init.steprunner import StepResult, run_folder


@dataclass
class FakeClock:
    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now


@dataclass
class FakeRunner:
    """Each step 'takes' seconds[name] (default 1) and ends with codes[name] (default 0)."""

    clock: FakeClock
    codes: dict[str, int | str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    stop_during: str | None = None
    stop: asyncio.Event | None = None
    calls: list[tuple[str, float]] = field(default_factory=list)

    async def run(self, step: Step, timeout: float) -> StepResult:
        self.calls.append((step.name, timeout))
        took = self.seconds.get(step.name, 1.0)
        outcome = self.codes.get(step.name, 0)
        if self.stop is not None and step.name == self.stop_during:
            self.stop.set()
        if outcome == "timeout" or (timeout and took > timeout):
            self.clock.now += timeout
            return StepResult(step, -9, timeout, ("last words",), timed_out=True)
        self.clock.now += took
        assert isinstance(outcome, int)
        return StepResult(step, outcome, took, (f"{step.name} says bye",))


def step(name: str, optional: bool = False, timeout: float | None = None) -> Step:
    return Step(name, Path("/etc/cont-init.d") / name, "sh", optional, timeout)


def run(runner: FakeRunner, steps: list[Step], **kwargs: Any) -> tuple[Any, list[str]]:
    out = io.BytesIO()
    kwargs = {"stage": "cont-init", "default_timeout": 300.0, "behaviour_if_fails": 2, **kwargs}
    outcome = asyncio.run(run_folder(runner, steps, Log(out), **kwargs))  # type: ignore[arg-type]
    lines = [line.split("] ", 1)[1] for line in out.getvalue().decode().splitlines()]
    return outcome, lines


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr("helix_init.steprunner.time", SimpleNamespace(monotonic=clock.monotonic))
    return clock


FOUR = [step("10-a"), step("20-b"), step("30-c", optional=True), step("40-d")]


@pytest.mark.parametrize(
    ("codes", "behaviour", "ran", "failed", "lines"),
    [
        ({}, 2, ["10-a", "20-b", "30-c", "40-d"], None, []),
        (
            {"20-b": 3},
            2,
            ["10-a", "20-b"],
            "20-b",
            [
                "ERROR: cont-init step 20-b failed: exit code 3",
                "ERROR: last output lines of 20-b:",
                "ERROR:   | 20-b says bye",
            ],
        ),
        (
            {"20-b": "timeout"},
            2,
            ["10-a", "20-b"],
            "20-b",
            [
                "ERROR: cont-init step 20-b failed: timed out after 300.0s "
                "(its process group was killed)",
                "ERROR: last output lines of 20-b:",
                "ERROR:   | last words",
            ],
        ),
        (
            {"30-c": 1},
            2,
            ["10-a", "20-b", "30-c", "40-d"],
            None,
            ["WARNING: cont-init step 30-c failed (exit code 1); continuing"],
        ),
        (
            {"20-b": 3},
            1,
            ["10-a", "20-b", "30-c", "40-d"],
            None,
            ["WARNING: cont-init step 20-b failed (exit code 3); continuing"],
        ),
        ({"20-b": 3}, 0, ["10-a", "20-b", "30-c", "40-d"], None, []),
        (
            {"30-c": 1, "40-d": 2},
            0,
            ["10-a", "20-b", "30-c", "40-d"],
            None,
            ["WARNING: cont-init step 30-c failed (exit code 1); continuing"],
        ),
    ],
)
def test_failure_policy(
    clock: FakeClock,
    codes: dict[str, int | str],
    behaviour: int,
    ran: list[str],
    failed: str | None,
    lines: list[str],
) -> None:
    runner = FakeRunner(clock, codes)

    outcome, log = run(runner, FOUR, behaviour_if_fails=behaviour)

    assert [name for name, _ in runner.calls] == ran
    assert (outcome.failed.step.name if outcome.failed else None) == failed
    assert [r.step.name for r in outcome.results] == ran
    assert log == lines


def test_a_step_timeout_overrides_the_default(clock: FakeClock) -> None:
    runner = FakeRunner(clock)

    run(runner, [step("10-a"), step("20-b", timeout=5), step("30-c", timeout=0)])

    assert runner.calls == [("10-a", 300.0), ("20-b", 5.0), ("30-c", 0.0)]


def test_a_budget_bounds_each_step_and_skips_what_does_not_fit(clock: FakeClock) -> None:
    runner = FakeRunner(clock, seconds={"10-a": 10, "20-b": 10, "30-c": 10})
    steps = [step("10-a"), step("20-b", timeout=0), step("30-c"), step("40-d")]

    outcome, log = run(runner, steps, stage="cont-finish", behaviour_if_fails=1, budget=25)

    assert runner.calls == [("10-a", 25.0), ("20-b", 15.0), ("30-c", 5.0)]
    assert outcome.failed is None
    assert log == [
        "WARNING: cont-finish step 30-c failed (timed out after 5.0s "
        "(its process group was killed)); continuing",
        "WARNING: cont-finish: time budget of 25s used up; skipping 40-d",
    ]


def test_a_stop_requested_before_skips_everything(clock: FakeClock) -> None:
    runner = FakeRunner(clock)
    stop = asyncio.Event()
    stop.set()

    outcome, log = run(runner, FOUR, stop_requested=stop)

    assert runner.calls == []
    assert outcome.failed is None
    assert log == ["cont-init: stop requested, skipping 10-a and later steps"]


def test_a_step_ended_by_a_stop_request_is_not_a_failure(clock: FakeClock) -> None:
    stop = asyncio.Event()
    runner = FakeRunner(clock, codes={"20-b": -15}, stop_during="20-b", stop=stop)

    outcome, log = run(runner, FOUR, stop_requested=stop)

    assert [name for name, _ in runner.calls] == ["10-a", "20-b"]
    assert outcome.failed is None
    assert log == ["cont-init: stop requested, skipping 30-c and later steps"]


@pytest.mark.parametrize(
    ("result", "text"),
    [
        (StepResult(step("a"), 0, 1.0, ()), "exit code 0"),
        (StepResult(step("a"), 2, 1.0, ()), "exit code 2"),
        (StepResult(step("a"), -9, 1.0, ()), "killed by signal SIGKILL"),
        (StepResult(step("a"), -15, 2.5, (), timed_out=True), "timed out after 2.5s"),
        (
            StepResult(step("a"), None, 0.0, (), error="cannot start a: nope"),
            "cannot start a: nope",
        ),
    ],
)
def test_describe(result: StepResult, text: str) -> None:
    assert result.describe().startswith(text)
    assert result.ok is (text == "exit code 0")


def test_the_heartbeat_and_the_deadline_wake_a_running_step() -> None:
    from helix_init.steprunner import next_wake

    assert next_wake(now=10.0, started=10.0, heartbeat=60, deadline=None) == 70.0
    assert next_wake(now=70.01, started=10.0, heartbeat=60, deadline=None) == 130.0
    assert next_wake(now=10.0, started=10.0, heartbeat=60, deadline=40.0) == 40.0
    assert next_wake(now=10.0, started=10.0, heartbeat=0, deadline=None) is None


def test_sourced_steps_have_their_own_default_timeout() -> None:
    from pathlib import Path

    from helix_init.dropins import Step
    from helix_init.steprunner import step_timeout

    sh = Step("40-start-dockerd.sh", Path("/x"), "sh", False, None)
    program = Step("30-program", Path("/y"), "exec", False, None)
    header = Step("50-x.sh", Path("/z"), "sh", False, 9.0)
    assert [step_timeout(s, 300, 0) for s in (sh, program, header)] == [0, 300, 9.0]
