"""Restarts: exponential backoff that never ends in FATAL, a restart budget that ends the
container when the service is essential, and health checks that restart a hung service."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest
from svcharness import Services, example, free_port, host_pid

from tests.support.pid1 import Pid1

pytestmark = pytest.mark.process

# reset_after 1.5 s: each of the ten kills comes well within it, even on a busy machine.
BACKOFF = "{ initial = 0.05, max = 0.4, jitter = 0, reset_after = 1.5 }"
EXPECTED_DELAYS = [0.05, 0.1, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]
RESTARTING = re.compile(r"service victim: \w+ -> backoff \(.*; restarting in ([0-9.]+)s\)")
ALIVE_STATES = {"waiting", "starting", "ready", "backoff"}


def test_kill_9_ten_times_backs_off_to_the_cap_and_resets_after_a_stable_run(
    pid1: Pid1,
) -> None:
    svc = Services(pid1)
    svc.add("victim", f'command = ["sleep", "1000"]\nbackoff = {BACKOFF}\n')
    running = pid1.start()
    seen_states: set[str] = set()
    retry_in: list[float] = []

    def ready_with_new_pid(old: int | None) -> int:
        def check(s: dict[str, object]) -> bool:
            seen_states.add(str(s["state"]))
            if s["next_retry_in"] is not None:
                retry_in.append(float(s["next_retry_in"]))  # type: ignore[arg-type]
            return s["state"] == "ready" and s["pid"] not in (None, old)

        status = svc.wait_service(running, "victim", check, f"ready again (pid not {old})")
        return int(status["pid"])

    pid = ready_with_new_pid(None)
    for _ in range(10):
        os.kill(host_pid(running, pid), signal.SIGKILL)
        pid = ready_with_new_pid(pid)
    delays = [float(d) for d in RESTARTING.findall(svc.init_log())]
    assert delays == EXPECTED_DELAYS

    # A run longer than reset_after starts the backoff over.
    svc.wait_service(running, "victim", lambda s: s["uptime"] >= 1.7, "up for 1.7s")
    os.kill(host_pid(running, pid), signal.SIGKILL)
    ready_with_new_pid(pid)
    delays = [float(d) for d in RESTARTING.findall(svc.init_log())]
    assert delays == [*EXPECTED_DELAYS, 0.05]

    assert seen_states <= ALIVE_STATES, seen_states
    assert all(r <= 0.4 for r in retry_in), retry_in
    cli = pid1.command("status", "--json")
    victim = json.loads(cli.stdout)["services"]["services"][0]
    assert (victim["state"], victim["restarts"]) == ("ready", 11)
    assert victim["last_exit"] == "killed by a signal"

    running.signal(signal.SIGTERM)
    result = running.wait(timeout=20)
    assert result.code == 0, result.describe()
    assert "gave up" not in result.stdout and "FATAL" not in result.stdout
    supervisord_log = (svc.log_dir / "supervisord.log").read_text()
    assert "FATAL" not in supervisord_log and "gave up" not in supervisord_log


def test_an_essential_service_that_uses_up_its_restart_budget_ends_the_container(
    pid1: Pid1,
) -> None:
    svc = Services(pid1)
    rec = str(svc.record)
    svc.add(
        "crasher",
        f"""
        command = {example("crasher.py", "--after", "0.1", "--code", "3", "--record", rec)}
        essential = true
        max_restarts = 2
        backoff = {{ initial = 0.05, jitter = 0 }}
        """,
    )
    result = pid1.run("sh", "-c", "sleep 30 & wait", timeout=30)

    assert result.code == 80, result.describe()
    assert len(svc.events("crasher")) == 3  # the first run and its 2 restarts
    why = "restart budget of 2 used up (exit status 3)"
    assert result.errors() == [
        f"service crasher gave up: {why}",
        f"stopping the container: essential service crasher gave up: {why} (exit 80)",
    ], result.describe()
    assert result.texts("crasher").count("crasher: crashing now") == 3


def test_a_service_that_stops_answering_is_restarted_after_its_failed_health_checks(
    pid1: Pid1,
) -> None:
    svc = Services(pid1)
    port = free_port()
    hang = pid1.path("hang")
    svc.add(
        "hangs",
        f"""
        command = {example("server.py", "--kind", "http", "--listen", f"127.0.0.1:{port}",
                           "--record", str(svc.record), "--name", "hangs",
                           "--hang-file", str(hang))}
        ready = {{ http = "http://127.0.0.1:{port}/", interval = 0.05 }}
        health = {{ interval = 0.2, failures = 3, timeout = 0.3 }}
        backoff = {{ initial = 0.05, jitter = 0 }}
        """,
    )  # fmt: skip
    running = pid1.start()
    first = svc.wait_ready(running, "hangs")

    hang.touch()
    second = svc.wait_service(
        running, "hangs", lambda s: s["state"] == "ready" and s["restarts"] == 1, "restarted"
    )
    assert second["pid"] != first["pid"]
    hung, term = svc.first("hangs", "hung"), svc.first("hangs", "term")
    # Alive and hung until the init stopped it, after 3 failed checks 0.2 s apart.
    assert term.at - hung.at >= 0.4
    assert svc.init_lines("service hangs: unhealthy (3 failed health checks); stopping it")
    assert second["last_exit"] == "unhealthy (3 failed health checks)"

    running.signal(signal.SIGTERM)
    result = running.wait(timeout=20)
    assert result.code == 0, result.describe()
