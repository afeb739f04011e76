"""Service states (what `helix-init status` shows); the table that moves between them is machine.py.

WAITING   for its requires, wait_for conditions, or a stop file to go away
STARTING  spawned; readiness not reached yet
READY     running and ready (a service without a probe is ready once spawned)
BACKOFF   ended or unhealthy; waiting out its restart delay
STOPPING  stop signal sent; waiting for every process of the service to be gone
STOPPED   stopped on request (operator, stop file, shutdown); restarts only on request
EXITED    ended and its restart policy (or its finish program, exit 125) says done
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
