"""Readiness gates dependents: unix, tcp, http, command and notify probes in one chain.

    sock (unix) -> tcp (tcp) -> web (http) -> cmd (command) -> notified (notify) -> last

Each server listens only after a delay, so a dependent started before its
probe passed would show in the record the services write. The notify service
sends READY=1 only when the test says so, which holds the container "not
ready" for as long as the test needs to look at it. Shutdown stops the chain
in reverse, each level gone before the next is asked to stop.
"""

from __future__ import annotations

import itertools
import os
import signal

import pytest
from svcharness import Services, example, free_port, host_pid

from tests.support.pid1 import Pid1, wait_until

pytestmark = pytest.mark.process

DELAY = "0.25"  # each server listens this long after it starts
CHAIN = ("sock", "tcp", "web", "cmd", "notified", "last")
READY_EVENT = {"sock": "listening", "tcp": "listening", "web": "listening",
               "cmd": "listening", "notified": "notified"}  # fmt: skip


def _chain(svc: Services, pid1: Pid1) -> None:
    rec = str(svc.record)
    sock_path = str(pid1.path("sock.sock"))
    cmd_path = str(pid1.path("cmd.sock"))
    tcp_port, web_port, last_port = free_port(), free_port(), free_port()
    server = "server.py", "--record", rec, "--delay", DELAY, "--term-delay", "0.1"
    svc.add(
        "sock",
        f"""
        command = {example(*server, "--name", "sock", "--kind", "unix", "--listen", sock_path)}
        ready = {{ unix = "{sock_path}", interval = 0.05 }}
        """,
    )
    svc.add(
        "tcp",
        f"""
        command = {example(*server, "--name", "tcp", "--listen", f"127.0.0.1:{tcp_port}",
                           "--hold-file", str(pid1.path("hold-tcp")))}
        requires = ["sock"]
        ready = {{ tcp = "127.0.0.1:{tcp_port}", interval = 0.05 }}
        backoff = {{ initial = 0.05, jitter = 0 }}
        """,
    )  # fmt: skip
    svc.add(
        "web",
        f"""
        command = {example(*server, "--name", "web", "--kind", "http",
                           "--listen", f"127.0.0.1:{web_port}")}
        requires = ["tcp"]
        ready = {{ http = "http://127.0.0.1:{web_port}/healthz", interval = 0.05 }}
        """,
    )  # fmt: skip
    svc.add(
        "cmd",
        f"""
        command = {example(*server, "--name", "cmd", "--kind", "unix", "--listen", cmd_path)}
        requires = ["web"]
        ready = {{ command = ["test", "-S", "{cmd_path}"], interval = 0.05 }}
        """,
    )
    svc.add(
        "notified",
        f"""
        command = {example("notifier.py", "--record", rec, "--name", "notified",
                           "--delay", "0", "--go-file", str(pid1.path("go")))}
        requires = ["cmd"]
        ready = {{ notify = true }}
        """,
    )  # fmt: skip
    svc.add(
        "last",
        f"""
        command = {example(*server, "--name", "last", "--delay", "0",
                           "--listen", f"127.0.0.1:{last_port}")}
        requires = ["notified"]
        ready = {{ tcp = "127.0.0.1:{last_port}", interval = 0.05 }}
        """,
    )  # fmt: skip


def test_probes_gate_dependents_and_readiness_is_reported(pid1: Pid1) -> None:
    svc = Services(pid1)
    _chain(svc, pid1)
    running = pid1.start()

    # Held at the notify service: everything before it is ready, nothing after it started.
    svc.wait_service(running, "notified", lambda s: s["pid"] is not None, "started", 20)
    assert [svc.service(n)["state"] for n in CHAIN] == ["ready"] * 4 + ["starting", "waiting"]
    assert svc.service("last")["reason"] == "waiting for notified to be ready"
    assert not svc.ready_file.exists()
    health = pid1.command("health")
    assert health.code == 1, health.describe()
    assert health.stdout == "not ready: stage running; last (waiting), notified (starting)\n"

    pid1.path("go").touch()
    running.wait_for_file(svc.ready_file)
    assert svc.status()["ready"] is True
    health = pid1.command("health")
    assert (health.code, health.stdout) == (0, "ready\n"), health.describe()

    # Each service started only after the probe of the one it requires had passed:
    # after the event that makes the probe pass (in the services' own clocks), and
    # after the init logged the dependency ready.
    for dep, dependent in itertools.pairwise(CHAIN):
        assert svc.first(dependent, "start").at >= svc.first(dep, READY_EVENT[dep]).at
        log = svc.init_log()
        assert log.index(f"service {dependent}: waiting -> starting") > log.index(
            f"service {dep}: starting -> ready"
        ), (dep, dependent)

    # Not ready exactly while a service is not: a crash removes the ready file until
    # the restarted service passes its probe again (held back by the test meanwhile).
    tcp_pid = svc.service("tcp")["pid"]
    pid1.path("hold-tcp").touch()
    os.kill(host_pid(running, tcp_pid), signal.SIGKILL)
    wait_until(lambda: not svc.ready_file.exists(), 5, "the ready file to go", running.alive)
    svc.wait_service(running, "tcp", lambda s: s["state"] == "starting", "restarted, not ready")
    assert svc.status()["ready"] is False
    assert pid1.command("health").code == 1
    assert not svc.ready_file.exists()
    pid1.path("hold-tcp").unlink()
    running.wait_for_file(svc.ready_file, timeout=10)
    again = svc.service("tcp")
    assert again["state"] == "ready" and again["pid"] != tcp_pid and again["restarts"] == 1
    assert pid1.command("health").code == 0

    # Shutdown: reverse order, each service gone before the one it requires is asked.
    running.signal(signal.SIGTERM)
    result = running.wait(timeout=30)
    assert result.code == 0, result.describe()
    assert not svc.ready_file.exists()
    stopping = [
        name
        for line in result.init_texts()
        if line.endswith("-> stopping (shutdown)")
        for name in [line.split()[1].rstrip(":")]
    ]
    assert stopping == list(reversed(CHAIN)), result.describe()
    servers = ["cmd", "web", "tcp", "sock"]
    for later, earlier in itertools.pairwise(servers):
        assert svc.first(later, "exit").at <= svc.first(earlier, "term").at, (later, earlier)
    assert result.errors() == [], result.describe()
