"""Secrets reach the service (environment, from the init's environment or a file) and
nowhere else: no command line, no log file, not stdout, not `status --json`."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
from pathlib import Path

import pytest
from svcharness import Services, example, namespace_procs

from tests.support.pid1 import Pid1

pytestmark = pytest.mark.process

TOKEN = "rt-6a1f0c-runner-token-do-not-print"
FILE_SECRET = "fs-9d2e77-file-secret-do-not-print"
SECRETS = (TOKEN.encode(), FILE_SECRET.encode())


def _leaks(data: bytes) -> list[bytes]:
    return [s for s in SECRETS if s in data]


def test_a_secret_reaches_its_service_and_nothing_else(pid1: Pid1) -> None:
    svc = Services(pid1)
    hashes = pid1.path("hashes")
    secret_file = pid1.path("file-secret")
    secret_file.write_text(FILE_SECRET + "\n")
    secret_file.chmod(0o600)
    svc.add(
        "agent",
        f"""
        command = {example("secret_hasher.py", "--out", str(hashes), "TOKEN", "FILE_TOKEN")}
        secrets.TOKEN = {{ env = "RUNNER_TOKEN" }}
        secrets.FILE_TOKEN = {{ file = "{secret_file}" }}
        ready = {{ command = ["test", "-e", "{hashes}"], interval = 0.02 }}
        """,
    )
    svc.add("bystander", 'command = ["sleep", "1000"]\n')
    running = pid1.start(env={"RUNNER_TOKEN": TOKEN})
    running.wait_for_file(svc.ready_file)

    # The service really got both values.
    got = dict(line.split() for line in hashes.read_text().splitlines())
    assert got == {
        "TOKEN": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "FILE_TOKEN": hashlib.sha256(FILE_SECRET.encode()).hexdigest(),
    }

    # No process anywhere has it on its command line.
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            assert not _leaks(cmdline), (entry.name, cmdline)
    # In the init's namespace only the init (whose container environment it is)
    # and the service itself hold it in their environment: not supervisord, not
    # another service.
    agent = svc.service("agent")["pid"]
    for proc in namespace_procs(running):
        if proc.ns_pid in (1, agent):
            continue
        environ = Path(f"/proc/{proc.host_pid}/environ").read_bytes()
        assert not _leaks(environ), proc.argv

    status_json = pid1.command("status", "--json")
    assert status_json.code == 0 and not _leaks(status_json.stdout.encode())
    assert not _leaks(pid1.command("status").stdout.encode())

    running.signal(signal.SIGTERM)
    result = running.wait(timeout=20)
    assert result.code == 0, result.describe()
    assert not _leaks(result.stdout.encode()) and not _leaks(result.stderr.encode())
    logs = [p for d in (svc.log_dir, pid1.log_dir) for p in d.rglob("*") if p.is_file()]
    assert {p.name for p in logs} >= {"agent.log", "init.log", "supervisord.log"}
    for path in logs:
        assert not _leaks(path.read_bytes()), path
    # The one place it is written down: the launch file svcexec reads, root only.
    launch_dir = pid1.run_dir / "services"
    assert stat.S_IMODE(launch_dir.stat().st_mode) == 0o700
    for path in pid1.run_dir.rglob("*"):
        if path.is_file() and _leaks(path.read_bytes()):
            assert path.parent == launch_dir and stat.S_IMODE(path.stat().st_mode) == 0o600
