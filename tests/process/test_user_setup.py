"""PUID/PGID/UNAME/UMASK (COMPAT): the user step makes the desktop user and the CMD runs as it.

The real step (`helix-init step user`, useradd/usermod from the host's shadow
package) runs under the real init as PID 1, with a private /etc and /home for
the init's mount namespace (Pid1.private_accounts), kept between the runs of
one test so that a second start sees what the first one made.
"""

from __future__ import annotations

import pytest

from tests.support.pid1 import HELIX_INIT, Finished, Pid1

pytestmark = pytest.mark.process

SHOW = 'echo "cmd $(id -u) $(id -g) $(id -un) $(id -gn) umask=$(umask) HOME=$HOME"'


def _user_step(pid1: Pid1) -> None:
    pid1.step("05-helix-user", f"#!/bin/sh\nexec {HELIX_INIT} step user\n")


def _run(pid1: Pid1, **env: str) -> Finished:
    result = pid1.run("sh", "-c", SHOW, env=env)
    assert result.code == 0, result.describe()
    return result


def test_the_cmd_runs_as_puid_pgid_uname_twice_in_a_row(pid1: Pid1) -> None:
    pid1.private_accounts()
    _user_step(pid1)
    env = {"PUID": "1234", "PGID": "1234", "UNAME": "dev", "UMASK": "027"}

    first = _run(pid1, **env)
    second = _run(pid1, **env)

    for result in (first, second):
        assert "cmd 1234 1234 dev dev umask=0027 HOME=/home/dev" in result.lines
    made = first.texts("05-helix-user")
    assert made[:2] == [
        "ran: groupadd -g 1234 dev",
        "ran: useradd -o -m -d /home/dev -s /bin/bash -u 1234 -g 1234 dev",
    ], first.describe()
    # Idempotent: the second start changes nothing and says so in one line.
    assert second.texts("05-helix-user") == ["user dev (uid 1234, gid 1234) already in place"]
    assert first.has(
        "step 05-helix-user exported HELIX_DESKTOP_USER, HELIX_INIT_CMD_USER, XDG_RUNTIME_DIR"
    )
    assert (pid1.path("home") / "dev").stat().st_uid == 1234


def test_new_ids_for_an_existing_user_move_it_and_its_home(pid1: Pid1) -> None:
    pid1.private_accounts()
    _user_step(pid1)
    _run(pid1, PUID="1234", PGID="1234", UNAME="dev")

    moved = _run(pid1, PUID="2345", PGID="2346", UNAME="dev")

    assert "cmd 2345 2346 dev dev umask=0022 HOME=/home/dev" in moved.lines, moved.describe()
    assert moved.texts("05-helix-user")[:2] == [
        "ran: groupmod -g 2346 dev",
        "ran: usermod -o -u 2345 -g 2346 dev",
    ]
    # The home and the files in it follow both ids (usermod moves only the uid).
    home = pid1.path("home") / "dev"
    for path in (home, home / ".bashrc"):
        assert (path.stat().st_uid, path.stat().st_gid) == (2345, 2346), path


def test_without_puid_pgid_uname_the_step_does_nothing_and_the_cmd_is_root(pid1: Pid1) -> None:
    pid1.private_accounts()
    _user_step(pid1)

    result = _run(pid1)

    assert result.lines.count("cmd 0 0 root root umask=0022 HOME=/root") == 1, result.describe()
    assert result.texts("05-helix-user") == [
        "PUID, PGID and UNAME are unset: no desktop user to set up"
    ]


def test_the_operators_cmd_user_wins_over_uname(pid1: Pid1) -> None:
    pid1.private_accounts()
    _user_step(pid1)

    result = _run(pid1, PUID="1234", UNAME="dev", HELIX_INIT_CMD_USER="root")

    assert "cmd 0 0 root root umask=0022 HOME=/root" in result.lines, result.describe()


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("PUID", "abc", "PUID: must be a number from 0 to 4294967294, got 'abc'"),
        (
            "UNAME",
            "Bad Name",
            "UNAME: must be a user name (a-z, 0-9, _ and -), got 'Bad Name'",
        ),
        ("UMASK", "999", "UMASK: must be an octal mask like 022, got '999'"),
    ],
)
def test_a_bad_value_stops_the_boot_before_any_step(
    pid1: Pid1, variable: str, value: str, problem: str
) -> None:
    marker = pid1.path("ran")
    pid1.step("01-marker.sh", f'touch "{marker}"\n')

    result = pid1.run("true", env={variable: value})

    assert result.code == 78, result.describe()
    assert problem in result.errors(), result.describe()
    assert not marker.exists()


def test_a_service_for_uname_without_the_user_step_is_one_line_not_a_crash(pid1: Pid1) -> None:
    pid1.private_accounts()
    services = pid1.path("services.d")
    services.mkdir()
    (services / "bridge.toml").write_text('command = ["sleep", "100"]\nuser = "${UNAME}"\n')
    marker = pid1.path("cmd-ran")

    result = pid1.run("touch", str(marker), env={"UNAME": "dev", "PUID": "1234"})

    # Accepted before cont-init (the step would make dev), refused after it.
    assert result.code == 78, result.describe()
    assert f"{services / 'bridge.toml'}: user: unknown user 'dev'" in result.errors()
    assert not marker.exists()
