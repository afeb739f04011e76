"""usersetup: PUID/PGID/UNAME decide the commands; a user already in place needs none."""

from __future__ import annotations

import pytest

from helix_init import usersetup
from helix_init.settings import user as user_settings
from helix_init.settings.user import DesktopUser
from helix_init.usersetup import Account

PASSWD = """root:x:0:0:root:/root:/bin/bash
retro:x:1000:1000::/home/retro:/bin/bash
"""
GROUP = """root:x:0:
users:x:100:
retro:x:1000:
"""
USERS = usersetup.parse_accounts(PASSWD, "passwd")
GROUPS = usersetup.parse_accounts(GROUP, "group")


def test_parse_reads_ids_primary_group_and_home() -> None:
    assert USERS["retro"] == Account("retro", 1000, 1000, "/home/retro")
    assert GROUPS["users"] == Account("users", 100)


def test_nothing_set_means_no_user_and_defaults_fill_the_rest() -> None:
    assert user_settings.wanted({"HOME": "/root"}) is None
    assert user_settings.wanted({"PUID": "1234"}) == DesktopUser("retro", 1234, 1000)
    assert user_settings.wanted({"UNAME": "dev"}) == DesktopUser("dev", 1000, 1000)


def test_the_image_user_with_its_own_ids_needs_no_command() -> None:
    want = DesktopUser("retro", 1000, 1000)
    assert usersetup.user_commands(USERS, GROUPS, want, lambda _h: (1000, 1000)) == []


def test_a_new_name_on_an_existing_group_id_uses_that_group() -> None:
    want = DesktopUser("dev", 1234, 100)
    assert usersetup.user_commands(USERS, GROUPS, want, lambda _h: None) == [
        [
            "useradd",
            "-o",
            "-m",
            "-d",
            "/home/dev",
            "-s",
            "/bin/bash",
            "-u",
            "1234",
            "-g",
            "100",
            "dev",
        ]
    ]


def test_new_ids_move_the_user_its_group_and_the_homes_files() -> None:
    want = DesktopUser("retro", 1234, 1235)
    assert usersetup.user_commands(USERS, GROUPS, want, lambda _h: (1000, 1000)) == [
        ["groupmod", "-g", "1235", "retro"],
        ["usermod", "-o", "-u", "1234", "-g", "1235", "retro"],
        ["chown", "1234:1235", "/home/retro"],
        # usermod gives the files the new uid only: their group follows here
        ["chown", "-R", "-h", "--from=:1000", ":1235", "/home/retro"],
    ]


def test_a_pgid_held_by_another_group_is_used_and_no_gid_is_shared() -> None:
    want = DesktopUser("retro", 1000, 100)  # `users` has 100; group retro keeps 1000
    commands = usersetup.user_commands(USERS, GROUPS, want, lambda _h: (1000, 1000))
    assert commands[0] == ["usermod", "-o", "-u", "1000", "-g", "100", "retro"]
    assert not [c for c in commands if c[0] in ("groupmod", "groupadd")]


def test_a_system_account_is_never_moved_and_homes_outside_home_are_left_alone() -> None:
    users = usersetup.parse_accounts("daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n", "passwd")
    with pytest.raises(usersetup.UserSetupError, match="UNAME=daemon is a system account"):
        usersetup.user_commands(users, GROUPS, DesktopUser("daemon", 1234, 1234), lambda _h: None)
    same = DesktopUser("daemon", 1, 1)
    assert usersetup.user_commands(users, {"daemon": Account("daemon", 1)}, same, owned) == []


def owned(_home: str) -> tuple[int, int]:
    return (0, 0)


def test_a_missing_home_of_an_existing_user_is_made() -> None:
    want = DesktopUser("retro", 1000, 1000)
    assert usersetup.user_commands(USERS, GROUPS, want, lambda _h: None) == [
        ["install", "-d", "-o", "1000", "-g", "1000", "/home/retro"]
    ]


