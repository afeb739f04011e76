"""One service's supervision as data: ACTIONS[state][event] -> a small named action (pure).

s6-supervise's model: the state machine is a table, every cell a function
that sets the next state and says what to do; nothing here does I/O, reads
a clock of its own or sleeps. The adapter (supervise.py) performs each Effect
and feeds back what happened as the next Event; the unit tests do the same
with scripted events and a fake clock.

Why a table and not a loop of awaits: the loop it replaces wrote the
STOP -> STOPPED pair out three times, spoke of verdicts in strings, and had
no cell for a late event (an exit seen after a stop began), which raised
BadTransition and ended the init with 70. Here every cell not listed is
`_ignore`: a late or repeated event changes nothing, and says so in `reason`.

Events a finish program or a readiness mechanism can raise (s6's finish exit
125 = "do not restart", readiness on a notification fd) need no new cell:
FINISHED carries the finish program's code, READY comes from any readiness
source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from helix_init.services.backoff import RestartClock
from helix_init.services.state import State

FINISH_DOWN = 125  # s6: a finish program exiting 125 means "do not restart"


class Event(Enum):
    BEGIN = "begin"  # supervision starts (boot), or starts again (operator, engine back)
    GATE_OPEN = "gate open"  # requires ready, wait_for met, no stop file
    WAIT_TIMEOUT = "wait_for timed out"
    BAD_LAUNCH = "cannot launch"  # the same on every start: missing variable, E2BIG, NUL
    SPAWNED = "spawned"
    SPAWN_FAILED = "spawn failed"  # supervisord refused the start
    READY = "ready"  # from any readiness source (probe, notify socket, notification fd)
    NOT_READY = "not ready in time"
    UNHEALTHY = "unhealthy"
    EXITED = "exited"  # the run's first process ended on its own
    FINISHED = "finished"  # the finish program ended (its code in `code`)
    RETRY = "retry"  # the restart delay is over
    HELD = "stop file appeared"
    RELEASED = "stop file gone"
    STOP = "stop"  # operator or shutdown: stays stopped until START
    ENGINE_LOST = "engine lost"  # supervisord died: stop, and come back with it
    ENGINE_STOPPED = "stopped in the engine"  # supervisorctl stop, behind our back
    STOPPED = "stopped"  # every process of the service is gone
    START = "start"


class Verdict(Enum):
    """How a run ended."""

    OK = "exit status 0"
    FAILED = "failed"  # a non-zero exit status
    KILLED = "killed by a signal"
    NOT_READY = "not ready in time"
    UNHEALTHY = "unhealthy"
    SPAWN_FAILED = "could not be started"
    WAIT_TIMEOUT = "wait_for not met"


@dataclass(frozen=True)
class RunEnd:
    verdict: Verdict
    status: int = -1  # exit status, -1 when killed or never ran
    signal: int = 0  # the signal that killed it, 0 when unknown or none
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    def describe(self) -> str:
        if self.verdict is Verdict.FAILED:
            return f"exit status {self.status}"
        if self.verdict is Verdict.KILLED and self.signal:
            return f"killed by signal {self.signal}"
        return self.detail or self.verdict.value

    def finish_args(self) -> tuple[str, str]:
        """s6's finish arguments: the exit code (256 when killed by a signal) and the signal."""
        if self.verdict is Verdict.KILLED:
            return "256", str(self.signal)
        return str(self.status), "0"


# -- what the adapter is asked to do -------------------------------------------------


class Do(Enum):
    GATE = "gate"  # wait for requires, wait_for, no stop file: GATE_OPEN/HELD/WAIT_TIMEOUT
    SPAWN = "spawn"  # write the launch file, start it: SPAWNED/SPAWN_FAILED/BAD_LAUNCH
    WATCH = "watch"  # readiness, then health, the stop file, the exit: READY/.../EXITED
    TERMINATE = "terminate"  # stop every process of the service: STOPPED
    FINISH = "finish"  # run the finish program with `end`: FINISHED
    SLEEP = "sleep"  # wait `delay` seconds: RETRY
    AWAIT_RELEASE = "await release"  # until the stop file is gone: RELEASED
    GIVE_UP = "give up"  # tell the manager (an essential service ends the container)


@dataclass(frozen=True)
class Effect:
    do: Do
    delay: float = 0.0  # SLEEP
    end: RunEnd | None = None  # FINISH
    why: str = ""  # TERMINATE, GIVE_UP


@dataclass(frozen=True)
class Policy:
    """The parts of a ServiceSpec the decisions need."""

    restart: str = "always"  # always, on-failure, never
    essential: bool = False
    max_restarts: int = 0
    has_finish: bool = False


