"""Service states and the one table of allowed transitions (s6-style: the state machine is data).

WAITING   for its requires, wait_for conditions, or a stop file to go away
STARTING  spawned; readiness probe not passed yet
READY     running and ready (a service without a probe is ready once spawned)
BACKOFF   ended or unhealthy; waiting out its restart delay
STOPPING  stop signal sent; waiting for the process group to be gone
STOPPED   stopped on request (operator, stop file, shutdown); restarts only on request
EXITED    ended and its restart policy says done
FAILED    gave up (restart budget, missing required variable); loud, never silent
"""

from __future__ import annotations

from enum import Enum


class State(Enum):
    WAITING = "waiting"
    STARTING = "starting"
    READY = "ready"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"
    EXITED = "exited"
    FAILED = "failed"


class Event(Enum):
    SPAWN = "spawn"
    PROBE_OK = "probe ok"
    CRASH = "crash"  # exited (or unhealthy, or not ready in time) and will be restarted
    DONE = "done"  # exited and the policy says it is finished
    GIVE_UP = "give up"
    RETRY = "retry"  # restart delay over
    STOP = "stop"
    STOPPED = "stopped"
    START = "start"


S, E = State, Event
TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.WAITING, E.SPAWN): S.STARTING,
    (S.WAITING, E.GIVE_UP): S.FAILED,
    (S.WAITING, E.CRASH): S.BACKOFF,  # a wait_for condition timed out
    (S.WAITING, E.STOP): S.STOPPING,
    (S.STARTING, E.PROBE_OK): S.READY,
    (S.STARTING, E.CRASH): S.BACKOFF,
    (S.STARTING, E.DONE): S.EXITED,
    (S.STARTING, E.GIVE_UP): S.FAILED,
    (S.STARTING, E.STOP): S.STOPPING,
    (S.READY, E.CRASH): S.BACKOFF,
    (S.READY, E.DONE): S.EXITED,
    (S.READY, E.GIVE_UP): S.FAILED,
    (S.READY, E.STOP): S.STOPPING,
    (S.BACKOFF, E.RETRY): S.WAITING,
    (S.BACKOFF, E.STOP): S.STOPPING,
    (S.STOPPING, E.STOPPED): S.STOPPED,
    (S.STOPPED, E.START): S.WAITING,
    (S.STOPPED, E.STOP): S.STOPPING,
    (S.EXITED, E.START): S.WAITING,
    (S.EXITED, E.STOP): S.STOPPING,
    (S.FAILED, E.START): S.WAITING,
    (S.FAILED, E.STOP): S.STOPPING,
}


class BadTransition(Exception):
    """A bug: an event arrived in a state that has no transition for it."""


def next_state(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise BadTransition(f"no transition from {state.value} on {event.value}") from None
