"""The docker group: created, moved to a fixed gid, the desktop user added; idempotent."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from helix_init.dind import DindError
from helix_init.dind.dockergroup import (
    docker_group_commands,
    ensure_docker_group,
    parse_group_file,
)
from helix_init.hostcmd import CommandResult, StepError
from helix_init.problems import ConfigError
from helix_init.settings.dind import docker_group_from_env

GROUP_FILE = """\
root:x:0:
sudo:x:27:retro
systemd-journal:x:999:
retro:x:1000:
"""


class GroupTools:
    """A recording runner that applies groupadd/groupmod/usermod -aG to a fake /etc/group."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv))
        lines = self.path.read_text().splitlines()
        if argv[0] == "groupadd":
            gid = argv[2] if argv[1] == "-g" else "998"
            lines.append(f"{argv[-1]}:x:{gid}:")
        elif argv[0] == "groupmod":
            lines = [self._field(line, argv[-1], 2, argv[2]) for line in lines]
        elif argv[0] == "usermod":
            group, user = argv[2], argv[3]
            lines = [self._add_member(line, group, user) for line in lines]
        self.path.write_text("\n".join(lines) + "\n")
        return CommandResult(0)

    @staticmethod
    def _field(line: str, group: str, index: int, value: str) -> str:
        fields = line.split(":")
        if fields[0] == group:
            fields[index] = value
        return ":".join(fields)

    @staticmethod
    def _add_member(line: str, group: str, user: str) -> str:
        fields = line.split(":")
        if fields[0] == group:
            fields[3] = ",".join([m for m in fields[3].split(",") if m] + [user])
        return ":".join(fields)


@pytest.fixture
def etc_group(tmp_path: Path) -> Path:
    path = tmp_path / "group"
    path.write_text(GROUP_FILE)
    return path


@pytest.mark.parametrize(
    ("extra", "gid", "user", "commands"),
    [
        ("", None, None, [["groupadd", "docker"]]),
        ("", 998, None, [["groupadd", "-g", "998", "docker"]]),
        ("", None, "retro", [["groupadd", "docker"], ["usermod", "-aG", "docker", "retro"]]),
        ("docker:x:997:\n", None, None, []),
        ("docker:x:997:\n", 997, None, []),
        ("docker:x:997:\n", 996, None, [["groupmod", "-g", "996", "docker"]]),
        ("docker:x:997:retro\n", None, "retro", []),
        ("docker:x:997:ann\n", 996, "retro", [
            ["groupmod", "-g", "996", "docker"],
            ["usermod", "-aG", "docker", "retro"],
        ]),
    ],
)  # fmt: skip
def test_commands_still_needed(
    extra: str, gid: int | None, user: str | None, commands: list[list[str]]
) -> None:
    assert docker_group_commands(parse_group_file(GROUP_FILE + extra), gid, user) == commands


def test_a_gid_held_by_another_group_is_an_error_naming_it() -> None:
    with pytest.raises(
        DindError, match="HELIX_DOCKER_GID=999 is already the gid of group 'systemd-journal'"
    ):
        docker_group_commands(parse_group_file(GROUP_FILE), 999, None)


def test_second_run_issues_no_command(etc_group: Path) -> None:
    tools = GroupTools(etc_group)
    first = ensure_docker_group(tools, gid=2375, user="retro", group_file=etc_group)
    assert first == [["groupadd", "-g", "2375", "docker"], ["usermod", "-aG", "docker", "retro"]]
    assert parse_group_file(etc_group.read_text())["docker"].members == ("retro",)
    tools.calls.clear()
    assert ensure_docker_group(tools, gid=2375, user="retro", group_file=etc_group) == []
    assert tools.calls == []


def test_a_failing_command_is_reported_with_its_stderr(etc_group: Path) -> None:
    def failing(argv: Sequence[str]) -> CommandResult:
        return CommandResult(6, "", "usermod: user 'ghost' does not exist\n")

    etc_group.write_text(GROUP_FILE + "docker:x:2375:\n")
    with pytest.raises(
        StepError, match="usermod -aG docker ghost` exited 6: usermod: user 'ghost'"
    ):
        ensure_docker_group(failing, user="ghost", group_file=etc_group)


def test_settings_from_the_environment() -> None:
    assert docker_group_from_env({}) == (None, None)
    env = {"HELIX_DOCKER_GID": "2375", "HELIX_DESKTOP_USER": "retro"}
    assert docker_group_from_env(env) == (2375, "retro")
    with pytest.raises(ConfigError, match="HELIX_DOCKER_GID: must be a positive integer"):
        docker_group_from_env({"HELIX_DOCKER_GID": "docker"})
