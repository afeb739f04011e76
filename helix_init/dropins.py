"""Read a cont-init.d / cont-finish.d folder into an ordered list of steps, or report problems.

No side effects: this is what `helix-init check` and `helix-init plan` print,
and what boot validates before it starts anything.

A step is any file in the folder, run in lexical (byte) order of its name.
`*.sh` files are run in a shell that sources them (so scripts written for the
old sourcing entrypoint work unchanged, and need no exec bit); every other
file must be executable: a `#!` script or an ELF binary. Dotfiles and README*
are ignored. A step can set options in a comment within its first 20 lines:

    # helix-init: optional timeout=600

`optional`: a failure only warns. `timeout=SECONDS`: overrides
HELIX_INIT_STEP_TIMEOUT for this step (0 = no timeout).

A shell script whose only command is `exec helix-init step NAME` (the shipped
built-in steps; helix-init may be given by its path) is a built-in step: the
init runs NAME in a fork of itself, with every guarantee of a step, instead
of a shell that starts a new interpreter (0.1-0.3 s each). Anything more in
the file runs it as written.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from helix_init.problems import Problem

_DIRECTIVE = re.compile(rb"^#\s*helix-init:(.*)$")
_SHELLS = (b"sh", b"bash", b"dash")
_BUILTIN = re.compile(rb"^exec\s+(?:\S*/)?helix-init\s+step\s+([a-z][a-z0-9-]*)$")
_HEAD_BYTES = 4096


@dataclass(frozen=True)
class Step:
    name: str
    path: Path
    kind: Literal["sh", "exec"]
    optional: bool = False
    timeout: float | None = None  # None: the folder's default
    builtin: str | None = None  # `exec helix-init step NAME`: run NAME in a fork of the init
    argv: tuple[str, ...] = ()  # what to run instead of `path` (an s6-rc oneshot's up line)


def discover_steps(folder: Path) -> tuple[list[Step], list[Problem]]:
    """Every step of `folder` in run order, and every problem found; a missing folder is empty."""
    try:
        names = sorted(os.listdir(folder), key=os.fsencode)
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [Problem(str(folder), f"cannot list the folder: {exc.strerror}")]
    steps: list[Step] = []
    problems: list[Problem] = []
    for name in names:
        if name.startswith(".") or name.startswith("README"):
            continue
        path = folder / name
        step, problem = _read_step(path)
        if problem is not None:
            problems.append(Problem(str(path), problem))
        elif step is not None:
            steps.append(step)
    return steps, problems


def _read_step(path: Path) -> tuple[Step | None, str | None]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            return None, f"broken symlink to {os.readlink(path)}"
        return None, "vanished while being read"
    except OSError as exc:
        return None, f"cannot stat: {exc.strerror}"
    if stat.S_ISDIR(st.st_mode):
        return None, "is a directory; expected an executable file or a *.sh script"
    if not stat.S_ISREG(st.st_mode):
        return None, "is not a regular file"
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError as exc:
        return None, f"unreadable: {exc.strerror}"
    kind: Literal["sh", "exec"] = "sh" if path.name.endswith(".sh") else "exec"
    problem = _check_content(head, kind, st.st_mode)
    if problem is not None:
        return None, problem
    try:
        optional, timeout = _directives(head)
    except ValueError as exc:
        return None, str(exc)
    builtin = _builtin(head) if kind == "exec" and len(head) < _HEAD_BYTES else None
    return Step(path.name, path, kind, optional, timeout, builtin), None


def _builtin(text: bytes) -> str | None:
    """NAME when the script's one command is `exec helix-init step NAME`, else None."""
    lines = text.split(b"\n")
    words = lines[0].removeprefix(b"#!").split()  # `/bin/sh` or `/usr/bin/env sh`
    if len(words) == 2 and os.path.basename(words[0]) == b"env":
        words = words[1:]
    if len(words) != 1 or os.path.basename(words[0]) not in _SHELLS:
        return None
    commands = [ln.strip() for ln in lines[1:] if ln.strip() and not ln.strip().startswith(b"#")]
    m = _BUILTIN.match(commands[0]) if len(commands) == 1 else None
    return m.group(1).decode() if m else None


def _check_content(head: bytes, kind: str, mode: int) -> str | None:
    first_line = head.split(b"\n", 1)[0]
    if head.startswith(b"#!") and first_line.endswith(b"\r"):
        return "CRLF line endings (the #! line ends in \\r); convert with dos2unix"
    if kind == "sh":
        if b"\0" in head:
            return "binary data in a shell script"
        if b"\r\n" in head:
            return "CRLF line endings; convert with dos2unix"
        return None
    if not mode & 0o111:
        return "not executable; chmod +x it, or name it *.sh to have it sourced by a shell"
    if not (head.startswith(b"#!") or head.startswith(b"\x7fELF")):
        return "not a program: no #! line and not an ELF binary"
    return None


def _directives(head: bytes) -> tuple[bool, float | None]:
    optional, timeout = False, None
    for raw in head.split(b"\n")[:20]:
        m = _DIRECTIVE.match(raw.strip())
        if not m:
            continue
        for word in m.group(1).decode("utf-8", "replace").split():
            if word == "optional":
                optional = True
            elif word.startswith("timeout="):
                try:
                    timeout = float(word.removeprefix("timeout="))
                except ValueError:
                    timeout = -1
                if not timeout >= 0:
                    raise ValueError(f"'# helix-init: {word}' must be seconds >= 0")
            else:
                raise ValueError(
                    f"unknown option {word!r} in '# helix-init:' (known: optional, timeout=N)"
                )
    return optional, timeout