@dataclass
class Machine:
    policy: Policy
    clock: RestartClock
    now: Callable[[], float]  # monotonic seconds, injected
    state: State = State.WAITING
    reason: str = ""
    restarts: int = 0
    last_end: RunEnd | None = None
    next_retry_at: float | None = None
    wanted: bool = True  # False after STOP: nothing starts it but START
    retired: bool = False  # the shutdown: not even START
    held: bool = False  # stopped because of its stop file
    _started_at: float = 0.0
    _forced: RunEnd | None = None  # the init ended this run (not ready, unhealthy)
    _ran_for: float = 0.0
    _waited: bool = False  # the backoff is a wait_for's, not a run's

    def handle(self, event: Event, **data: object) -> list[Effect]:
        """Apply one event; returns what to do next, in order."""
        return ACTIONS[self.state].get(event, _ignore)(self, event, data)

    @property
    def ready(self) -> bool:
        return self.state is State.READY or (
            self.state is State.EXITED and self.last_end is not None and self.last_end.ok
        )

    def _to(self, state: State, reason: str) -> None:
        self.state = state
        self.reason = reason


Action = Callable[[Machine, Event, dict[str, object]], list[Effect]]


def _end_of(data: dict[str, object]) -> RunEnd:
    end = data.get("end")
    assert isinstance(end, RunEnd), "EXITED carries end=RunEnd(...)"
    return end


def _text(data: dict[str, object], key: str = "why") -> str:
    return str(data.get(key, ""))


# -- the actions ----------------------------------------------------------------------


