"""1,000 signals in a burst at PID 1: the CMD gets each kind, and the final TERM still stops all.

HUP, USR1, USR2 and WINCH are forwarded to the CMD. Pending standard signals
coalesce in the kernel, so the CMD counts at least one of each kind, not a
thousand; what matters is that none is lost entirely, that the init neither
chokes nor prints anything about it, and that the TERM after the burst is a
normal graceful shutdown (exit 0, dockerd given its grace).
"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pytest
from faultkit import FAULTS, Stack, assert_clean_shutdown

from tests.support.pid1 import PYTHON, Pid1, assert_no_traceback

pytestmark = pytest.mark.process

SEED = 1234
BURST = 1000
FORWARDED = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


def test_a_thousand_signals_reach_the_cmd_and_term_still_stops_cleanly(pid1: Pid1) -> None:
    rng = random.Random(SEED)
    stack = Stack(pid1)
    counts = pid1.path("counts")
    life = stack.boot(PYTHON, "-I", str(FAULTS / "counter.py"), str(counts), go=True)
    life.wait_settled()
    life.running.wait_for_file(Path(f"{counts}.ready"))
    init = life.running.init_pid()

    sent = [rng.choice(FORWARDED) for _ in range(BURST)]
    for sig in sent:
        os.kill(init, sig)
    life.wait_settled()  # the burst changed nothing for the services
    os.kill(init, signal.SIGTERM)
    result = life.running.wait(timeout=30)

    assert_no_traceback(result)
    assert result.stderr == ""
    got = json.loads(counts.read_text())
    assert {s.name for s in sent} == set(got)
    assert all(n >= 1 for n in got.values()), got
    assert sum(got.values()) <= BURST
    texts = result.init_texts()
    assert texts.count("got SIGTERM: graceful shutdown") == 1
    assert "CMD ended with exit code 0; stopping the container" not in texts  # TERM ended it
    assert_clean_shutdown(life, result)
