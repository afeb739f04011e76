"""A crash loop at 1 ms backoff: the init keeps restarting, stays off the CPU, and exits 0 on TERM.

Real helix-init as PID 1, real supervisord, a service that exits 1 at once.
Each restart costs a real spawn (supervisord's fork, svcexec, exec), so a
test sees a few hundred of them; the 10,000+ consecutive crashes past the
old overflow (the 1,025th) are driven through the same machine in
tests/unit/services/test_machine.py and test_backoff.py.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from svcharness import Services

from tests.support.pid1 import Pid1, wait_until

pytestmark = pytest.mark.process

CRASHES = 60
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(host_pid: int) -> float:
    fields = Path(f"/proc/{host_pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def test_a_crash_loop_at_1ms_keeps_restarting_with_bounded_cpu_and_ends_cleanly(
    pid1: Pid1,
) -> None:
    svc = Services(pid1)
    svc.add(
        "crasher",
        'command = ["false"]\nbackoff = { initial = 0.001, max = 0.001, jitter = 0 }\n',
    )
    running = pid1.start()
    init = running.init_pid()

    def restarts() -> int:
        from helix_init import control

        try:
            return int(svc.service("crasher")["restarts"])
        except (control.ControlError, KeyError, OSError):
            return 0

    wait_until(lambda: restarts() >= 5, 30, "the loop to start", running.alive)
    cpu0, wall0, n0 = _cpu_seconds(init), time.monotonic(), restarts()
    wait_until(lambda: restarts() >= n0 + CRASHES, 120, f"{CRASHES} more", running.alive)
    cpu, wall = _cpu_seconds(init) - cpu0, time.monotonic() - wall0
    # PID 1 waits for supervisord and the spawn each time; it never spins.
    assert cpu < 0.6 * wall, f"the init used {cpu:.2f}s of CPU in {wall:.2f}s"
    status = svc.service("crasher")
    assert status["state"] in ("waiting", "starting", "ready", "backoff"), status
    assert status["last_exit"] == "exit status 1"
    later = restarts()
    wait_until(lambda: restarts() > later, 30, "still restarting", running.alive)
    running.signal(signal.SIGTERM)
    result = running.wait(30)
    assert result.code == 0, result.describe()
    assert not [line for line in result.lines if "Traceback" in line]
