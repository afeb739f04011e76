"""The desktop image with PUID/PGID/UNAME (COMPAT): the CMD runs as that user, start after start.

A real container of the desktop image on the host engine, started twice
(`docker start` keeps its /etc, so the second start finds the user it made).
Without a volume or capabilities the desktop runs without Docker, which is
beside the point here: the user step runs either way.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.system import SYSTEM_PREFIX

pytestmark = pytest.mark.system

SHOW = 'echo "cmd $(id -u) $(id -g) $(id -un) $(id -gn) $XDG_RUNTIME_DIR $HOME"'


def test_puid_pgid_uname_in_the_desktop_image_twice_in_a_row(
    helix_images: Any, nestlib: Any
) -> None:
    host = nestlib.Level.host(helix_images)
    name = f"{SYSTEM_PREFIX}desktop-user"
    try:
        first = host.docker(
            "run", "--pull", "never", "--name", name,
            "-e", "PUID=1234", "-e", "PGID=1234", "-e", "UNAME=dev",
            nestlib.DESKTOP_IMAGE, "sh", "-c", SHOW, timeout=120,
        )  # fmt: skip
        second = host.docker("start", "-a", name, timeout=120)
        expected = "cmd 1234 1234 dev dev /run/user/1234 /home/dev"
        assert expected in first.stdout.splitlines(), first.stdout + first.stderr
        assert expected in second.stdout.splitlines(), second.stdout + second.stderr
        # The image's own user was retro (1000): the first start made dev,
        # the second found it in place.
        assert "[05-helix-user] ran: useradd" in first.stdout
        assert "[05-helix-user] user dev (uid 1234, gid 1234) already in place" in second.stdout
        assert "ran:" not in "".join(
            line for line in second.stdout.splitlines() if "[05-helix-user]" in line
        )
    finally:
        host.docker("rm", "-f", "-v", name, check=False)
