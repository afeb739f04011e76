"""The `hide-proc` step: this level's /proc hides root's processes from other users (root)."""

from __future__ import annotations

from helix_init import procmount
from helix_init.builtin.level import Level, run_command, say


def hide_other_users_processes(level: Level) -> None:
    """Remount /proc with hidepid, so a token in a root process's argv is root's alone.

    Prevents the desktop user (and the user's containers) reading the RevDial
    runner token: Helix's revdial-client takes it only as `-token`, which sits
    in /proc/PID/cmdline (procmount.py).
    """
    procmount.hide_processes(level.env, remount_proc, say)


def remount_proc(value: str) -> tuple[int, str]:
    """`mount -o remount,hidepid=VALUE /proc` as util-linux makes it, without its exec.

    The call util-linux makes (strace): /proc's own per-mount flags again,
    MS_REMOUNT, `hidepid=VALUE` as data; the command itself when those flags
    cannot be said exactly (dind/mountcall.py).
    """
    from helix_init.dind import mountcall

    options = procmount.proc_mount_options(procmount.read_mountinfo())
    kept = mountcall.per_mount_flags(options) if options is not None else None
    if options is None or kept is None:
        done = run_command(procmount.remount_argv(value))
        return done.returncode, done.stderr or done.stdout
    read_only = mountcall.MS_RDONLY if "ro" in options else 0
    try:
        flags = mountcall.MS_REMOUNT | kept | read_only
        mountcall.mount("proc", "/proc", "proc", flags, f"hidepid={value}")
    except OSError as exc:
        return exc.errno or 1, exc.strerror or "failed"
    return 0, ""
