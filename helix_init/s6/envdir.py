"""/run/s6/container_environment: one file per variable, as s6-overlay writes it, kept in step.

Runs in PID 1 as root. s6-overlay dumps the container's environment there at
boot (a file named after each variable, its value as the content) and
`with-contenv` loads it into scripts; linuxserver's init-envfile writes files
there itself (the FILE__ secrets pattern: FILE__PASS=/run/secrets/p gives a
file PASS holding the secret). So the folder is both an output and an input:

- at boot it is written from the container's environment (unless S6_KEEP_ENV,
  which in s6-overlay leaves it unwritten and makes with-contenv a no-op);
- after every cont-init step and every oneshot, `sync` first adopts what a
  script wrote or removed there (carried like any export, named after the
  step, so the CMD and services see it too), then writes what steps exported.

Files are 0644 (s6-overlay's folder is 0755, readable by services running as
users), except variables that look like secrets or came from a FILE__ file:
those are 0600, so only root (and with-contenv run as root) reads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from helix_init.contenv import Exports, is_secret_name
from helix_init.settings import INIT_ENV_FILE, INIT_PID

DEFAULT_DIR = Path("/run/s6/container_environment")
# The init's own plumbing; never a container variable.
_NOT_EXPORTED = frozenset({"NOTIFY_SOCKET", INIT_ENV_FILE, INIT_PID})


def file_names(env: Mapping[str, str]) -> dict[str, str]:
    """The variables that can be files: no '/', no NUL, not '.' or '..', not the init's own."""
    return {
        k: v
        for k, v in env.items()
        if k and "/" not in k and "\0" not in k and k not in (".", "..")
        and k not in _NOT_EXPORTED and "\0" not in v
    }  # fmt: skip


def private(name: str, env: Mapping[str, str]) -> bool:
    """Root only: a secret-looking name, or a value that came from a FILE__ secret file."""
    return is_secret_name(name) or f"FILE__{name}" in env


class ContainerEnvironment:
    """The folder and what we last wrote to it (to tell a script's writes from ours)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: dict[str, str] = {}

    def write_all(self, env: Mapping[str, str]) -> None:
        """Make the folder hold exactly `env` (boot: stale files of an earlier run go)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        wanted = file_names(env)
        for entry in os.scandir(self.folder):
            if entry.name not in wanted:
                _remove(entry.path)
        self.written = {}
        for name, value in wanted.items():
            self._write(name, value, wanted)

    def read(self) -> dict[str, str]:
        """What the folder holds now; an unreadable or odd entry is skipped."""
        found: dict[str, str] = {}
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return found
        for entry in entries:
            if entry.name.startswith(".") or "=" in entry.name:
                continue
            try:
                with open(entry.path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            found[entry.name] = decode(data)
        return found

    def sync(self, exports: Exports, step: str) -> list[str]:
        """After `step`: adopt its writes to the folder, then write what it exported.

        Returns log-ready words (`PASS`, `-OLD`) for what the folder changed."""
        on_disk = self.read()
        changed: list[str] = []
        for name, value in on_disk.items():
            if self.written.get(name) != value:
                exports.carried[name] = (value, step)
                self.written[name] = value
                changed.append(name)
        for name in list(self.written):
            if name not in on_disk:
                exports.carried[name] = (None, step)
                del self.written[name]
                changed.append(f"-{name}")
        env = file_names(exports.current())
        for name, value in env.items():
            if self.written.get(name) != value:
                self._write(name, value, env)
        for name in [n for n in self.written if n not in env]:
            _remove(str(self.folder / name))
            del self.written[name]
        for name in changed:  # a file a script wrote with its umask: narrow it if private
            if not name.startswith("-") and private(name, env):
                _chmod(self.folder / name, 0o600)
        return changed

    def _write(self, name: str, value: str, env: Mapping[str, str]) -> None:
        path = self.folder / name
        tmp = self.folder / f".{name}.new"
        mode = 0o600 if private(name, env) else 0o644
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        try:
            os.fchmod(fd, mode)
            os.write(fd, value.encode("utf-8", "surrogateescape"))
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self.written[name] = value


def decode(data: bytes) -> str:
    """A file's value as s6-envdir -Lf reads it: the whole file, one trailing newline chomped,
    NULs made newlines."""
    if data.endswith(b"\n"):
        data = data[:-1]
    return data.replace(b"\0", b"\n").decode("utf-8", "surrogateescape")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except IsADirectoryError:
        pass
    except FileNotFoundError:
        pass


def _chmod(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError:
        pass
