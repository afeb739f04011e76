"""/proc's hidepid: does this level's /proc hide root's processes from other users, and make it so.

Read in PID 1 (before a service that carries a secret in its argv starts) and
in the `hide-proc` step (root), which remounts /proc. Why: a binary that takes
its token only as a flag (Helix's revdial-client: `-token T`) puts it in
/proc/PID/cmdline, which every user can read on a default /proc. With
`hidepid=invisible` (systemd's ProtectProc=invisible; `hidepid=2` on older
kernels) a user sees only their own processes: the desktop user and the
user's containers cannot read root's command lines, through /proc or `ps`.
procfs options are per instance (Linux 5.8+): remounting this level's /proc
changes neither the host's nor an inner container's (each has its own).
Checked: in `unshare --pid --fork --mount-proc` (the process tests) and in a
Docker container with the testbed's capability set (ALL minus SYS_RESOURCE,
no --privileged): after the remount, `nobody` sees only its own pids and
cannot read /proc/1/cmdline. Without CAP_SYS_ADMIN the remount fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from helix_init.settings import HIDE_PROC, INIT_PID

# hidepid values under which another user cannot read /proc/PID/cmdline.
HIDING = frozenset({"1", "2", "4", "noaccess", "invisible", "ptraceable"})
WANTED = "invisible"
MOUNTINFO = Path("/proc/self/mountinfo")


def _topmost_proc(mountinfo: str, where: str) -> tuple[list[str], int] | None:
    """The mountinfo fields of the procfs mounted last (topmost) at `where`, and where its
    " - " separator is; None if no procfs is mounted there."""
    found: tuple[list[str], int] | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 10 or fields[4] != where or "-" not in fields:
            continue
        dash = fields.index("-")
        if fields[dash + 1 : dash + 2] == ["proc"] and len(fields) >= dash + 4:
            found = fields, dash
    return found


def hidepid(mountinfo: str, where: str = "/proc") -> str | None:
    """The hidepid option of the procfs mounted last (topmost) at `where`; None if none."""
    found = _topmost_proc(mountinfo, where)
    if found is None:
        return None
    fields, dash = found
    value = ""
    for option in fields[dash + 3].split(","):
        name, _, given = option.partition("=")
        if name == "hidepid":
            value = given
    return value or None


def proc_mount_options(mountinfo: str, where: str = "/proc") -> frozenset[str] | None:
    """The per-mount options (mountinfo's sixth field) of the procfs mounted last at `where`."""
    found = _topmost_proc(mountinfo, where)
    return frozenset(found[0][5].split(",")) if found is not None else None


def hides_other_users(mountinfo: str) -> bool:
    return hidepid(mountinfo) in HIDING


def read_mountinfo() -> str:
    try:
        return MOUNTINFO.read_text()
    except OSError:
        return ""


def remount_argv(value: str = WANTED) -> list[str]:
    return ["mount", "-o", f"remount,hidepid={value}", "/proc"]


def hide_processes(
    env: Mapping[str, str], remount: Callable[[str], tuple[int, str]], say: Callable[[str], None]
) -> None:
    """The `hide-proc` step: remount this level's /proc so only root sees root's processes.

    HELIX_HIDE_PROC=0 leaves /proc alone (a service with an argv secret then
    refuses to start, saying why). A remount that fails (no CAP_SYS_ADMIN) is
    one warning, not a failed boot: the same refusal protects the token.
    `remount(value)` remounts /proc with hidepid=value: (0, "") or (code, why).
    """
    if env.get(HIDE_PROC, "1").strip().lower() in ("0", "false", "no", "off"):
        say(f"{HIDE_PROC}=0: /proc left as it is (argv secrets will not be used)")
        return
    init_pid = env.get(INIT_PID, "1")
    if init_pid != "1":
        # Not the PID 1 of its own namespace (a subreaper on a host): /proc
        # here is not this level's alone, and a host's /proc is not ours to change.
        say(f"helix-init is not PID 1 (pid {init_pid}): /proc left as it is")
        return
    current = hidepid(read_mountinfo())
    if current in HIDING:
        say(f"/proc already hides other users' processes (hidepid={current})")
        return
    why = ""
    for value in (WANTED, "2"):  # "invisible" needs Linux 5.8; 2 is the same on older ones
        code, why = remount(value)
        if code == 0:
            say(f"/proc remounted with hidepid={value}: only root sees root's processes")
            return
    say(
        f"warning: cannot remount /proc with hidepid ({why.strip() or 'failed'}):"
        " services that carry a secret in argv will not start"
    )
