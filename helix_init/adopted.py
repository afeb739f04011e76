"""Processes a cont-init step left running (`daemon &`, a restart loop): listed, stopped gently.

Runs in PID 1. COMPAT: today's Helix scripts start their daemons from
cont-init (`( while true; do dockerd ...; sleep 2; done ) | tee | sed &`).
helix-init adopts what a step leaves behind: every live process of the step's
session (each step is a session leader, and `&` keeps the session), so
`helix-init status` lists them under their step, and at shutdown, before the
final sweep and its short KILL grace, each step's processes (the latest step
first) get TERM and a grace that covers a dockerd's flush:

- the grace is HELIX_INIT_ADOPTED_GRACETIME (10 s), or for a dockerd among
  them its own `shutdown-timeout` (its flag, else its --config-file,
  /etc/docker/daemon.json, else dockerd's default 15 s) plus DOCKERD_EXIT_MARGIN
  for its own exit, whichever is longer; nothing is KILLed before it ends;
- TERM goes to the restart-loop shells and to what they (or nobody) started,
  not to a daemon's own children (dockerd stops its containerd itself), so a
  loop cannot restart what was just stopped;
- output helpers (`tee`, `sed`, ...) get TERM only once the rest has ended: a
  daemon writing its last lines into a pipe whose reader is gone would die of
  SIGPIPE mid-flush.
Each step, each process and its end are logged by name. The safer way stays
a services.d file (docs/migration.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from helix_init.contenv import is_secret_name
from helix_init.logsink import Log
from helix_init.settings import ADOPTED_GRACETIME

DEFAULT_GRACE = 10.0
DOCKERD_SHUTDOWN_TIMEOUT = 15.0  # dockerd's own default
DOCKERD_EXIT_MARGIN = 10.0  # after its shutdown-timeout: stopping containerd, unmounting
DOCKERD_CONFIG = "/etc/docker/daemon.json"
SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox"})
HELPERS = frozenset({"tee", "sed", "cat", "logger", "awk", "gawk", "mawk", "grep", "ts"})
_POLL = 0.1


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    name: str  # comm
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        return " ".join(self.argv) or f"[{self.name}]"


def parse_stat(pid: int, stat: bytes, cmdline: bytes) -> Proc | None:
    """One /proc/PID entry; None for a zombie (already gone for our purpose)."""
    head, _, rest = stat.rpartition(b")")
    fields = rest.split()
    if len(fields) < 4 or fields[0] == b"Z":
        return None
    name = head.partition(b"(")[2].decode(errors="replace")
    argv = tuple(a.decode(errors="replace") for a in cmdline.split(b"\0") if a)
    return Proc(pid, int(fields[1]), int(fields[3]), name, argv)


def scan(proc: Path = Path("/proc")) -> list[Proc]:
    found = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_bytes()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        parsed = parse_stat(int(entry.name), stat, cmdline)
        if parsed is not None:
            found.append(parsed)
    return found


def members(procs: Iterable[Proc], sid: int) -> list[Proc]:
    return sorted((p for p in procs if p.sid == sid), key=lambda p: p.pid)


def first_wave(left: Sequence[Proc]) -> list[Proc]:
    """Whom to TERM first: the shells, and what a shell (or nobody left) started; no helpers."""
    pids = {p.pid: p for p in left}
    wave = []
    for p in left:
        if p.name in HELPERS:
            continue
        parent = pids.get(p.ppid)
        if parent is None or parent.name in SHELLS or p.name in SHELLS:
            wave.append(p)
    return wave


def flag_value(argv: Sequence[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def dockerd_shutdown_timeout(argv: Sequence[str], read: Callable[[str], str]) -> float:
    """dockerd's shutdown-timeout: its flag, else its config file's key, else 15 s."""
    raw = flag_value(argv, "--shutdown-timeout")
    if raw is None:
        try:
            config = json.loads(read(flag_value(argv, "--config-file") or DOCKERD_CONFIG))
            raw = config.get("shutdown-timeout") if isinstance(config, dict) else None
        except (OSError, ValueError):
            raw = None
    try:
        value = float(raw) if raw is not None else DOCKERD_SHUTDOWN_TIMEOUT
    except (TypeError, ValueError):
        value = DOCKERD_SHUTDOWN_TIMEOUT
    return value if value >= 0 else DOCKERD_SHUTDOWN_TIMEOUT


def grace(left: Sequence[Proc], default: float, read: Callable[[str], str]) -> tuple[float, str]:
    """How long the step's processes get after TERM, and why (for the log line)."""
    best, why = default, f"{ADOPTED_GRACETIME} {default:g}s"
    for p in left:
        if p.name == "dockerd":
            timeout = dockerd_shutdown_timeout(p.argv, read)
            if timeout + DOCKERD_EXIT_MARGIN > best:
                best = timeout + DOCKERD_EXIT_MARGIN
                why = f"dockerd's shutdown-timeout {timeout:g}s + {DOCKERD_EXIT_MARGIN:g}s"
    return best, why


def masker(env: Mapping[str, str]) -> Callable[[str], str]:
    """Masks the values of secret-named variables (`*TOKEN*`, ...) in a command line."""
    values = sorted(
        {v for k, v in env.items() if len(v) >= 4 and is_secret_name(k)}, key=len, reverse=True
    )

    def hide(command: str) -> str:
        for value in values:
            command = command.replace(value, "********")
        return command

    return hide


def describe(left: Sequence[Proc], hide: Callable[[str], str]) -> list[dict[str, object]]:
    return [{"pid": p.pid, "name": p.name, "command": hide(p.command)} for p in left]


def _read(path: str) -> str:
    return Path(path).read_text()


def _term(procs: Iterable[Proc]) -> None:
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


def _names(procs: Iterable[Proc]) -> str:
    return ", ".join(f"{p.name} (pid {p.pid})" for p in procs)


async def stop_step(
    step: str, sid: int, log: Log, default_grace: float, hide: Callable[[str], str] = str
) -> bool:
    """TERM what step `step` left running and wait for it, within its grace; True if all ended."""
    left = members(scan(), sid)
    if not left:
        return True
    seconds, why = grace(left, default_grace, _read)
    wave = first_wave(left)
    log.info(
        f"stopping what step {step} left running: TERM to {_names(wave)}; "
        f"up to {seconds:g}s ({why}), no KILL before"
    )
    started = time.monotonic()
    deadline = started + seconds
    termed: set[int] = set()

    def term_new(current: Sequence[Proc]) -> None:
        new = [p for p in first_wave(current) if p.pid not in termed]
        termed.update(p.pid for p in new)
        _term(new)

    term_new(left)
    watched = {p.pid: p for p in left if p.name not in HELPERS}
    while watched:
        await asyncio.sleep(_POLL)
        current = members(scan(), sid)
        alive = {p.pid for p in current}
        for pid in [pid for pid in watched if pid not in alive]:
            p = watched.pop(pid)
            took = time.monotonic() - started
            log.info(f"step {step}: {p.name} (pid {pid}) ended {took:.1f}s after TERM")
        # What appeared meanwhile (a loop's last restart) is TERMed and waited for too.
        watched.update((p.pid, p) for p in current if p.name not in HELPERS)
        term_new(current)
        if time.monotonic() >= deadline:
            break
    if watched:
        log.warn(
            f"step {step}: {_names(watched.values())} still running after {seconds:g}s; "
            "the final sweep takes over"
        )
    helpers = [p for p in members(scan(), sid) if p.name in HELPERS]
    if helpers:
        _term(helpers)
    return not watched
