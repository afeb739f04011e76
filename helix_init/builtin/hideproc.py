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

    def run(argv: list[str]) -> tuple[int, str]:
        done = run_command(argv)
        return done.returncode, done.stderr or done.stdout

    procmount.hide_processes(level.env, run, say)
