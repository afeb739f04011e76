"""The CMD: the container's main program, started after init, optionally as another user.

Runs in PID 1. The CMD gets the container environment (with cont-init
exports) minus the variables services take their secrets from, the init's
stdin and stdout, and its own process group; when stdin is a terminal that
group is made the terminal's foreground group (as tini does) so interactive
shells work. Its end ends the container.
"""

from __future__ import annotations

import grp
import os
import pwd
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from helix_init.reaper import Child, Reaper


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str
    home: str


def resolve_user(spec: str) -> RunAs:
    """'name', 'uid', 'name:group' or 'uid:gid' -> RunAs; KeyError(message) when unknown."""
    user, _, group = spec.partition(":")
    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise KeyError(f"unknown user {user!r}") from None
    gid = pw.pw_gid
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise KeyError(f"unknown group {group!r}") from None
    groups = tuple(os.getgrouplist(pw.pw_name, gid))
    return RunAs(pw.pw_uid, gid, groups, pw.pw_name, pw.pw_dir)


def cmd_argv(args: Sequence[str], shell_compat: bool) -> list[str]:
    """COMPAT: with HELIX_INIT_CMD_SHELL=1 a single argument runs as `bash -c ARG`."""
    if shell_compat and len(args) == 1:
        return ["/bin/bash", "-c", args[0]]
    return list(args)


def _take_terminal() -> None:
    """In the child, before exec: become the terminal's foreground process group."""
    handler = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(0, os.getpgrp())
    except OSError:
        pass
    signal.signal(signal.SIGTTOU, handler)


def start_cmd(
    reaper: Reaper,
    argv: Sequence[str],
    env: Mapping[str, str],
    run_as: RunAs | None,
    umask: int | None = None,
) -> Child:
    """Start the CMD as `run_as` (HOME, USER, LOGNAME set for it) under `umask` (COMPAT UMASK)."""
    env = dict(env)
    kwargs: dict[str, object] = {}
    if run_as is not None:
        env.update(HOME=run_as.home, USER=run_as.name, LOGNAME=run_as.name)
        kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": list(run_as.groups)}
    tty = os.isatty(0)
    return reaper.spawn(
        argv,
        name="cmd",
        env=env,
        stdin=None,
        new_session=False,
        process_group=0,
        preexec_fn=_take_terminal if tty else None,
        umask=-1 if umask is None else umask,
        **kwargs,  # type: ignore[arg-type]
    )
