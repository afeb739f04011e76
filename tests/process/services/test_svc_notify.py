"""sd_notify readiness is the service's own word: a READY=1 from any other process is ignored.

Real helix-init as PID 1, real supervisord, the example notifier. A second
service, running as the same user (root), sends READY=1 to the first one's
notify socket: the kernel's credentials on the datagram (SO_PASSCRED) name a
process that is not the first service's, so it stays "starting", the log
says so once, and only its own READY=1 (once the test lets it send) counts.
"""

from __future__ import annotations

import json
import signal

import pytest
from svcharness import Services, example

from tests.support.pid1 import PYTHON, Pid1, wait_until

pytestmark = pytest.mark.process


def test_only_the_services_own_processes_can_report_it_ready(pid1: Pid1) -> None:
    svc = Services(pid1)
    go, faked = pid1.path("go"), pid1.path("faked")
    sock = pid1.run_dir / "notify" / "slow.sock"
    svc.add(
        "slow",
        f"command = {example('notifier.py', '--delay', '0', '--go-file', str(go))}\n"
        "ready = { notify = true, timeout = 0 }\n",
    )
    fake = (
        "import os, socket, time\n"
        f"while not os.path.exists({str(sock)!r}): time.sleep(0.02)\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        f"s.sendto(b'READY=1', {str(sock)!r})\n"
        f"open({str(faked)!r}, 'w').close()\n"
        "time.sleep(1000)\n"
    )
    svc.add("faker", f"command = {json.dumps([PYTHON, '-I', '-c', fake])}\n")
    running = pid1.start()
    running.wait_for_file(faked, timeout=20)
    wait_until(
        lambda: svc.init_lines("service slow: ignored a notify message from pid"),
        10,
        "the init to refuse the faked READY=1",
        running.alive,
    )
    assert svc.service("slow")["state"] == "starting"
    assert not svc.ready_file.exists()
    go.touch()
    svc.wait_ready(running, "slow")
    running.signal(signal.SIGTERM)
    result = running.wait(30)
    assert result.code == 0, result.describe()
    assert len([x for x in result.lines if "ignored a notify message" in x]) == 1
