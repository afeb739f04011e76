"""Stopping services: KILL after stop_timeout within a bounded shutdown, `helix-init stop`
that returns once the process is gone and keeps it stopped, and the COMPAT stop file."""

from __future__ import annotations

import random
import signal
import subprocess
import time

import pytest
from svcharness import Services, example, free_port, host_pid, namespace_procs, wait_gone

from tests.support.pid1 import HELIX_INIT, Pid1, wait_until

pytestmark = pytest.mark.process

STOP_TIMEOUT = 1.0
# What a shutdown may take beyond the stop_timeout: supervisord sends KILL from
# its 1 s loop tick, then itself exits; generous for a loaded 2-core machine.
SHUTDOWN_MARGIN = 4.0


def test_a_service_ignoring_sigterm_is_killed_after_its_stop_timeout(pid1: Pid1) -> None:
    svc = Services(pid1)
    armed = str(pid1.path("armed"))
    svc.add(
        "stubborn",
        f"""
        command = {example("stubborn.py", "--record", str(svc.record), "--ready-file", armed)}
        ready = {{ command = ["test", "-e", "{armed}"], interval = 0.02 }}
        stop_timeout = {STOP_TIMEOUT}
        """,
    )
    running = pid1.start()
    pid = host_pid(running, svc.wait_ready(running, "stubborn")["pid"])

    started = time.monotonic()
    running.signal(signal.SIGTERM)
    result = running.wait(timeout=STOP_TIMEOUT + 20)
    took = time.monotonic() - started

    assert result.code == 0, result.describe()
    assert STOP_TIMEOUT <= took < STOP_TIMEOUT + SHUTDOWN_MARGIN, result.describe()
    term = svc.first("stubborn", "term-ignored")  # it really got TERM, and ignored it
    assert term.at < time.time()
    wait_gone(pid, timeout=0)
    killed = "WARN stopped: stubborn (terminated by SIGKILL)"
    assert killed in result.texts("supervisord"), result.describe()
    assert result.has("service stubborn: stopping -> stopped (shutdown)")


def test_stop_returns_once_exited_and_keeps_it_stopped_until_start(pid1: Pid1) -> None:
    svc = Services(pid1)
    port = free_port()
    stop_file = pid1.path("daemon-stop")
    svc.add(
        "daemon",
        f"""
        command = {example("server.py", "--listen", f"127.0.0.1:{port}", "--name", "daemon",
                           "--record", str(svc.record), "--term-delay", "0.5")}
        ready = {{ tcp = "127.0.0.1:{port}", interval = 0.05 }}
        backoff = {{ initial = 0.05 }}
        stop_file = "{stop_file}"
        """,
    )  # fmt: skip
    running = pid1.start()
    first = host_pid(running, svc.wait_ready(running, "daemon")["pid"])

    # `helix-init stop` answers only after the process has exited (it takes 0.5 s to).
    stop = pid1.command("stop", "daemon")
    returned = time.time()
    assert (stop.code, stop.stdout) == (0, "daemon: stopped\n"), stop.describe()
    assert svc.first("daemon", "exit").at <= returned
    wait_gone(first, timeout=0)
    _stays_stopped(svc, seconds=1.0)

    start = pid1.command("start", "daemon")
    assert start.code == 0, start.describe()
    second = svc.wait_ready(running, "daemon")
    assert second["restarts"] == 0  # an operator's start is not a crash restart

    # COMPAT: touching the stop file stops it the same way; removing it starts it again.
    second_pid = host_pid(running, second["pid"])
    stop_file.touch()
    status = svc.wait_service(running, "daemon", lambda s: s["state"] == "stopped", "stopped")
    wait_gone(second_pid, timeout=0)  # "stopped" is only reported once it has exited
    assert status["reason"] == f"held while {stop_file} exists"
    _stays_stopped(svc, seconds=1.5)
    stop_file.unlink()
    third = svc.wait_ready(running, "daemon")
    assert third["pid"] != second["pid"]

    restart = pid1.command("restart", "daemon")  # a stop (waited for), then a start
    returned = time.time()
    assert (restart.code, restart.stdout) == (0, "daemon: waiting\n"), restart.describe()
    exits = [e for e in svc.events("daemon") if e.what == "exit"]
    assert len(exits) == 3 and exits[-1].at <= returned
    fourth = svc.wait_ready(running, "daemon")
    assert fourth["pid"] != third["pid"]
    assert len([e for e in svc.events("daemon") if e.what == "start"]) == 4

    running.signal(signal.SIGTERM)
    result = running.wait(timeout=20)
    assert result.code == 0, result.describe()
    assert result.errors() == [] and result.warnings() == [], result.describe()


