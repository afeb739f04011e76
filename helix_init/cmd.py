"""The CMD: the container's main program, started after init, optionally as another user.

Runs in PID 1. The CMD gets the container environment (with cont-init
exports) minus the variables services take their secrets from, the init's
stdin and stdout, and its own process group; when stdin is a terminal that
group is made the terminal's foreground group (as tini does) so interactive
shells work. Its end ends the container.

COMPAT, GOW's start contract (HELIX_INIT_START=gow, or `helix-init --gow`):
GOW's /entrypoint.sh, after the cont-init scripts, runs
- with no arguments: `exec gosu "$UNAME" /opt/gow/startup.sh` (chmod +x first);
  here the image's startup script (HELIX_INIT_GOW_STARTUP, or STARTUP_SCRIPT as
  the Helix desktop's entrypoint reads it; else the first of GOW_STARTUPS that
  exists: the Helix sandbox ships /opt/gow/startup-app.sh only) as $UNAME with
  gosu's semantics: uid, the passwd entry's primary gid, the supplementary
  groups from /etc/group, HOME from passwd (gosu always resets it), and
  USER/LOGNAME (which gosu leaves alone; set here as for any CMD user);
- with arguments: `/bin/bash -c "$@"` as root, exactly: the first argument is
  the script, the next ones its $0, $1, ...
HELIX_INIT_CMD_USER set in the container wins in both cases. No startup
script at all (helix-init's own images): no CMD, one line says so.
"""

from __future__ import annotations

import grp
import os
import pwd
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from helix_init.reaper import Child, Reaper
from helix_init.settings import CMD_USER, GOW_STARTUP, START, Settings


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


GOW_STARTUPS = (Path("/opt/gow/startup.sh"), Path("/opt/gow/startup-app.sh"))


def cmd_argv(args: Sequence[str], shell_compat: bool) -> list[str]:
    """COMPAT: with HELIX_INIT_CMD_SHELL=1 a single argument runs as `bash -c ARG`."""
    if shell_compat and len(args) == 1:
        return ["/bin/bash", "-c", args[0]]
    return list(args)


def gow_startup(
    configured: Path | None, exists: Callable[[Path], bool] = Path.is_file
) -> Path | None:
    """The startup script GOW's entrypoint would exec; None when the image has none."""
    if configured is not None:
        return configured
    return next((path for path in GOW_STARTUPS if exists(path)), None)


def gow_argv(args: Sequence[str], startup: Path | None) -> list[str]:
    """GOW: arguments run as `/bin/bash -c "$@"`; none run the startup script (or nothing)."""
    if args:
        return ["/bin/bash", "-c", *args]
    return [str(startup)] if startup is not None else []


NO_STARTUP = (
    f"{START}=gow: no startup script ({GOW_STARTUP}, "
    + " or ".join(map(str, GOW_STARTUPS))
    + "): running without a CMD"
)


def plan_argv(args: Sequence[str], settings: Settings) -> tuple[list[str], bool]:
    """The CMD's argv, and whether it is GOW's startup script (run as $UNAME)."""
    if settings.start != "gow":
        return cmd_argv(args, settings.cmd_shell), False
    startup = None if args else gow_startup(settings.gow_startup)
    return gow_argv(args, startup), startup is not None


def cmd_user(
    start: str, startup_script: bool, container_user: str | None, env: Mapping[str, str]
) -> str | None:
    """Who runs the CMD, read when it starts (after cont-init); None = root, as the init.

    Default: HELIX_INIT_CMD_USER as the steps left it (the user step exports it).
    GOW: the container's own HELIX_INIT_CMD_USER if set; else the startup script
    runs as $UNAME (root when unset) and arguments as root, as GOW's entrypoint.
    """
    if start != "gow":
        return env.get(CMD_USER) or None
    if container_user:
        return container_user
    return (env.get("UNAME", "").strip() or "root") if startup_script else None


def make_executable(path: str) -> None:
    """GOW's `chmod +x /opt/gow/startup.sh` before it execs the script (as root)."""
    try:
        mode = os.stat(path).st_mode
        if mode & 0o111 != 0o111:
            os.chmod(path, mode | 0o111)
    except OSError:
        pass  # the start then fails with one line naming the file


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
