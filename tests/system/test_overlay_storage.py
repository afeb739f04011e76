"""/var/lib/docker on overlayfs: the sandbox refuses (exit 79), the desktop runs without Docker.

How the test gets a real overlayfs under /var/lib/docker without a test switch
in the product: the images declare `VOLUME /var/lib/docker`, so any plain
`docker run` puts a volume there (a real filesystem). But a bind mount takes
the filesystem of its source, and the root of every nest level is the inner
dockerd's overlay2 mount. So inside a level, `-v /var/tmp/ovl:/var/lib/docker`
hands the new container a directory of that overlay root: statfs says
overlayfs, exactly what a level without a volume would see on a host whose
data root is not a volume. The desktop image is loaded in l1, the sandbox in l2.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.system

OVERLAY_DIR = "/var/tmp/helix-overlay-data"
FIX_HINT = "-v NAME:/var/lib/docker"


def overlay_dir(level: Any) -> str:
    """A directory on `level`'s own overlay root; checks that it really is overlayfs."""
    fs = level.sh(f"mkdir -p {OVERLAY_DIR} && stat -f -c %T {OVERLAY_DIR}").stdout.strip()
    assert fs == "overlayfs", f"level {level.depth}: {OVERLAY_DIR} is on {fs}, not overlayfs"
    return OVERLAY_DIR


def test_sandbox_on_overlay_exits_79_with_the_fix_in_one_line(
    nest: list[Any], nestlib: Any
) -> None:
    level = nest[2]  # the desktop, which has the sandbox image
    name = "overlay-sandbox"
    done = level.docker(
        "run", "--pull", "never", "--name", name, *nestlib.CAPS,
        "-v", f"{overlay_dir(level)}:/var/lib/docker", nestlib.SANDBOX_IMAGE,
        check=False, timeout=120,
    )  # fmt: skip
    try:
        logs = level.docker("logs", name)
        text = logs.stdout + logs.stderr
        assert done.returncode == 79, text
        assert level.docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "79"
        hints = [line for line in text.splitlines() if FIX_HINT in line]
        assert hints, text
        # the step's own message: one line, naming the cause and the fix
        (step_line,) = [line for line in hints if "[00-helix-preflight]" in line]
        assert "/var/lib/docker is on overlay" in step_line
        assert "required step 00-helix-preflight failed (exit 79)" in text
        # nothing after the preflight ran: no further step, dockerd never started
        assert "step 10-helix-cgroups: starting" not in text
        assert "[dockerd]" not in text
        assert "service dockerd" not in text
    finally:
        level.docker("rm", "-f", name, check=False)


def test_desktop_on_overlay_starts_its_session_without_docker(
    nest: list[Any], nestlib: Any
) -> None:
    level = nest[1]  # the level-1 sandbox, which has the desktop image
    name = "overlay-desktop"
    level.docker(
        "run", "-d", "--pull", "never", "--name", name, *nestlib.CAPS,
        "-v", f"{overlay_dir(level)}:/var/lib/docker", nestlib.DESKTOP_IMAGE,
    )  # fmt: skip
    try:
        desktop = level.inside(name)
        desktop.wait_healthy(60)
        st = desktop.status()
        assert st["cmd"] and st["cmd"]["running"] is True, st
        disabled = {s["name"]: s["reason"] for s in st["services"]["disabled"]}
        assert "dockerd" in disabled, st
        assert "dockerd" not in {s["name"] for s in st["services"]["services"]}
        assert st["docker"]["can_run_dockerd"] is False, st
        assert "/var/lib/docker is on overlay" in st["docker"]["why_not"], st
        assert FIX_HINT in st["docker"]["why_not"], st
        table = desktop.exec(["helix-init", "status"]).stdout
        assert "docker: not at this level: /var/lib/docker is on overlay" in table, table
        logs = level.docker("logs", name)
        text = logs.stdout + logs.stderr
        assert "desktop session running as retro" in text, text
        assert "continuing without Docker" in text, text
        assert "[dockerd]" not in text
        assert desktop.exec(["pgrep", "-x", "dockerd"], check=False).returncode == 1
    finally:
        level.docker("rm", "-f", name, check=False)
