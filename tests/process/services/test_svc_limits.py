"""Limits at the edges: a 24,000-variable environment, and `check` on a program not installed.

Real helix-init as PID 1, real supervisord. The large environment reaches
the service whole (read back from /proc/PID/environ), and the CMD starts
once it is ready and the init ends cleanly (building it took ~20 s with
PID 1's event loop blocked; bench/environ.py has the figure).
"""

from __future__ import annotations

import pytest
from svcharness import Services, exec_environ, host_pid

from tests.support.pid1 import Pid1

pytestmark = pytest.mark.process

COUNT = 24_000


def test_a_24k_variable_environment_reaches_the_service_and_the_cmd_is_not_held(
    pid1: Pid1,
) -> None:
    svc = Services(pid1)
    table = "\n".join(f'V{i:05d} = "v${{V00000}}"' if i else 'V00000 = "x"' for i in range(COUNT))
    svc.add("big", f'command = ["sleep", "1000"]\n[environment]\n{table}\n')
    started, go = pid1.path("cmd-started"), pid1.path("go")
    running = pid1.start("sh", "-c", f"touch {started}; while [ ! -e {go} ]; do sleep 0.05; done")
    running.wait_for_file(started, timeout=20)  # the CMD starts once the service is ready
    env = exec_environ(host_pid(running, svc.service("big")["pid"]), b"sleep")
    assert sum(1 for k in env if k.startswith("V")) == COUNT
    assert env["V23999"] == "vx"
    go.touch()
    result = running.wait(30)
    assert result.code == 0, result.describe()


def test_check_warns_about_a_missing_program_and_still_passes(pid1: Pid1) -> None:
    svc = Services(pid1)
    svc.add("agent", 'command = ["revdial-agent-not-installed", "--serve"]\n')
    result = pid1.command("check")
    assert result.code == 0, result.describe()
    (line,) = [x for x in result.stdout.splitlines() if "warning" in x]
    assert line.startswith(
        f"{svc.dir / 'agent.toml'}: warning: command 'revdial-agent-not-installed'"
    )
    assert "not on the service's PATH" in line
