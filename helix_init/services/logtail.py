"""Mirror each service's log file onto the container's stdout as `TIMESTAMP [NAME] line`.

Runs in PID 1. supervisord writes every line of a service to its rotated file
(nothing is lost there, whatever stdout does); this follows those files and
prints them with the service's prefix. Reading files rather than pipes means a
slow `docker logs` reader never stalls a service that floods its output. A
rotation (NAME.log renamed to NAME.log.1) is followed by reading the old file
to its end before opening the new one. Known secret values are masked.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from helix_init.logsink import LineSplitter, Log

POLL_INTERVAL = 0.2
READ_CHUNK = 1 << 20
MAX_PER_TICK = 8 << 20  # keep the loop responsive under a flood; the rest comes next tick


class _Followed:
    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.fd: int | None = None
        self.inode: int | None = None
        self.splitter = LineSplitter()
        self._open(at_end=True)  # what an earlier run left is not news

    def _open(self, at_end: bool) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        self.fd, self.inode = fd, os.fstat(fd).st_ino
        if at_end:
            os.lseek(fd, 0, os.SEEK_END)

    def read(self) -> list[str]:
        if self.fd is None:
            self._open(at_end=False)
            if self.fd is None:
                return []
        lines: list[str] = []
        total = 0
        while total < MAX_PER_TICK:
            data = os.read(self.fd, READ_CHUNK)
            if not data:
                break
            total += len(data)
            lines += self.splitter.feed(data)
        if total < MAX_PER_TICK and self._rotated():
            lines += self.splitter.flush()
            os.close(self.fd)
            self.fd = None
            self._open(at_end=False)
        return lines

    def _rotated(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self.inode
        except FileNotFoundError:
            return True

    def close(self) -> list[str]:
        lines = self.read() + self.splitter.flush()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        return lines


class LogMirror:
    def __init__(self, log: Log) -> None:
        self._log = log
        self._files: dict[str, _Followed] = {}
        self._secrets: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def follow(self, name: str, path: Path) -> None:
        if name not in self._files:
            self._files[name] = _Followed(name, path)

    def mask(self, secret: str) -> None:
        """Never print this value (a token a service was given); short values would mask noise."""
        if len(secret) >= 4:
            self._secrets.add(secret)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(POLL_INTERVAL)

    def tick(self) -> None:
        for followed in self._files.values():
            for line in followed.read():
                self._emit(followed.name, line)

    def _emit(self, name: str, line: str) -> None:
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, "********")
        self._log.line(name, line)

    def stop(self) -> None:
        """Print everything still unread, then stop following."""
        if self._task is not None:
            self._task.cancel()
        for followed in self._files.values():
            for line in followed.close():
                self._emit(followed.name, line)
