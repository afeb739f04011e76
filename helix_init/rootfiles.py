"""Files only root may read (env.json, supervisord.conf, launch files, init.log).

Runs in PID 1. They may hold secrets or unmasked output, so they are created
0600 and an older, wider file at the same path is narrowed too (os.open's
mode applies only when it creates the file). Whole files are written to a
temporary name and renamed, so a reader (svcexec, supervisord) never sees half.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def temporary(path: Path) -> Path:
    """Where write_private() stages `path` (boot clears what a crash left there)."""
    return path.with_name(path.name + ".tmp")


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600."""
    tmp = temporary(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def append_private(path: Path) -> BinaryIO:
    """An unbuffered append-only handle on `path`, mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return open(fd, "ab", buffering=0)  # the caller keeps it open
