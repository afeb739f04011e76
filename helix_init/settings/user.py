"""User settings: PUID, PGID, UNAME and UMASK (COMPAT: today's images), parsed once; pure.

Boot and `helix-init check` report every bad value before anything starts
(`problems`); the `user` step plans its commands from UserSettings.user
(usersetup.py); UMASK is read again when the CMD starts, since a step may
export it. The names the step exports (HELIX_INIT_CMD_USER,
HELIX_DESKTOP_USER) are those of settings/__init__.py and settings/dind.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from helix_init.problems import ConfigError, Problem

PUID, PGID, UNAME, UMASK = "PUID", "PGID", "UNAME", "UMASK"
VARIABLES = (PUID, PGID, UNAME)  # any of them set: the user step makes the user
DEFAULT_NAME = "retro"
DEFAULT_ID = 1000
ROOT = "root"
_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")
_UMASK = re.compile(r"^0?[0-7]{3}$")


@dataclass(frozen=True)
class DesktopUser:
    name: str
    uid: int
    gid: int

    @property
    def home(self) -> str:
        return "/root" if self.is_root else f"/home/{self.name}"

    @property
    def is_root(self) -> bool:
        return self.name == ROOT


@dataclass(frozen=True)
class UserSettings:
    user: DesktopUser | None = None  # None: PUID, PGID and UNAME are all unset
    umask: int | None = None  # the CMD's

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> UserSettings:
        """The user settings; ConfigError naming each bad variable."""
        found = problems(env)
        if found:
            raise ConfigError(found)
        return cls(wanted(env), umask(env))


def problems(env: Mapping[str, str]) -> list[Problem]:
    """Bad PUID/PGID/UNAME/UMASK values, each naming its variable (checked before boot)."""
    found: list[Problem] = []
    ids: dict[str, int] = {}
    for var in (PUID, PGID):
        raw = env.get(var, "").strip()
        if raw and not (raw.isascii() and raw.isdigit() and int(raw) < 2**32 - 1):
            found.append(Problem(var, f"must be a number from 0 to 4294967294, got {raw!r}"))
        elif raw:
            ids[var] = int(raw)
    name = env.get(UNAME, "").strip()
    if name and not _NAME.match(name):
        found.append(Problem(UNAME, f"must be a user name (a-z, 0-9, _ and -), got {name!r}"))
    elif name == ROOT:
        moved = [f"{var}={ids[var]}" for var in (PUID, PGID) if ids.get(var, 0) != 0]
        if moved:
            found.append(
                Problem(UNAME, f"root's ids are never changed: got {' '.join(moved)} (use 0)")
            )
    elif ids.get(PUID) == 0 and name:
        found.append(Problem(PUID, f"0 is root's uid: set UNAME=root, or a uid for {name}"))
    mask = env.get(UMASK, "").strip()
    if mask and not _UMASK.match(mask):
        found.append(Problem(UMASK, f"must be an octal mask like 022, got {mask!r}"))
    return found


def wanted(env: Mapping[str, str]) -> DesktopUser | None:
    """The user the step makes; None when PUID, PGID and UNAME are all unset (see problems).

    UNAME=root, or PUID=0 without a UNAME, is root itself (see is_root)."""
    if not any(env.get(var, "").strip() for var in VARIABLES):
        return None
    name = env.get(UNAME, "").strip()
    uid = int(env.get(PUID, "").strip() or (0 if name == ROOT else DEFAULT_ID))
    gid = int(env.get(PGID, "").strip() or (0 if name == ROOT or uid == 0 else DEFAULT_ID))
    if not name:
        name = ROOT if uid == 0 else DEFAULT_NAME
    return DesktopUser(name, uid, gid)


def umask(env: Mapping[str, str]) -> int | None:
    """UMASK as a number; ValueError (one line) when a step exported a bad one."""
    raw = env.get(UMASK, "").strip()
    if raw and not _UMASK.match(raw):
        raise ValueError(f"UMASK must be an octal mask like 022, got {raw!r}")
    return int(raw, 8) if raw else None
