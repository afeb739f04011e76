"""sd_notify upward: the init tells whoever started it (systemd, podman --sdnotify=container)
READY=1 once its services are ready and STOPPING=1 when it shuts down, on $NOTIFY_SOCKET."""

from __future__ import annotations

import signal
import socket

import pytest

from tests.support.pid1 import Pid1

pytestmark = pytest.mark.process


def test_ready_then_stopping_reach_the_notify_socket_and_no_child_sees_it(pid1: Pid1) -> None:
    services = pid1.path("services.d")
    services.mkdir()
    seen = pid1.path("service-saw")
    (services / "idle.toml").write_text(
        f'command = ["sh", "-c", "echo \\"${{NOTIFY_SOCKET:-none}}\\" > {seen}; exec sleep 60"]\n'
        'ready = { command = ["true"] }\n'
    )
    path = pid1.path("notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(30)
        cmd_saw = pid1.path("cmd-saw")
        cmd = f'echo "${{NOTIFY_SOCKET:-none}}" > {cmd_saw}; exec sleep 60'
        running = pid1.start("sh", "-c", cmd, env={"NOTIFY_SOCKET": str(path)})
        try:
            assert listener.recv(4096) == b"READY=1"
            running.wait_for_file(cmd_saw)
            running.signal(signal.SIGTERM)
            assert listener.recv(4096) == b"STOPPING=1"
        finally:
            result = running.wait(30)
    assert result.code == 0, result.describe()
    # The socket is the init's own: neither the CMD nor a service is given it.
    assert (cmd_saw.read_text(), seen.read_text()) == ("none\n", "none\n")


def test_without_services_ready_is_said_once_the_services_stage_is_reached(pid1: Pid1) -> None:
    path = pid1.path("notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(30)
        running = pid1.start("sleep", "60", env={"NOTIFY_SOCKET": str(path)})
        try:
            assert listener.recv(4096) == b"READY=1"
            running.signal(signal.SIGTERM)
            assert listener.recv(4096) == b"STOPPING=1"
        finally:
            result = running.wait(30)
    assert result.code == 0, result.describe()
