"""The `docker` group and the desktop user's membership; root, before dockerd and the desktop.

dockerd never creates the group it is told to chown its socket to; without
the group the socket stays root-only and the desktop user's `docker ps` gets
"permission denied". The group is created (with HELIX_DOCKER_GID when set, so
the gid matches whatever shares the socket), moved to that gid when it exists
with another one, and HELIX_DESKTOP_USER is added before the desktop session
starts (group membership is read at login). /etc/group is read first, so a
second run issues no command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from helix_init.dind import DindError
from helix_init.hostcmd import Runner, check
from helix_init.settings.dind import DOCKER_GID

GROUP = "docker"


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    members: tuple[str, ...]


def parse_group_file(text: str) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) != 4 or not fields[2].isdigit():
            continue
        members = tuple(m for m in fields[3].split(",") if m)
        groups[fields[0]] = Group(fields[0], int(fields[2]), members)
    return groups


def docker_group_commands(
    groups: Mapping[str, Group], gid: int | None, user: str | None, name: str = GROUP
) -> list[list[str]]:
    """The groupadd/groupmod/usermod commands still needed; empty when all is in place."""
    holder = next((g for g in groups.values() if gid is not None and g.gid == gid), None)
    if holder is not None and holder.name != name:
        raise DindError(
            f"{DOCKER_GID}={gid} is already the gid of group {holder.name!r}; "
            "choose another gid or remove that group from the image"
        )
    commands: list[list[str]] = []
    current = groups.get(name)
    if current is None:
        commands.append(["groupadd", *(["-g", str(gid)] if gid is not None else []), name])
    elif gid is not None and current.gid != gid:
        commands.append(["groupmod", "-g", str(gid), name])
    if user and (current is None or user not in current.members):
        commands.append(["usermod", "-aG", name, user])
    return commands


def ensure_docker_group(
    runner: Runner,
    gid: int | None = None,
    user: str | None = None,
    group_file: Path = Path("/etc/group"),
) -> list[list[str]]:
    """Bring the docker group to the wanted state; return the commands that ran."""
    commands = docker_group_commands(parse_group_file(group_file.read_text()), gid, user)
    for argv in commands:
        check(runner, argv)
    return commands
