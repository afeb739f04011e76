"""The desktop user from PUID/PGID/UNAME (settings/user.py): planned as commands, applied by the
`user` step.

COMPAT: today's images create or adjust the user named UNAME with uid PUID
and a primary group PGID at every start (defaults 1000/1000/retro), so files
on a bind mount belong to the operator's own uid, and run the session as that
user. Here that is one built-in step (`helix-init step user`,
cont-init.d/05-helix-user), active when any of PUID, PGID or UNAME is set;
otherwise it does nothing and the CMD runs as root (the sandbox image).

What it does, idempotently (/etc/passwd and /etc/group are read first, so a
second start issues no command):
- a group that already has gid PGID is used as the primary group as it is;
  otherwise group UNAME gets that gid (`groupmod`), or is created;
- user UNAME gets uid PUID and primary group PGID (`usermod -o`, which also
  gives the home folder's files the new uid; their group is moved by
  `chown -R --from=:OLD`), or is created with a home under /home
  (`useradd -o -m`: a uid shared with an image user is allowed); a system
  account (uid below 1000) is never moved;
- the home folder itself is chowned to PUID:PGID when it is not, if it is
  under /home.
Then, each only when not already set in the container, it exports
HELIX_INIT_CMD_USER=UNAME (the CMD runs as that user), HELIX_DESKTOP_USER=UNAME
(the docker-group step adds it to `docker`) and XDG_RUNTIME_DIR=/run/user/PUID.
UMASK (octal) applies to the CMD.

Root (the Helix sandbox image sets PUID=0 PGID=0 UNAME=root): nothing is
created or moved, nothing is exported (the CMD runs as root, XDG_RUNTIME_DIR
stays what the image sets), as GOW's own 10-setup_user.sh does ("Container
running as root. Nothing to do."). UNAME=root with a non-zero PUID or PGID,
or PUID=0 for another name, is refused: root's account is never moved, and
GOW's script would `userdel` root. PUID=0 with UNAME unset means root.

Beside an image's own user script (GOW/Helix `10-setup_user.sh`): the
built-in step runs first (05 < 10), so where both touch the account the
image's script wins (its `userdel`/`useradd` leave the account as the old
entrypoint did); the built-in step's exports (the CMD user, XDG_RUNTIME_DIR,
made here when it is exported so the image script's `chown -R` finds it)
stand, because the image's script exports nothing. docs/migration.md says so.
"""

from __future__ import annotations

import grp
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from helix_init.settings import CMD_USER
from helix_init.settings.dind import DESKTOP_USER
from helix_init.settings.user import DesktopUser, wanted

SYSTEM_UID_LIMIT = 1000  # accounts below this are the system's: never moved


@dataclass(frozen=True)
class Account:
    """One /etc/passwd or /etc/group entry: name, id, and the user's primary gid and home."""

    name: str
    id: int
    gid: int = -1
    home: str = ""


def will_create(
    env: Mapping[str, str],
    account: str,
    kind: str = "user",
    has_gid: Callable[[int], bool] | None = None,
) -> bool:
    """True if the user step will make `account` exist: for kind "user" UNAME or PUID,
    for "group" PGID, or UNAME when it becomes a new group (no group holds PGID yet:
    `has_gid`, the system's group database unless given)."""
    user = wanted(env)
    if user is None or user.is_root:
        return False
    if kind == "user":
        return account in (user.name, str(user.uid))
    if account == str(user.gid):
        return True
    return account == user.name and not (has_gid or _has_gid)(user.gid)  # groupadd/groupmod


def _has_gid(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
    except KeyError:
        return False
    return True


def parse_accounts(text: str, kind: str) -> dict[str, Account]:
    """/etc/passwd (kind "passwd") or /etc/group (kind "group") text -> name -> Account."""
    found: dict[str, Account] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if kind == "passwd" and len(fields) == 7 and fields[2].isdigit() and fields[3].isdigit():
            found[fields[0]] = Account(fields[0], int(fields[2]), int(fields[3]), fields[5])
        elif kind == "group" and len(fields) == 4 and fields[2].isdigit():
            found[fields[0]] = Account(fields[0], int(fields[2]))
    return found


class UserSetupError(Exception):
    """The wanted user cannot be made safely; the message says why in one line."""


def user_commands(
    users: Mapping[str, Account],
    groups: Mapping[str, Account],
    want: DesktopUser,
    home_owner: Callable[[str], tuple[int, int] | None],
) -> list[list[str]]:
    """The commands still needed to make `want` true; empty when it already is (and for root)."""
    if want.is_root:
        return []
    user = users.get(want.name)
    if user is not None and user.id < SYSTEM_UID_LIMIT and user.id != want.uid:
        raise UserSetupError(
            f"UNAME={want.name} is a system account (uid {user.id}); choose another name"
        )
    commands: list[list[str]] = []
    # A group that already has PGID (UNAME's own or another, such as `users`) is
    # used as it is; otherwise group UNAME gets that gid, made or moved.
    if not any(g.id == want.gid for g in groups.values()):
        verb = "groupmod" if want.name in groups else "groupadd"
        commands.append([verb, "-g", str(want.gid), want.name])
    home = user.home if user is not None and user.home else want.home
    if user is None:
        ids = ["-u", str(want.uid), "-g", str(want.gid)]
        commands.append(["useradd", "-o", "-m", "-d", home, "-s", "/bin/bash", *ids, want.name])
    elif user.id != want.uid or user.gid != want.gid:
        commands.append(["usermod", "-o", "-u", str(want.uid), "-g", str(want.gid), want.name])
    if not home.startswith("/home/"):
        return commands  # never chown a home such as / or /usr/sbin
    owner = home_owner(home)
    if owner is None and user is not None:  # (useradd -m makes a new user's home)
        commands.append(["install", "-d", "-o", str(want.uid), "-g", str(want.gid), home])
    elif owner is not None and owner != (want.uid, want.gid):
        commands.append(["chown", f"{want.uid}:{want.gid}", home])
    if user is not None and owner is not None and user.gid != want.gid:
        # usermod moves the uid of the home's files, not their group
        commands.append(["chown", "-R", "-h", f"--from=:{user.gid}", f":{want.gid}", home])
    return commands


def exports(env: Mapping[str, str], want: DesktopUser) -> dict[str, str]:
    """The variables the step hands on; never one the container already sets; none for root."""
    if want.is_root:
        return {}
    values = {
        CMD_USER: want.name,
        DESKTOP_USER: want.name,
        "XDG_RUNTIME_DIR": runtime_dir(want),
    }
    return {k: v for k, v in values.items() if not env.get(k)}


def runtime_dir(want: DesktopUser) -> str:
    return f"/run/user/{want.uid}"


def runtime_dir_commands(
    env: Mapping[str, str], want: DesktopUser, exists: Callable[[str], bool]
) -> list[list[str]]:
    """Make the XDG_RUNTIME_DIR the step exports (0700, the user's), if it is missing.

    An image's own 10-setup_user.sh runs `chown -R ... "$XDG_RUNTIME_DIR"` under
    `set -e`: the folder must exist once the variable names it."""
    path = exports(env, want).get("XDG_RUNTIME_DIR")
    if path is None or exists(path):
        return []
    return [["install", "-d", "-m", "0700", "-o", str(want.uid), "-g", str(want.gid), path]]


def home_owner(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_uid, st.st_gid


def read_accounts(etc: Path = Path("/etc")) -> tuple[dict[str, Account], dict[str, Account]]:
    return (
        parse_accounts((etc / "passwd").read_text(), "passwd"),
        parse_accounts((etc / "group").read_text(), "group"),
    )