def _stays_stopped(svc: Services, seconds: float) -> None:
    """Observe the service for `seconds`: still stopped, never started again."""
    starts = len([e for e in svc.events("daemon") if e.what == "start"])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = svc.service("daemon")
        assert (status["state"], status["pid"]) == ("stopped", None), status
        time.sleep(0.05)
    assert len([e for e in svc.events("daemon") if e.what == "start"]) == starts


def test_a_shutdown_during_an_operator_stop_is_clean(pid1: Pid1) -> None:
    svc = Services(pid1)
    armed = str(pid1.path("armed"))
    svc.add(
        "stubborn",
        f"""
        command = {example("stubborn.py", "--record", str(svc.record), "--ready-file", armed)}
        ready = {{ command = ["test", "-e", "{armed}"], interval = 0.02 }}
        stop_timeout = {STOP_TIMEOUT}
        """,
    )
    running = pid1.start()
    svc.wait_ready(running, "stubborn")
    stop = subprocess.Popen(
        [str(HELIX_INIT), "stop", "stubborn"],
        env=pid1.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    wait_until(lambda: bool(svc.events("stubborn")), 10, "the stop to send TERM", running.alive)

    running.signal(signal.SIGTERM)  # while the operator's stop waits for the KILL
    result = running.wait(timeout=STOP_TIMEOUT + 20)
    out, _ = stop.communicate(timeout=10)

    assert result.code == 0, result.describe()
    assert not result.has("internal error"), result.describe()
    assert stop.returncode == 0, out


def test_a_stop_during_a_restart_never_leaves_the_new_process_running(pid1: Pid1) -> None:
    """A stop that lands while the init is asking supervisord to start the service again
    must still stop what supervisord started (it answered "stopped" over a live one)."""
    svc = Services(pid1)
    svc.add(
        "flapping",
        """
        command = ["sleep", "0.05"]
        backoff = { initial = 0.01, max = 0.01, jitter = 0 }
        """,
    )
    running = pid1.start()
    svc.wait_ready(running, "flapping")
    rng = random.Random(7)
    for _ in range(60):
        time.sleep(rng.uniform(0, 0.03))  # land anywhere in the ~60 ms restart cycle
        assert svc.control("stop", "flapping")["message"] == "flapping: stopped"
        left = [p.argv for p in namespace_procs(running) if p.argv[:1] == ("sleep",)]
        assert left == [], "stopped, yet still running"
        svc.control("start", "flapping")

    running.signal(signal.SIGTERM)
    result = running.wait(timeout=20)
    assert result.code == 0, result.describe()
    # Calls cut short by a stop must not break supervisord's side of them either.
    assert "uncaptured python exception" not in result.stdout, result.describe()


def test_finish_runs_after_a_stop_and_after_the_kill_that_ends_a_stubborn_one(
    pid1: Pid1,
) -> None:
    """As s6 runs ./finish after every end of ./run: `helix-init stop`, and the shutdown.

    `polite` ends on TERM; `stubborn` ignores it and is KILLed after its stop_timeout:
    both finish programs still run, each with the run's end as its argument.
    """
    svc = Services(pid1)
    finished = pid1.path("finished")
    finish = f'finish = ["sh", "-c", "echo $0 >> {finished}"]'
    svc.add("polite", f'command = ["sleep", "1000"]\n{finish}\n')
    svc.add(
        "stubborn",
        f'command = ["sh", "-c", "trap \\"\\" TERM; while :; do sleep 0.05; done"]\n'
        f"stop_timeout = {STOP_TIMEOUT}\n{finish}\n",
    )
    running = pid1.start()
    svc.wait_ready(running, "polite")
    svc.wait_ready(running, "stubborn")

    assert svc.control("stop", "polite")["ok"]
    assert finished.read_text().splitlines() == ["-1"]  # done before the stop answers
    running.signal(signal.SIGTERM)
    result = running.wait(timeout=STOP_TIMEOUT + 20)

    assert result.code == 0, result.describe()
    assert "killing 'stubborn'" in result.stdout, result.describe()  # supervisord's KILL
    assert finished.read_text().splitlines() == ["-1", "-1"], result.describe()
