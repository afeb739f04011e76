"""Only root controls the init: its control socket is 0600 and supervisord's 0700, both
root's, and a non-root operator command exits 77 saying permission denied.

The run folder is made world-traversable for this test, so "permission denied"
comes from the sockets' own modes, not from a folder on the way to them.
"""

from __future__ import annotations

import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from svcharness import Services

from tests.support.pid1 import HELIX_INIT, PYTHON, Pid1

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)"),
]

NO_PERMISSION = 77
AS_NOBODY = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]


@pytest.fixture
def open_run_dir() -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="helix-run-", dir="/tmp"))
    parent.chmod(0o755)
    try:
        yield parent / "run"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _as_nobody(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AS_NOBODY, *argv], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_non_root_operators_are_refused_and_the_sockets_are_root_only(
    pid1: Pid1, open_run_dir: Path
) -> None:
    pid1.env["HELIX_INIT_RUN_DIR"] = str(open_run_dir)
    svc = Services(pid1)
    svc.add("idle", 'command = ["sleep", "1000"]\n')
    running = pid1.start()
    svc.wait_ready(running, "idle")

    for argv in (["status"], ["status", "--json"], ["health"], ["stop", "idle"]):
        result = _as_nobody([str(HELIX_INIT), *argv], pid1.env)
        assert result.returncode == NO_PERMISSION, (argv, result)
        assert "permission denied" in result.stderr, (argv, result.stderr)
        assert "Traceback" not in result.stderr

    control_sock = open_run_dir / "control.sock"
    engine_sock = open_run_dir / "supervisor.sock"
    for path, mode in ((control_sock, 0o600), (engine_sock, 0o700)):
        st = path.stat()
        assert stat.S_ISSOCK(st.st_mode) and st.st_uid == 0, path
        assert stat.S_IMODE(st.st_mode) == mode, (path, oct(st.st_mode))
    # Nor can nobody talk to supervisord directly.
    probe = "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])"
    direct = _as_nobody([PYTHON, "-I", "-c", probe, str(engine_sock)], {})
    assert direct.returncode != 0 and "PermissionError" in direct.stderr

    assert svc.service("idle")["state"] == "ready"  # refused, and nothing happened
    assert svc.ready_file.exists()
    running.signal(signal.SIGTERM)
    result = running.wait(timeout=20)
    assert result.code == 0, result.describe()