def _ignore(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    return []


def _gate(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    if m.retired:
        return []
    if event in (Event.BEGIN, Event.START):
        m.wanted = True
    if event is Event.START:
        m.clock.reset()
    m.held = False
    m._to(State.WAITING, _text(data) or "waiting to start")
    return [Effect(Do.GATE)]


def _spawn(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    return [Effect(Do.SPAWN)]


def _spawned(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    m._started_at = m.now()
    m._forced = None
    m._to(State.STARTING, _text(data) or "spawned")
    return [Effect(Do.WATCH)]


def _bad_launch(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    return _give_up(m, _text(data))


def _spawn_failed(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    m._started_at = m.now()
    return _ended(m, RunEnd(Verdict.SPAWN_FAILED, detail=_text(data) or "could not be started"))


def _wait_timeout(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    """Not a run: the delay is the backoff's, but neither the budget nor `restarts` count it."""
    m.last_end = RunEnd(Verdict.WAIT_TIMEOUT, detail=_text(data) or Verdict.WAIT_TIMEOUT.value)
    delay = m.clock.delay()
    m.next_retry_at = m.now() + delay
    m._waited = True
    m._to(State.BACKOFF, f"{m.last_end.describe()}; retrying in {delay:.2f}s")
    return [Effect(Do.SLEEP, delay=delay)]


def _ready(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    m._to(State.READY, "ready")
    return [Effect(Do.WATCH)]  # now its health, its stop file and its exit


def _force(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    """The init ends this run (not ready in time, unhealthy); the end is decided once it is gone."""
    verdict = Verdict.NOT_READY if event is Event.NOT_READY else Verdict.UNHEALTHY
    m._forced = RunEnd(verdict, detail=_text(data) or verdict.value)
    m.reason = f"{m._forced.describe()}; stopping it"
    return [Effect(Do.TERMINATE, why=m.reason)]


def _exited(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    return _ended(m, _end_of(data))


def _forced_gone(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    """STOPPED while STARTING/READY: the run the init ended is gone."""
    if m._forced is None:  # not ours to end: someone stopped it (treat as a kill)
        return _ended(m, RunEnd(Verdict.KILLED, detail="stopped"))
    end, m._forced = m._forced, None
    return _ended(m, end)


def _ended(m: Machine, end: RunEnd) -> list[Effect]:
    m.last_end = end
    m._ran_for = m.now() - m._started_at
    if m.policy.has_finish and end.verdict is not Verdict.SPAWN_FAILED:
        m.reason = f"{end.describe()}; running its finish program"
        return [Effect(Do.FINISH, end=end)]
    return _decide(m, None)


def _finished(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    code = data.get("code")
    return _decide(m, code if isinstance(code, int) else None)


def _decide(m: Machine, finish_code: int | None) -> list[Effect]:
    """The restart policy, the budget and the backoff, after one run ended."""
    end = m.last_end
    assert end is not None
    p = m.policy
    said = end.describe()
    if finish_code == FINISH_DOWN:
        m._to(State.EXITED, f"{said}; its finish program said not to restart it (125)")
        return []
    if p.restart == "never" or (p.restart == "on-failure" and end.ok):
        if p.essential and not end.ok:
            return _give_up(m, f"ended ({said}) and its restart policy is {p.restart}")
        m._to(State.EXITED, said)
        return []
    m.clock.record_exit(m._ran_for)
    if m.clock.exhausted(p.max_restarts):
        return _give_up(m, f"restart budget of {p.max_restarts} used up ({said})")
    delay = m.clock.delay()
    m.next_retry_at = m.now() + delay
    m._to(State.BACKOFF, f"{said}; restarting in {delay:.2f}s")
    return [Effect(Do.SLEEP, delay=delay)]


def _give_up(m: Machine, why: str) -> list[Effect]:
    m._to(State.FAILED, why)
    return [Effect(Do.GIVE_UP, why=why)]


def _retry(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    m.next_retry_at = None
    if m._waited:
        m._waited = False
        m._to(State.WAITING, "retrying")
    else:
        m.restarts += 1
        m._to(State.WAITING, f"restart #{m.restarts}")
    return [Effect(Do.GATE)]


def _hold_idle(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    """The stop file, found before a start: held is "stopped", until the file is gone."""
    m.held = True
    m._to(State.STOPPED, f"held while {_text(data, 'path')} exists")
    return [Effect(Do.AWAIT_RELEASE)]


def _hold_running(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    m.held = True
    why = f"{_text(data, 'path')} exists"
    m._to(State.STOPPING, why)
    return [Effect(Do.TERMINATE, why=why)]


def _release(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    if not m.held or not m.wanted:
        return []
    return _gate(m, event, {"why": f"{_text(data, 'path')} is gone"})


def _stop(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    if event is Event.STOP:
        m.wanted = False
        m.retired = m.retired or bool(data.get("final"))
    m.held = False
    m.next_retry_at = None
    m._forced = None
    m._waited = False
    m._to(State.STOPPING, _text(data) or "stop requested")
    return [Effect(Do.TERMINATE, why=m.reason)]


def _stop_again(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    """STOP while already stopping or stopped: remember that it was asked for, nothing else."""
    if event is Event.STOP:
        m.wanted = False
        m.held = False
        m.retired = m.retired or bool(data.get("final"))
    return []


def _stopped(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    if m.held and m.wanted:
        m._to(State.STOPPED, f"{m.reason}; exited")
        return [Effect(Do.AWAIT_RELEASE)]
    m._to(State.STOPPED, m.reason)
    return []


def _engine_stopped(m: Machine, event: Event, data: dict[str, object]) -> list[Effect]:
    m.wanted = False
    m._to(State.STOPPED, "stopped through supervisorctl")
    return []


S, E = State, Event
_RUNNING: dict[Event, Action] = {
    E.EXITED: _exited,
    E.NOT_READY: _force,
    E.UNHEALTHY: _force,
    E.STOPPED: _forced_gone,
    E.FINISHED: _finished,
    E.HELD: _hold_running,
    E.STOP: _stop,
    E.ENGINE_LOST: _stop,
    E.ENGINE_STOPPED: _engine_stopped,
}
_IDLE: dict[Event, Action] = {E.START: _gate, E.BEGIN: _gate, E.STOP: _stop, E.ENGINE_LOST: _stop}

ACTIONS: dict[State, dict[Event, Action]] = {
    S.WAITING: {
        E.BEGIN: _gate,
        E.GATE_OPEN: _spawn,
        E.WAIT_TIMEOUT: _wait_timeout,
        E.BAD_LAUNCH: _bad_launch,
        E.SPAWNED: _spawned,
        E.SPAWN_FAILED: _spawn_failed,
        E.FINISHED: _finished,  # after a spawn that failed, with a finish program
        E.HELD: _hold_idle,
        E.STOP: _stop,
        E.ENGINE_LOST: _stop,
    },
    S.STARTING: {**_RUNNING, E.READY: _ready},
    S.READY: _RUNNING,
    S.BACKOFF: {E.RETRY: _retry, E.STOP: _stop, E.ENGINE_LOST: _stop},
    S.STOPPING: {E.STOPPED: _stopped, E.STOP: _stop_again},
    S.STOPPED: {
        E.START: _gate,
        E.BEGIN: _gate,
        E.RELEASED: _release,
        E.STOP: _stop_again,
        E.ENGINE_LOST: _stop_again,
    },
    S.EXITED: _IDLE,
    S.FAILED: _IDLE,
}
