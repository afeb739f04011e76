"""usersetup: PUID/PGID/UNAME decide the commands; a user already in place needs none."""

from __future__ import annotations

from helix_init import usersetup
from helix_init.usersetup import Account, DesktopUser

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
    assert usersetup.wanted({"HOME": "/root"}) is None
    assert usersetup.wanted({"PUID": "1234"}) == DesktopUser("retro", 1234, 1000)
    assert usersetup.wanted({"UNAME": "dev"}) == DesktopUser("dev", 1000, 1000)


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


def test_new_ids_move_the_user_and_group_and_chown_the_home_top() -> None:
    want = DesktopUser("retro", 1234, 1235)
    assert usersetup.user_commands(USERS, GROUPS, want, lambda _h: (1000, 1000)) == [
        ["groupmod", "-o", "-g", "1235", "retro"],
        ["usermod", "-o", "-u", "1234", "-g", "1235", "retro"],
        ["chown", "1234:1235", "/home/retro"],
    ]


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


def test_will_create_names_the_user_its_uid_and_gid() -> None:
    env = {"UNAME": "dev", "PUID": "1234", "PGID": "1240"}
    assert [usersetup.will_create(env, a) for a in ("dev", "1234", "1240", "retro")] == [
        True,
        True,
        True,
        False,
    ]
    assert not usersetup.will_create({}, "retro")
