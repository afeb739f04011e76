"""The installed s6 commands behave as s6 documents, on helix-init's control (no s6 package used).

Each test runs the fixture image (s6image.py) and drives the commands from
the CMD, as an operator's `docker exec` or a service script would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from s6image import S6Image

from tests.support.pid1 import HELIX_INIT, Pid1

pytestmark = pytest.mark.process

SVC = "/run/service/svc-notify"  # the path s6-overlay images use; only its name counts
PID_OF = (
    "import json, sys\n"
    "services = json.load(sys.stdin)['services']['services']\n"
    "print([s['pid'] for s in services if s['name'] == 'svc-notify'][0])\n"
)


def test_s6_svc_restart_signal_and_wait_for_ready(pid1: Pid1) -> None:
    S6Image(pid1)
    cmd = f"""
pid() {{ helix-init status --json | python3 -c "{PID_OF}"; }}
first=$(pid)
s6-svc -r -wR -T 20000 {SVC} && echo "restarted ready: $([ "$(pid)" != "$first" ] && echo yes)"
s6-svc -d -wd -T 20000 {SVC} && echo "down: $(pid)"
s6-svwait -U -t 300 {SVC}; echo "svwait while down: $?"
s6-svc -u -wU -T 20000 {SVC} && echo "up and ready"
second=$(pid)
s6-svc -k {SVC} && s6-svwait -R -t 20000 {SVC} 2>/dev/null
s6-svwait -U -t 20000 {SVC} && echo "after KILL: $([ "$(pid)" != "$second" ] && echo new pid)"
s6-svc -u /run/service/no-such-thing; echo "unknown: $?"
s6-svc -o {SVC}; echo "once: $?"
"""
    venv_bin = str(Path(HELIX_INIT).parent)
    result = pid1.run("bash", "-c", cmd, env={"PATH": f"{pid1.env['PATH']}:{venv_bin}"}, timeout=90)

    assert "restarted ready: yes" in result.lines, result.describe()
    assert "down: None" in result.lines
    assert "svwait while down: 99" in result.lines  # s6's code for a timeout
    assert "up and ready" in result.lines
    assert "after KILL: new pid" in result.lines  # helix-init restarted it, as s6-supervise would
    assert "unknown: 100" in result.lines  # s6: no supervisor for that service
    assert "once: 100" in result.lines
    assert (
        "s6-svc: fatal: unable to control no-such-thing: no such service under helix-init"
        in result.stderr.splitlines()
    ), result.describe()


def test_s6_setuidgid_drops_to_the_account_and_keeps_the_environment(pid1: Pid1) -> None:
    S6Image(pid1)
    cmd = (
        "s6-setuidgid nobody sh -c 'echo \"ids=$(id -u):$(id -g) home=$HOME\"'"
        "; s6-setuidgid 4242:4343 sh -c 'echo \"numeric=$(id -u):$(id -g)\"'"
        '; s6-setuidgid no-such-user true; echo "unknown: $?"'
        "; s6-envuidgid nobody sh -c 'echo \"env=$UID:$GID\"'"
    )

    result = pid1.run("sh", "-c", cmd)

    nobody = subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout.strip()
    group = subprocess.run(["id", "-g", "nobody"], capture_output=True, text=True).stdout.strip()
    assert f"ids={nobody}:{group} home=/root" in result.lines, result.describe()
    assert "numeric=4242:4343" in result.lines
    assert "unknown: 111" in result.lines
    assert f"env={nobody}:{group}" in result.lines


def test_s6_notifyoncheck_outside_a_service_folder_says_why(pid1: Pid1) -> None:
    S6Image(pid1)
    cmd = 'cd /tmp && s6-notifyoncheck -c true true; echo "code: $?"'

    result = pid1.run("sh", "-c", cmd)

    assert "code: 100" in result.lines, result.describe()
    assert "unable to read ./notification-fd" in result.stderr
