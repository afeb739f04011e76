"""Timeline: stage and step times on a fake clock, from the process's exec."""

from __future__ import annotations

import asyncio

from helix_init import control
from helix_init.timeline import Stage, Timeline, seconds_since_exec, summary


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_stages_and_steps_are_timed_from_exec() -> None:
    clock = Clock(1000.0)
    tl = Timeline(clock, since_exec=0.15)  # the interpreter and imports took 0.15 s
    tl.enter(Stage.PREFLIGHT)
    clock.at = 1000.05
    tl.enter(Stage.CONT_INIT)
    tl.step(Stage.CONT_INIT, "10-a", started=1000.05, seconds=0.3, outcome="ok")
    clock.at = 1000.45
    tl.enter(Stage.SERVICES)
    clock.at = 1001.0

    assert tl.stage is Stage.SERVICES
    assert tl.to_json() == {
        "stages": [
            {"stage": "startup", "start": 0.0, "seconds": 0.15},
            {"stage": "preflight", "start": 0.15, "seconds": 0.05},
            {"stage": "cont-init", "start": 0.2, "seconds": 0.4},
            {"stage": "services", "start": 0.6, "seconds_so_far": 0.55},
        ],
        "steps": [
            {"stage": "cont-init", "step": "10-a", "start": 0.2, "seconds": 0.3, "outcome": "ok"}
        ],
    }
    assert summary(tl.to_json()) == (
        "boot: startup 0.15s, preflight 0.05s, cont-init 0.40s, services 0.55s so far"
    )


def test_the_engines_first_start_is_kept_and_a_later_one_is_not() -> None:
    clock = Clock(1000.0)
    tl = Timeline(clock, since_exec=0.15)
    assert "engine" not in tl.to_json()  # no services: no supervisord
    tl.engine(started=1000.05, seconds=0.1)
    tl.engine(started=1003.0, seconds=0.2)  # after a death: not boot time

    assert tl.to_json()["engine"] == {"start": 0.2, "seconds": 0.1}


def test_this_process_began_a_moment_ago() -> None:
    assert 0.0 < seconds_since_exec() < 24 * 3600


def test_control_requests_go_to_their_handler_and_an_unknown_one_is_answered() -> None:
    async def status(request: dict[str, object]) -> dict[str, object]:
        return {"ok": True, "asked": request["cmd"]}

    requests = {"status": status}

    assert asyncio.run(control.dispatch(requests, {"cmd": "status"})) == {
        "ok": True,
        "asked": "status",
    }
    assert asyncio.run(control.dispatch(requests, {"cmd": "reboot"})) == {
        "ok": False,
        "error": "unknown request 'reboot'",
    }
    assert asyncio.run(control.dispatch(requests, {"cmd": ["status"]}))["ok"] is False