def test_exports_never_override_what_the_container_sets() -> None:
    want = DesktopUser("dev", 1234, 1234)
    assert usersetup.exports({"HELIX_INIT_CMD_USER": "root"}, want) == {
        "HELIX_DESKTOP_USER": "dev",
        "XDG_RUNTIME_DIR": "/run/user/1234",
    }


def test_will_create_names_the_user_its_uid_and_a_new_group() -> None:
    env = {"UNAME": "dev", "PUID": "1234", "PGID": "54321"}  # 54321: no group here
    assert [usersetup.will_create(env, a) for a in ("dev", "1234", "54321", "retro")] == [
        True,
        True,
        False,  # a uid is not a gid
        False,
    ]
    assert usersetup.will_create(env, "dev", "group")
    assert usersetup.will_create(env, "54321", "group")
    # PGID 0 is root's group: no group `dev` will be made for it
    assert not usersetup.will_create({"UNAME": "dev", "PGID": "0"}, "dev", "group")
    assert not usersetup.will_create({}, "retro")


@pytest.mark.parametrize("raw", ["²", "1e3", "-5", "", "4294967295"])
def test_puid_must_be_a_plain_number(raw: str) -> None:
    found = [p.where for p in user_settings.problems({"PUID": raw or " x"})]
    assert found == ["PUID"]


ROOT_SANDBOX = {"PUID": "0", "PGID": "0", "UNAME": "root", "XDG_RUNTIME_DIR": "/run/user/sandbox"}


def test_the_helix_sandbox_root_environment_is_accepted_and_leaves_root_alone() -> None:
    assert user_settings.problems(ROOT_SANDBOX) == []
    want = user_settings.wanted(ROOT_SANDBOX)
    assert want == DesktopUser("root", 0, 0) and want.is_root and want.home == "/root"
    assert usersetup.user_commands(USERS, GROUPS, want, lambda _h: (0, 0)) == []
    assert usersetup.exports(ROOT_SANDBOX, want) == {}  # the CMD is root; XDG as the image says
    assert usersetup.runtime_dir_commands(ROOT_SANDBOX, want, lambda _p: False) == []
    assert not usersetup.will_create(ROOT_SANDBOX, "root")


@pytest.mark.parametrize(
    ("env", "means"),
    [({"UNAME": "root"}, ("root", 0, 0)), ({"PUID": "0"}, ("root", 0, 0))],
)
def test_root_by_name_or_by_uid_alone(env: dict[str, str], means: tuple[str, int, int]) -> None:
    assert user_settings.problems(env) == []
    assert user_settings.wanted(env) == DesktopUser(*means)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"UNAME": "root", "PUID": "1000"}, "UNAME: root's ids are never changed: got PUID=1000"),
        ({"UNAME": "root", "PGID": "5"}, "UNAME: root's ids are never changed: got PGID=5"),
        ({"UNAME": "retro", "PUID": "0"}, "PUID: 0 is root's uid: set UNAME=root"),
        ({"PGID": "abc"}, "PGID: must be a number from 0 to 4294967294, got 'abc'"),
    ],
)
def test_root_with_other_ids_or_uid_0_for_another_name_is_one_line(
    env: dict[str, str], line: str
) -> None:
    (problem,) = user_settings.problems(env)
    assert str(problem).startswith(line), str(problem)


def test_the_exported_runtime_dir_is_made_for_the_user_when_missing() -> None:
    want = DesktopUser("retro", 1000, 1000)
    assert usersetup.runtime_dir_commands({}, want, lambda _p: False) == [
        ["install", "-d", "-m", "0700", "-o", "1000", "-g", "1000", "/run/user/1000"]
    ]
    assert usersetup.runtime_dir_commands({}, want, lambda _p: True) == []
    # The container's own XDG_RUNTIME_DIR is the image's business (GOW: Wolf mounts it).
    image_set = {"XDG_RUNTIME_DIR": "/tmp/x"}
    assert usersetup.runtime_dir_commands(image_set, want, lambda _p: False) == []
