"""Unit: the supervision table driven by scripted events and a fake clock (honcho's style).

Each test plays the part of the adapter: it feeds an event, checks the state
and the effects asked for, advances the fake clock, and feeds the next event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from helix_init.services.backoff import RestartClock
from helix_init.services.machine import (
    ACTIONS,
    FINISH_DOWN,
    Do,
    Effect,
    Event,
    Machine,
    Policy,
    RunEnd,
    Verdict,
)
from helix_init.services.spec import Backoff
from helix_init.services.state import State

S, E = State, Event
FAST = Backoff(initial=0.001, max=0.001, jitter=0.0, reset_after=60.0)
DOUBLING = Backoff(initial=0.5, max=30.0, jitter=0.0, reset_after=60.0)
CRASH = RunEnd(Verdict.FAILED, status=1)
CLEAN = RunEnd(Verdict.OK, status=0)
KILL9 = RunEnd(Verdict.KILLED, signal=9)


@dataclass
class FakeClock:
    t: float = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def machine(
    backoff: Backoff = DOUBLING, clock: FakeClock | None = None, **policy: object
) -> tuple[Machine, FakeClock]:
    fake = clock or FakeClock()
    m = Machine(Policy(**policy), RestartClock(backoff, random.Random(0)), fake)  # type: ignore[arg-type]
    return m, fake


def dos(effects: list[Effect]) -> list[Do]:
    return [e.do for e in effects]


def to_running(m: Machine, ready: bool = True) -> None:
    assert dos(m.handle(E.BEGIN)) == [Do.GATE]
    assert dos(m.handle(E.GATE_OPEN)) == [Do.SPAWN]
    assert dos(m.handle(E.SPAWNED, why="pid 42")) == [Do.WATCH]
    assert m.state is S.STARTING
    if ready:
        assert dos(m.handle(E.READY)) == [Do.WATCH]  # health, stop file, exit
        assert m.state is S.READY and m.ready


def crash_and_retry(m: Machine, clock: FakeClock, end: RunEnd = CRASH, ran: float = 0.1) -> float:
    clock.advance(ran)
    (sleep,) = m.handle(E.EXITED, end=end)
    assert sleep.do is Do.SLEEP and m.state is S.BACKOFF
    clock.advance(sleep.delay)
    assert dos(m.handle(E.RETRY)) == [Do.GATE]
    assert dos(m.handle(E.GATE_OPEN)) == [Do.SPAWN]
    assert dos(m.handle(E.SPAWNED)) == [Do.WATCH]
    return sleep.delay


def test_start_ready_crash_backoff_and_back() -> None:
    m, clock = machine()
    to_running(m)
    delays = [crash_and_retry(m, clock) for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert m.restarts == 8
    assert m.reason == "restart #8" or m.state is S.STARTING


def test_ten_thousand_crashes_keep_restarting_at_the_cap() -> None:
    m, clock = machine(FAST)
    to_running(m)
    delays = [crash_and_retry(m, clock) for _ in range(10_500)]
    assert m.restarts == 10_500
    assert max(delays) == min(delays) == 0.001
    assert m.state is S.STARTING


def test_next_retry_is_on_the_fake_clock() -> None:
    m, clock = machine()
    to_running(m)
    m.handle(E.EXITED, end=CRASH)
    assert m.next_retry_at == clock.t + 0.5
    m.handle(E.RETRY)
    assert m.next_retry_at is None


def test_a_long_run_resets_the_backoff() -> None:
    m, clock = machine()
    to_running(m)
    for _ in range(4):
        crash_and_retry(m, clock)
    assert crash_and_retry(m, clock, ran=61.0) == 0.5


def test_budget_exhausted_gives_up_and_start_gives_it_a_new_budget() -> None:
    m, clock = machine(max_restarts=2)
    to_running(m)
    crash_and_retry(m, clock)
    crash_and_retry(m, clock)
    (give_up,) = m.handle(E.EXITED, end=CRASH)
    assert give_up == Effect(Do.GIVE_UP, why="restart budget of 2 used up (exit status 1)")
    assert m.state is S.FAILED and not m.ready
    assert dos(m.handle(E.START)) == [Do.GATE]
    assert m.clock.failures == 0


@pytest.mark.parametrize(
    ("restart", "end", "state"),
    [
        ("never", CRASH, S.EXITED),
        ("never", CLEAN, S.EXITED),
        ("on-failure", CLEAN, S.EXITED),
        ("on-failure", CRASH, S.BACKOFF),
        ("always", CLEAN, S.BACKOFF),
        ("on-failure", KILL9, S.BACKOFF),
    ],
)
def test_restart_policy(restart: str, end: RunEnd, state: State) -> None:
    m, _ = machine(restart=restart)
    to_running(m)
    m.handle(E.EXITED, end=end)
    assert m.state is state
    assert m.ready is (state is S.EXITED and end.ok)


def test_an_essential_one_shot_that_fails_gives_up() -> None:
    m, _ = machine(restart="never", essential=True)
    to_running(m)
    (give_up,) = m.handle(E.EXITED, end=CRASH)
    assert give_up.do is Do.GIVE_UP
    assert "restart policy is never" in give_up.why


def test_not_ready_in_time_is_ended_then_restarted() -> None:
    m, _ = machine()
    to_running(m, ready=False)
    (term,) = m.handle(E.NOT_READY, why="not ready within 5s")
    assert term.do is Do.TERMINATE and m.state is S.STARTING
    (sleep,) = m.handle(E.STOPPED)
    assert sleep.do is Do.SLEEP and m.state is S.BACKOFF
    assert m.last_end == RunEnd(Verdict.NOT_READY, detail="not ready within 5s")


def test_health_failure_restarts_a_ready_service() -> None:
    m, _ = machine()
    to_running(m)
    (term,) = m.handle(E.UNHEALTHY, why="unhealthy (3 failed health checks)")
    assert term.do is Do.TERMINATE
    assert m.handle(E.EXITED, end=KILL9)[0].do is Do.SLEEP  # the exit it caused
    assert m.last_end is not None and m.last_end.verdict is Verdict.KILLED
    assert m.handle(E.STOPPED) == []  # the terminate's own report, late: nothing more


def test_health_failure_seen_through_the_terminate() -> None:
    m, _ = machine()
    to_running(m)
    m.handle(E.UNHEALTHY, why="unhealthy")
    m.handle(E.STOPPED)
    assert m.state is S.BACKOFF
    assert m.last_end == RunEnd(Verdict.UNHEALTHY, detail="unhealthy")


def test_stop_during_start_and_no_restart_after() -> None:
    m, _ = machine()
    m.handle(E.BEGIN)
    m.handle(E.GATE_OPEN)  # spawning
    (term,) = m.handle(E.STOP, why="stop requested")
    assert term.do is Do.TERMINATE and m.state is S.STOPPING
    assert m.handle(E.SPAWNED) == []  # the spawn it interrupted reports late
    assert m.handle(E.EXITED, end=KILL9) == []
    assert m.handle(E.STOPPED) == []
    assert m.state is S.STOPPED and not m.wanted
    assert m.handle(E.RETRY) == [] and m.handle(E.RELEASED) == []
    assert dos(m.handle(E.START)) == [Do.GATE]


def test_stop_twice_is_one_stop() -> None:
    m, _ = machine()
    to_running(m)
    assert dos(m.handle(E.STOP)) == [Do.TERMINATE]
    assert m.handle(E.STOP) == []
    m.handle(E.STOPPED)
    assert m.handle(E.STOP) == []
    assert m.state is S.STOPPED


def test_the_shutdown_refuses_a_later_start() -> None:
    m, _ = machine()
    to_running(m)
    m.handle(E.STOP, final=True)
    m.handle(E.STOPPED)
    assert m.handle(E.START) == []
    assert m.state is S.STOPPED


def test_stop_during_backoff() -> None:
    m, _ = machine()
    to_running(m)
    m.handle(E.EXITED, end=CRASH)
    assert dos(m.handle(E.STOP)) == [Do.TERMINATE]  # leftovers of the run, if any
    assert m.next_retry_at is None
    m.handle(E.STOPPED)
    assert m.state is S.STOPPED


def test_engine_death_stops_it_and_it_comes_back_with_the_engine() -> None:
    m, _ = machine()
    to_running(m)
    assert dos(m.handle(E.ENGINE_LOST, why="supervisord died")) == [Do.TERMINATE]
    m.handle(E.STOPPED)
    assert m.state is S.STOPPED and m.wanted  # the manager starts what is wanted
    assert dos(m.handle(E.BEGIN)) == [Do.GATE]


def test_engine_death_does_not_revive_an_operators_stop() -> None:
    m, _ = machine()
    to_running(m)
    m.handle(E.STOP)
    m.handle(E.STOPPED)
    m.handle(E.ENGINE_LOST)
    assert not m.wanted


def test_stopped_through_supervisorctl() -> None:
    m, _ = machine()
    to_running(m)
    assert m.handle(E.ENGINE_STOPPED) == []
    assert m.state is S.STOPPED and not m.wanted


def test_a_stop_file_appearing_holds_it_until_the_file_is_gone() -> None:
    m, _ = machine()
    to_running(m)
    (term,) = m.handle(E.HELD, path="/tmp/.dockerd-stop")
    assert term == Effect(Do.TERMINATE, why="/tmp/.dockerd-stop exists")
    assert m.state is S.STOPPING
    assert dos(m.handle(E.STOPPED)) == [Do.AWAIT_RELEASE]
    assert m.state is S.STOPPED and m.held
    assert dos(m.handle(E.RELEASED, path="/tmp/.dockerd-stop")) == [Do.GATE]
    assert m.state is S.WAITING and m.reason == "/tmp/.dockerd-stop is gone"


def test_a_stop_file_before_the_start_holds_it_as_stopped() -> None:
    m, _ = machine()
    m.handle(E.BEGIN)
    assert dos(m.handle(E.HELD, path="/x")) == [Do.AWAIT_RELEASE]
    assert m.state is S.STOPPED and m.reason == "held while /x exists"
    m.handle(E.STOP)  # the operator's stop while held: released files do not start it
    assert m.handle(E.RELEASED, path="/x") == []


def test_wait_for_timeout_backs_off_without_using_the_budget() -> None:
    m, _ = machine(max_restarts=1)
    m.handle(E.BEGIN)
    for _ in range(5):
        (sleep,) = m.handle(E.WAIT_TIMEOUT, why="wait_for unix not met within 1s")
        assert sleep.do is Do.SLEEP and m.state is S.BACKOFF
        assert m.last_end == RunEnd(Verdict.WAIT_TIMEOUT, detail="wait_for unix not met within 1s")
        m.handle(E.RETRY)
        assert m.reason == "retrying"
    assert m.clock.failures == 0 and m.restarts == 0


def test_a_launch_that_cannot_work_gives_up_at_once() -> None:
    m, _ = machine()
    m.handle(E.BEGIN)
    m.handle(E.GATE_OPEN)
    (give_up,) = m.handle(E.BAD_LAUNCH, why="missing required variable(s): API")
    assert give_up.do is Do.GIVE_UP and m.state is S.FAILED


def test_the_engine_refusing_a_start_is_a_crash() -> None:
    m, _ = machine(has_finish=True)
    m.handle(E.BEGIN)
    m.handle(E.GATE_OPEN)
    (sleep,) = m.handle(E.SPAWN_FAILED, why="supervisord could not start it: SPAWN_ERROR")
    assert sleep.do is Do.SLEEP  # no finish: nothing ran
    assert m.last_end is not None and m.last_end.verdict is Verdict.SPAWN_FAILED


def test_finish_runs_after_each_exit_with_s6s_arguments() -> None:
    m, _ = machine(has_finish=True)
    to_running(m)
    (finish,) = m.handle(E.EXITED, end=KILL9)
    assert finish.do is Do.FINISH and finish.end is not None
    assert finish.end.finish_args() == ("256", "9")
    assert CRASH.finish_args() == ("1", "0")
    assert dos(m.handle(E.FINISHED, code=0)) == [Do.SLEEP]


def test_finish_exit_125_means_do_not_restart() -> None:
    m, _ = machine(has_finish=True, essential=True)
    to_running(m)
    m.handle(E.EXITED, end=CRASH)
    assert m.handle(E.FINISHED, code=FINISH_DOWN) == []
    assert m.state is S.EXITED and "(125)" in m.reason
    assert dos(m.handle(E.START)) == [Do.GATE]


def test_late_and_repeated_events_change_nothing_anywhere() -> None:
    """Every cell of the table is defined: an event a state does not expect is ignored."""
    for state in State:
        assert state in ACTIONS
        for event in Event:
            m, _ = machine(has_finish=True)
            m.state = state
            m.last_end = CRASH
            effects = m.handle(event, end=CRASH, why="x", path="/x", code=0)
            assert isinstance(effects, list)
            if event not in ACTIONS[state]:
                assert effects == [] and m.state is state
