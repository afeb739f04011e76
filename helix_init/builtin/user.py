"""The `user` step: the desktop user from PUID/PGID/UNAME, handed the CMD; runs as root."""

from __future__ import annotations

import os

from helix_init import usersetup
from helix_init.builtin.level import Level, run_command, say
from helix_init.hostcmd import check


def set_up_user(level: Level) -> None:
    """COMPAT: make the desktop user from PUID/PGID/UNAME and hand it the CMD (usersetup.py).

    Prevents files on a bind mount belonging to the image's uid instead of
    the operator's, as today's images guarantee by adjusting the user at
    every start.
    """
    want = level.user.user
    if want is None:
        say("PUID, PGID and UNAME are unset: no desktop user to set up")
        return
    if want.is_root:
        say("UNAME=root: the container runs as root; no user to set up")
        return
    users, groups = usersetup.read_accounts()
    ran = usersetup.user_commands(users, groups, want, usersetup.home_owner)
    ran += usersetup.runtime_dir_commands(level.env, want, os.path.isdir)
    for argv in ran:
        check(run_command, argv)
        say(f"ran: {' '.join(argv)}")
    if not ran:
        say(f"user {want.name} (uid {want.uid}, gid {want.gid}) already in place")
    for name, value in usersetup.exports(level.env, want).items():
        level.export(name, value)
