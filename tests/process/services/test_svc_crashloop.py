"""A crash loop at 1 ms backoff: the init keeps restarting, stays off the CPU, and exits 0 on TERM.

Real helix-init as PID 1, real supervisord, a service that exits 1 at once,
driven past the 1,025th consecutive crash, where the backoff used to
overflow and end the service's supervision without a line. Each restart is
a real spawn and three supervisord calls, ~15-19 ms (50-70 a second here,
docs/service-limits.md says where the time goes), so 1,100 take about 20 s;
the 10,000+ are driven through the same machine in
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

PAST_OVERFLOW = 1_100  # consecutive crashes; the old backoff overflowed at the 1,025th
DEADLINE = 180.0  # ~20 s idle; a loaded CI runner is slower
STALL = 10.0  # no restart for this long: its supervision ended (as at the 1,025th)
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
    cpu0, wall0 = _cpu_seconds(init), time.monotonic()
    # Polled slowly: each status request costs the init CPU that would count here.
    seen, moved = restarts(), time.monotonic()
    while seen < PAST_OVERFLOW:
        assert running.alive(), running.output()
        now = time.monotonic()
        assert now - wall0 < DEADLINE, f"{seen} restarts in {DEADLINE:g}s"
        assert now - moved < STALL, f"no restart for {STALL:g}s after {seen}: supervision ended"
        time.sleep(0.5)
        if restarts() > seen:
            seen, moved = restarts(), time.monotonic()
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
