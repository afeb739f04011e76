"""The `docker-group` step: the docker group and the desktop user in it; runs as root."""

from __future__ import annotations

from pathlib import Path

from helix_init.builtin.level import Level, run_command, say
from helix_init.dind import dockergroup


def ensure_docker_group(level: Level) -> None:
    """Create the docker group and add the desktop user, so the socket is root:docker 0660.

    dockerd never creates the group; without it the socket is root-only and the
    desktop user cannot run `docker ps`.
    """
    if not level.docker_wanted():
        return
    ran = dockergroup.ensure_docker_group(
        run_command, level.dind.docker_gid, level.dind.desktop_user
    )
    for argv in ran:
        say(f"ran: {' '.join(argv)}")
    if not ran:  # still one line: the log shows the step decided, not that it was skipped
        group = dockergroup.parse_group_file(Path("/etc/group").read_text())[dockergroup.GROUP]
        members = ", ".join(group.members) or "no members"
        say(f"group {group.name} (gid {group.gid}, {members}) already in place")
