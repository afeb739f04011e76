"""How helix-init runs an s6 service folder (a v3 longrun, or services.d/NAME/): its argv.

Pure; imports nothing from helix_init, so services/spec.py (v2 folders) and
s6/convert.py (v3 longruns) share it (the s6 package imports services, never
the other way round). The argv goes through s6/compat/supervise.py only when
the folder needs it: a notification-fd (readiness by a newline on that fd), a
finish script (run with s6's arguments, exit 125 meaning "do not restart"), or
a place in a logger pipeline (stdin or stdout on a FIFO); otherwise it is the
run script.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SUPERVISE = Path(__file__).resolve().parents[1] / "s6" / "compat" / "supervise.py"


def command(
    folder: Path,
    run: Path,
    finish: Path | None,
    notification_fd: int | None,
    timeout_finish: float = 5.0,
    stdin_fifo: Path | None = None,
    stdout_fifo: Path | None = None,
    kill_after: float = 0.0,
    down_signal: str = "TERM",
) -> tuple[str, ...]:
    """The argv; with a finish and `kill_after` (seconds), the shim KILLs the run that long
    after `down_signal` itself, so its finish still runs (see stop_timeout below)."""
    argv = script_argv(run)
    if finish is None and notification_fd is None and stdin_fifo is None and stdout_fifo is None:
        return argv
    shim: list[str] = [os.path.realpath(sys.executable), "-IS", str(SUPERVISE)]
    if stdin_fifo is not None:
        shim += ["--stdin", str(stdin_fifo)]
    if stdout_fifo is not None:
        shim += ["--stdout", str(stdout_fifo)]
    if notification_fd is not None:
        shim += ["--notify", str(notification_fd)]
    if finish is not None:
        shim += ["--finish", str(finish), "--timeout-finish", str(round(timeout_finish * 1000))]
        if kill_after > 0:
            shim += ["--kill-after", str(round(kill_after * 1000)), "--down-signal", down_signal]
    return (*shim, str(folder), "--", *argv)


def stop_timeout(kill_after: float, finish: Path | None, timeout_finish: float) -> float:
    """supervisord's (and the init's) stop grace for the folder: with a finish, past the
    shim's own KILL and the finish's time, so that neither ends the shim first."""
    return kill_after + timeout_finish + 1.0 if finish is not None else kill_after


def script_argv(path: Path) -> tuple[str, ...]:
    """How to run a script s6 would run: itself if executable, else through its #! line or sh."""
    if os.access(path, os.X_OK):
        return (str(path),)
    interpreter = shebang(path)
    return (*interpreter, str(path)) if interpreter else ("/bin/sh", str(path))


def shebang(path: Path) -> tuple[str, ...]:
    try:
        with open(path, "rb") as f:
            head = f.readline(256)
    except OSError:
        return ()
    if not head.startswith(b"#!"):
        return ()
    return tuple(head[2:].decode("utf-8", "replace").strip().split(None, 1))


COMPAT_COMMANDS = frozenset(
    {"with-contenv", "s6-setuidgid", "s6-envuidgid", "s6-notifyoncheck", "printcontenv"}
)


def interpreter_problem(path: Path) -> str | None:
    """A #! interpreter that is not there (s6's own need `helix-init install s6-compat`)."""
    interpreter = shebang(path)
    if not interpreter or os.access(interpreter[0], os.X_OK):
        return None
    hint = ""
    if os.path.basename(interpreter[0]) in COMPAT_COMMANDS:
        hint = "; run `helix-init install s6-compat` in the Dockerfile"
    elif os.path.basename(interpreter[0]) == "execlineb":
        hint = "; execline scripts need execlineb: rewrite it for sh or bash"
    return f"its #! interpreter {interpreter[0]} does not exist{hint}"


def read_fd(folder: Path) -> int | str | None:
    """The folder's notification-fd: the number, None when absent, or why it is bad."""
    try:
        text = (folder / "notification-fd").read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if not text.isdigit() or int(text) < 3:
        return f"must be a file descriptor >= 3, got {text!r}"
    return int(text)


def read_millis(folder: Path, name: str, default: float) -> float | str:
    """A timeout file in milliseconds, as seconds; the default when absent, or why it is bad."""
    try:
        text = (folder / name).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return default
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if not text.isdigit():
        return f"must be milliseconds, got {text!r}"
    return int(text) / 1000
