"""Daemons under crash loops: a setsid or double-forked child never makes a second copy.

Real helix-init as PID 1, real supervisord. Each service's processes are its
cgroup (this host's cgroup2 at /sys/fs/cgroup/unified), so a daemon that left
its process group and session is still stopped with it. All along a crash
loop, the test counts the daemon's copies in the init's namespace: never
more than one; none left after the init exits 0 on TERM.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from svcharness import Services, host_pid

from tests.support.pid1 import PYTHON, Pid1, ns_processes, wait_until

pytestmark = pytest.mark.process

FAST = "backoff = { initial = 0.02, max = 0.05, jitter = 0, reset_after = 60 }\n"
RESTARTS = 12


def _copies(running: object, marker: str) -> int:
    return sum(1 for p in ns_processes(running) if marker in p.argv and p.state != "Z")  # type: ignore[arg-type]


def _crash_loop(pid1: Pid1, command: list[str], marker: str) -> None:
    svc = Services(pid1)
    svc.add("daemon", f"command = {json.dumps(command)}\n{FAST}")
    running = pid1.start()
    most = 0
    deadline = time.monotonic() + 60
    while svc_restarts(svc) < RESTARTS:
        assert time.monotonic() < deadline, f"only {svc_restarts(svc)} restarts in 60 s"
        assert running.alive(), running.output()
        most = max(most, _copies(running, marker))
    assert most <= 1, f"{most} copies of {marker} at once"
    running.signal(signal.SIGTERM)
    result = running.wait(30)
    assert result.code == 0, result.describe()
    assert not [p for p in _host_procs() if marker in p], "a copy outlived the init"


def svc_restarts(svc: Services) -> int:
    from helix_init import control

    try:
        return int(svc.service("daemon")["restarts"])
    except (control.ControlError, KeyError, OSError):
        return 0


def _host_procs() -> list[str]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    found.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return found


def test_a_setsid_daemon_under_a_crash_loop_is_one_copy(pid1: Pid1) -> None:
    # The case: 16 copies after 8 s of restarts.
    _crash_loop(pid1, ["sh", "-c", "setsid sleep 1001 </dev/null >/dev/null 2>&1 & exit 0"], "1001")


def test_a_double_forked_setsid_daemon_under_a_crash_loop_is_one_copy(pid1: Pid1) -> None:
    script = "(setsid sh -c 'sleep 1002 </dev/null >/dev/null 2>&1 &' &); exit 1"
    _crash_loop(pid1, ["sh", "-c", script], "1002")


def test_a_killed_service_takes_its_setsid_child_with_it(pid1: Pid1) -> None:
    svc = Services(pid1)
    script = "setsid sleep 1003 </dev/null >/dev/null 2>&1 & exec sleep 1004"
    svc.add("daemon", f"command = {json.dumps(['sh', '-c', script])}\n{FAST}")
    running = pid1.start()
    for _ in range(5):
        status = svc.wait_ready(running, "daemon")
        wait_until(lambda: _copies(running, "1003") == 1, 10, "the setsid child", running.alive)
        old = status["pid"]
        os.kill(host_pid(running, old), signal.SIGKILL)
        svc.wait_service(
            running, "daemon", lambda s, old=old: s["pid"] not in (None, old), "a new run"
        )
        assert _copies(running, "1003") <= 1
    running.signal(signal.SIGTERM)
    result = running.wait(30)
    assert result.code == 0, result.describe()
    assert not [p for p in _host_procs() if "sleep 1003" in p]


def test_status_shows_each_services_cpu_memory_and_open_files(pid1: Pid1) -> None:
    svc = Services(pid1)
    code = (
        "import os, time\n"
        "fds = [os.open('/dev/null', os.O_RDONLY) for _ in range(60)]\n"
        "time.sleep(1000)"
    )
    svc.add("holder", f"command = {json.dumps([PYTHON, '-I', '-c', code])}\n")
    running = pid1.start()
    svc.wait_ready(running, "holder")
    status = svc.wait_service(
        running, "holder", lambda s: (s.get("usage") or {}).get("fds", 0) >= 60, "60 fds"
    )
    usage = status["usage"]
    assert usage["processes"] == 1
    assert usage["rss_bytes"] > 1 << 20
    assert usage["cpu_seconds"] >= 0
    table = pid1.command("status")
    assert table.code == 0, table.describe()
    header, row = (
        next(line for line in table.stdout.splitlines() if line.startswith(w))
        for w in ("SERVICE", "holder")
    )
    assert header.split()[6:9] == ["CPU", "RSS", "FDS"]
    assert int(row.split()[8]) >= 60
    running.signal(signal.SIGTERM)
    assert running.wait(30).code == 0


def test_a_service_is_in_its_own_cgroup_before_its_command_runs(pid1: Pid1) -> None:
    # svcexec joins the cgroup before the exec: nothing forked at once escapes.
    svc = Services(pid1)
    seen = pid1.path("cgroup")
    svc.add(
        "inside", f'command = ["sh", "-c", "cat /proc/self/cgroup > {seen}; exec sleep 1000"]\n'
    )
    running = pid1.start()
    running.wait_for_file(seen, timeout=20)
    wait_until(lambda: seen.read_text().endswith("\n"), 5, "the cgroup line", running.alive)
    base = (svc.status().get("services") or {}).get("cgroups")
    assert base, "this host has a writable cgroup2 (/sys/fs/cgroup/unified)"
    line = next(x for x in seen.read_text().splitlines() if x.startswith("0::"))
    assert line.endswith(f"/{Path(base).name}/inside"), line
    running.signal(signal.SIGTERM)
    assert running.wait(30).code == 0
    assert not Path(base).exists()  # removed at the end
