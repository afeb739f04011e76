"""Folders the init writes, made full or read-only (small tmpfs mounts), and what happens then.

The documented outcomes:
- log folders full: everything keeps running; lines that do not fit are lost
  (the service files are where the stdout copy is read from, so those lines
  miss `docker logs` too); supervisord's failed writes are one
  `[supervisord] ERROR: OSError: [Errno 28] No space left on device` line
  a minute, not a traceback per write; stop and exit codes are unchanged.
- HELIX_INIT_LOG_DIR read-only: one warning, the init log is stdout only.
- HELIX_INIT_SERVICE_LOG_DIR read-only (with services) or HELIX_INIT_RUN_DIR
  read-only: one error line naming the variable and exit 73 before anything
  starts (no cont-init step, no service, no CMD), never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from faultkit import REPO, Stack, assert_clean_shutdown, tmpfs

from tests.support.pid1 import PYTHON, Pid1, wait_until

pytestmark = pytest.mark.process

CANT_CREATE = 73
FLOODER = REPO / "examples" / "services" / "flooder.py"
NO_SPACE = "ERROR: OSError: [Errno 28] No space left on device"


def _point_logs_at(pid1: Pid1, folder: Path) -> None:
    pid1.env["HELIX_INIT_LOG_DIR"] = str(folder / "init")
    pid1.env["HELIX_INIT_SERVICE_LOG_DIR"] = str(folder / "services")


def test_full_log_folders_lose_lines_not_services(pid1: Pid1) -> None:
    stack = Stack(pid1)
    done = pid1.path("flood-done")
    (pid1.root / "services.d" / "flooder.toml").write_text(
        f'command = ["{PYTHON}", "-I", "{FLOODER}", "--lines", "50000", "--done", "{done}"]\n'
    )
    with tmpfs(pid1.path("logs"), size="64k") as logs:
        _point_logs_at(pid1, logs)
        life = stack.boot(go=True)
        life.wait_settled()
        wait_until(done.exists, 20, "the flood to be written", life.running.alive)
        wait_until(lambda: os.statvfs(logs).f_bavail == 0, 10, "the log tmpfs to be full")

        # Still fully alive on a full disk: control, readiness, restarts.
        assert pid1.command("health").code == 0
        life.kill(life.find("worker"))
        life.wait_settled()
        result = life.stop()

    assert_clean_shutdown(life, result)
    supervisord = result.texts("supervisord")
    assert supervisord.count(NO_SPACE) == 1, result.describe()  # once, not per write
    # Every service stopped gracefully although none of their last lines could be written.
    assert "service flooder: stopping -> stopped (shutdown)" in result.init_texts()


def test_a_read_only_init_log_folder_is_one_warning(pid1: Pid1) -> None:
    stack = Stack(pid1)
    with tmpfs(pid1.path("ro"), read_only=True) as ro:
        pid1.env["HELIX_INIT_LOG_DIR"] = str(ro / "init")
        life = stack.boot(go=True)
        life.wait_settled()
        result = life.stop()

    assert result.warnings() == [
        f"cannot write the init log {ro}/init/init.log: Read-only file system"
    ]
    assert_clean_shutdown(life, result, allowed_warnings=("cannot write the init log",))


@pytest.mark.parametrize(
    ("variable", "services"),
    [
        ("HELIX_INIT_RUN_DIR", True),
        ("HELIX_INIT_RUN_DIR", False),
        ("HELIX_INIT_SERVICE_LOG_DIR", True),
    ],
    ids=["run-dir", "run-dir-no-services", "service-log-dir"],
)
def test_a_read_only_folder_is_one_line_and_exit_73_before_anything_runs(
    pid1: Pid1, variable: str, services: bool
) -> None:
    ran = pid1.path("something-ran")
    pid1.step("10-marker.sh", f'touch "{ran}"\n')
    if services:
        (pid1.root / "services.d").mkdir()
        (pid1.root / "services.d" / "idle.toml").write_text(
            f'command = ["sh", "-c", "touch {ran}; exec sleep 60"]\n'
        )
    with tmpfs(pid1.path("ro"), read_only=True) as ro:
        pid1.env[variable] = str(ro)
        result = pid1.run("touch", str(ran))

        assert pid1.command("check").code == 0  # the drop-ins are fine; only the folder is not

    assert result.code == CANT_CREATE, result.describe()
    assert result.errors() == [
        f"{variable}: cannot write {ro}: Read-only file system; "
        f"nothing was started (exit {CANT_CREATE})"
    ]
    assert not ran.exists()
    assert result.stderr == ""


def test_a_full_run_dir_stops_the_boot_with_one_line_and_73(pid1: Pid1) -> None:
    ran = pid1.path("something-ran")
    pid1.step("10-export.sh", "export FROM_STEP=1\n")
    (pid1.root / "services.d").mkdir()
    (pid1.root / "services.d" / "idle.toml").write_text(
        f'command = ["sh", "-c", "touch {ran}; exec sleep 60"]\n'
    )
    with tmpfs(pid1.path("run"), size="64k") as run:
        pid1.env["HELIX_INIT_RUN_DIR"] = str(run)
        with open(run / "filler", "wb") as f, pytest.raises(OSError, match="No space left"):
            f.write(b"\0" * (1 << 20))
        result = pid1.run("touch", str(ran))

    assert result.code == CANT_CREATE, result.describe()
    assert result.errors() == [
        f"stopping the container: HELIX_INIT_RUN_DIR: cannot write {run}/env.json: "
        f"No space left on device (exit {CANT_CREATE})"
    ]
    assert not ran.exists()  # neither the service nor the CMD
