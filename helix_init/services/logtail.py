"""Mirror each service's log file onto the container's stdout as `TIMESTAMP [NAME] line`.

Runs in PID 1. supervisord writes every line of a service to its rotated file
(nothing is lost there, whatever stdout does); this follows those files and
prints them with the service's prefix. Reading files rather than pipes means a
slow `docker logs` reader never stalls a service that floods its output. A
rotation is followed without losing a line (see _Followed). Known secret
values are masked.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from helix_init.logsink import LineSplitter, Log

POLL_INTERVAL = 0.2  # while services write
QUIET_POLL_MAX = 1.0  # after quiet turns the wait doubles up to this: less idle CPU
READ_CHUNK = 64 << 10
# Per file and turn of the loop. Under a flood the mirror goes round again at
# once, but other tasks (reaping, probes, the control socket) run in between:
# a turn of 8 MiB (~600,000 lines) used to hold PID 1 for seconds.
MAX_PER_TICK = 256 << 10


class _Followed:
    """One service's log file, read as one byte stream across supervisord's rotations.

    supervisord rotates by renaming NAME.log -> NAME.log.1 (shifting older ones
    up) and opening a new NAME.log; under a flood it can do that several times
    between two ticks. So at the end of the file being read, the files written
    after it are found by inode (ours is now NAME.log.k: then come
    NAME.log.k-1 ... NAME.log.1 and NAME.log) and opened at once, before the
    next rotation can rename them again. The line splitter is kept across
    files: supervisord cuts them where a write happened to end, not at a line.
    With no backups (HELIX_INIT_SERVICE_LOG_BACKUPS=0) it truncates NAME.log in
    place instead, and reading starts over at 0.
    """

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.fd: int | None = None
        self.inode: int | None = None
        self.pending: list[tuple[int, int]] = []  # (fd, inode) still to read, oldest first
        self.splitter = LineSplitter()
        self.more = False  # the last read() stopped at MAX_PER_TICK, not at the end
        # What an earlier run left is not news: the end of NAME.log, its backups.
        self._old = {inode for _path, inode in self._backups()}
        self._open_live(at_end=True)

    def _backups(self) -> list[tuple[Path, int]]:
        """NAME.log.1, NAME.log.2 ... (newest first) with their inodes, up to the first gap."""
        found: list[tuple[Path, int]] = []
        for k in range(1, 10_000):
            backup = self.path.with_name(f"{self.path.name}.{k}")
            try:
                found.append((backup, os.stat(backup).st_ino))
            except FileNotFoundError:
                break
        return found

    def _open_live(self, at_end: bool) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        self.fd, self.inode = fd, os.fstat(fd).st_ino
        if at_end:
            os.lseek(fd, 0, os.SEEK_END)

    def read(self) -> list[str]:
        if self.fd is None:  # nothing yet: from the first file written since we began
            self.pending = self._written_after()
            if not self.pending:
                return []
            self.fd, self.inode = self.pending.pop(0)
        lines: list[str] = []
        total = 0
        self.more = True
        while total < MAX_PER_TICK:
            data = os.read(self.fd, READ_CHUNK)
            if data:
                total += len(data)
                lines += self.splitter.feed(data)
            elif not self._next_file():
                self.more = False
                break
        return lines

    def _next_file(self) -> bool:
        """At the end of the file being read: go on with what was written after it, if any."""
        assert self.fd is not None
        if not self.pending:
            self.pending = self._written_after()
        if self.pending:
            os.close(self.fd)
            self.fd, self.inode = self.pending.pop(0)
            return True
        if os.fstat(self.fd).st_size < os.lseek(self.fd, 0, os.SEEK_CUR):  # truncated
            os.lseek(self.fd, 0, os.SEEK_SET)
            return True
        return False

    def _written_after(self) -> list[tuple[int, int]]:
        """The files rotated in after ours, oldest first, opened; [] while ours is NAME.log.

        Before any file was read (`inode` None), that is every file written since
        we began following, however many rotations the service's first burst made.
        """
        if self.inode is not None:
            try:
                if os.stat(self.path).st_ino == self.inode:
                    return []
            except FileNotFoundError:
                return []
        # Newest first, down to ours. Had ours been deleted already (backups
        # used up), every file still there is newer than it: rotation deletes
        # the oldest.
        newer: list[Path] = []
        for backup, inode in self._backups():
            if inode == self.inode or inode in self._old:
                break
            newer.append(backup)
        opened: list[tuple[int, int]] = []
        for path in [*reversed(newer), self.path]:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            opened.append((fd, os.fstat(fd).st_ino))
        return opened

    def close(self) -> list[str]:
        lines = self.read()
        while self.more:  # everything, not one turn's worth: nothing comes after this
            lines += self.read()
        lines += self.splitter.flush()
        for fd in [self.fd, *(fd for fd, _ in self.pending)]:
            if fd is not None:
                os.close(fd)
        self.fd, self.pending = None, []
        return lines


MIN_SECRET = 4  # shorter values would mask noise


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
        if len(secret) >= MIN_SECRET:
            self._secrets.add(secret)

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        wait = POLL_INTERVAL
        while True:
            busy, printed = self.tick()
            wait = POLL_INTERVAL if printed else min(wait * 2, QUIET_POLL_MAX)
            await asyncio.sleep(0 if busy else wait)

    def tick(self) -> tuple[bool, bool]:
        """One turn over every file: (some file has more to read at once, any line printed)."""
        busy = printed = False
        for followed in self._files.values():
            lines = followed.read()
            self._emit(followed.name, lines)
            busy = busy or followed.more
            printed = printed or bool(lines)
        return busy, printed

    def _emit(self, name: str, lines: list[str]) -> None:
        for secret in self._secrets:
            lines = [line.replace(secret, "********") for line in lines]
        self._log.lines(name, lines)

    def stop(self) -> None:
        """Print everything still unread, then stop following."""
        if self._task is not None:
            self._task.cancel()
        for followed in self._files.values():
            self._emit(followed.name, followed.close())
