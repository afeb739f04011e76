"""PID 1 reaps orphans it never started: 2,000 of them leave no zombie behind."""

from __future__ import annotations

import pytest

from tests.support.pid1 import PYTHON, Pid1

pytestmark = pytest.mark.process

# The CMD, run inside the namespace while the init is alive. It makes one
# zombie of its own first, to prove the /proc probe sees zombies at all, then
# double-forks ORPHANS children that exit at once; their parents exit first, so
# the kernel hands them to PID 1. Each holds the write end of a pipe: EOF means
# every orphan has exited. From then on the probe polls /proc for state Z with
# a deadline (a bound on being reaped at all, not a speed test;
# bench/reaping.py measures the speed) and prints the count.
ORPHAN_MAKER = r"""
import os, sys, time

ORPHANS = int(sys.argv[1])

def zombies():
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2 :][:1] == b"Z":
            found.append(int(entry))
    return found

own = os.fork()
if own == 0:
    os._exit(0)
deadline = time.monotonic() + 5
while own not in zombies():
    assert time.monotonic() < deadline, "the probe never saw our own zombie"
    time.sleep(0.01)
os.waitpid(own, 0)
print("probe sees zombies: yes", flush=True)

r, w = os.pipe()
for _ in range(ORPHANS):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        if os.fork() == 0:
            os._exit(0)  # the orphan: ends at once, closing its copy of w
        os._exit(0)
    os.waitpid(pid, 0)
os.close(w)
assert os.read(r, 1) == b""  # EOF: every orphan has exited
exited = time.monotonic()
left = zombies()
while left and time.monotonic() - exited < 20.0:
    time.sleep(0.01)
    left = zombies()
print(f"zombies left after {ORPHANS} orphans exited: {len(left)}", flush=True)
sys.exit(1 if left else 0)
"""


def test_2000_orphans_leave_no_zombie(pid1: Pid1) -> None:
    script = pid1.path("orphans.py")
    script.write_text(ORPHAN_MAKER)

    result = pid1.run(PYTHON, str(script), "2000", timeout=180)

    assert "probe sees zombies: yes" in result.stdout, result.describe()
    assert "zombies left after 2000 orphans exited: 0" in result.stdout, result.describe()
    assert result.code == 0, result.describe()
