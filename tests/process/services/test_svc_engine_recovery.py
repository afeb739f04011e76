"""kill -9 supervisord: the init stops the orphaned services, restarts the engine and the
services, and at no moment do two copies of a service run.

The CMD is the witness: inside the init's PID namespace it scans /proc as fast
as it can and writes down every change in the number of processes whose
command line carries the service's marker.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from svcharness import Services, example, free_port, host_pid, wait_gone

from tests.support.pid1 import PYTHON, Pid1

pytestmark = pytest.mark.process

WATCH = r"""
import os, sys, time
marker, out, done = os.environ["MARKER"].encode(), sys.argv[1], sys.argv[2]

def copies():
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                with open(f"/proc/{pid}/stat", "rb") as f:
                    zombie = f.read().rpartition(b")")[2].split()[0] == b"Z"
            except OSError:
                continue
            n += marker in argv and not zombie
    return n

last, looks = None, 0
with open(out, "w", buffering=1) as f:
    while not os.path.exists(done):
        n = copies()
        looks += 1
        if n != last:
            f.write(f"{n}\n")
            last = n
        time.sleep(0.001)
    f.write(f"looked {looks} times\n")
"""


def test_supervisord_killed_recovers_without_ever_running_two_copies(pid1: Pid1) -> None:
    svc = Services(pid1)
    marker = "lonely-3f9c"
    port, follower_port = free_port(), free_port()
    svc.add(
        "lonely",
        f"""
        command = {example("server.py", "--name", marker, "--listen", f"127.0.0.1:{port}")}
        ready = {{ tcp = "127.0.0.1:{port}", interval = 0.02 }}
        """,
    )
    svc.add(
        "follower",
        f"""
        command = {example("server.py", "--name", "follower",
                           "--listen", f"127.0.0.1:{follower_port}")}
        requires = ["lonely"]
        """,
    )  # fmt: skip
    watch, seen, done = pid1.path("watch.py"), pid1.path("seen"), pid1.path("done")
    watch.write_text(WATCH)
    running = pid1.start(PYTHON, "-I", str(watch), str(seen), str(done), env={"MARKER": marker})
    running.wait_for_file(seen)
    before = svc.status()
    lonely = svc.service("lonely")

    engine = before["services"]["engine"]["pid"]
    os.kill(host_pid(running, engine), signal.SIGKILL)
    after = svc.wait_service(
        running,
        "lonely",
        lambda s: s["state"] == "ready" and s["pid"] not in (None, lonely["pid"]),
        "ready again under a new supervisord",
    )
    svc.wait_ready(running, "follower")
    status = svc.status()["services"]
    assert status["engine"]["restarts"] == 1 and status["engine"]["pid"] != engine
    assert after["restarts"] == 0  # a recovery, not a crash of the service

    done.touch()
    result = running.wait(timeout=20)
    assert result.code == 0, result.describe()
    changes = seen.read_text().splitlines()
    assert changes[:-1] == ["1", "0", "1"], changes  # stopped, then started: never 2
    assert result.has("supervisord died (code -9); stopping its services before a restart")
    texts = result.init_texts()
    stopped = texts.index("service lonely: stopping -> stopped (supervisord died)")
    assert texts.index("service follower: stopping -> stopped (supervisord died)") < stopped
    assert stopped < texts.index("service lonely: stopped -> waiting (start requested)")


def test_a_stopped_supervisord_does_not_hang_the_shutdown(pid1: Pid1) -> None:
    """SIGSTOP stands for a wedged supervisord: its RPC answers nothing. The shutdown
    must still stop the service itself and end (it used to wait forever)."""
    svc = Services(pid1)
    svc.add("idle", 'command = ["sleep", "1000"]\nstop_timeout = 1\n')
    running = pid1.start()
    idle = host_pid(running, svc.wait_ready(running, "idle")["pid"])
    engine = host_pid(running, svc.status()["services"]["engine"]["pid"])

    os.kill(engine, signal.SIGSTOP)
    started = time.monotonic()
    running.signal(signal.SIGTERM)
    result = running.wait(timeout=60)

    assert result.code == 0, result.describe()
    # One unanswered call (CALL_TIMEOUT, 5 s), then short ones; generous for a busy machine.
    assert time.monotonic() - started < 15, result.describe()
    wait_gone(idle, timeout=0)
    assert "supervisord is not answering; killing it" in result.warnings(), result.describe()
    assert result.has("service idle: stopping -> stopped (shutdown)")
