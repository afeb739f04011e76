"""Mirror each service's log file onto the container's stdout as `TIMESTAMP [NAME] line`.

Runs in PID 1. supervisord writes every line of a service to its rotated file
(nothing is lost there, whatever stdout does); this follows those files and
prints them with the service's prefix. Reading files rather than pipes means a
slow `docker logs` reader never stalls a service that floods its output. A
rotation is followed without losing a line, and a mirror too far behind
says how many lines it skipped (see _Followed). Known secret values are masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import struct
import time
from pathlib import Path

from helix_init.logsink import LineSplitter, Log

POLL_INTERVAL = 0.2  # while services write
QUIET_POLL_MAX = 1.0  # after quiet turns the wait doubles up to this: less idle CPU
READ_CHUNK = 64 << 10
# Per file and turn of the loop. Under a flood the mirror goes round again at
# once, but other tasks (reaping, probes, the control socket) run in between:
# a turn of 8 MiB (~600,000 lines) used to hold PID 1 for seconds.
MAX_PER_TICK = 256 << 10
LAG_FILES = 2  # rotated files held open past the one being read, at most
SKIP_REPORT_EVERY = 5.0  # seconds between two "lines skipped" lines of one service


class _Followed:
    """One service's log file, read as one byte stream across supervisord's rotations.

    supervisord rotates by renaming NAME.log -> NAME.log.1 (shifting older ones
    up, deleting the oldest) and opening a new NAME.log; under a flood it can do
    that several times between two ticks. So every turn opens each file of the
    chain not held yet (by inode, oldest first): a file held open can be read
    to its end after supervisord deleted it, so a rotation no longer takes
    lines from under a mirror that is behind. What the mirror holds is bounded
    (LAG_FILES files that supervisord deleted): further behind, it skips the
    oldest, counting their lines, and says so in one line naming the service
    (the issue-14 flood showed ~200,000 of 3,000,000 lines and said nothing).
    The line splitter is kept across files: supervisord cuts them where a
    write happened to end, not at a line. With no backups
    (HELIX_INIT_SERVICE_LOG_BACKUPS=0) it truncates NAME.log in place
    instead, and reading starts over at 0.
    """

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.fd: int | None = None
        self.inode: int | None = None
        self.pending: list[tuple[int, int]] = []  # (fd, inode) still to read, oldest first
        self.splitter = LineSplitter()
        self.more = False  # the last read() stopped at MAX_PER_TICK, not at the end
        self.skipped = 0  # lines passed over since the last report
        self.created = 0  # NAME.log files supervisord made since we began (inotify)
        self.opened = 0  # of those, how many were opened here
        self.lost_files = 0  # made and deleted before they could be opened
        self._bytes = self._lines = 0  # read so far: the average line, for an estimate
        self._file_size = 0  # the largest rotated file seen: about maxbytes
        # What an earlier run left is not news: the end of NAME.log, its backups.
        self._old = {inode for _path, inode in self._chain()}
        self._open_live(at_end=True)

    def _chain(self) -> list[tuple[Path, int]]:
        """..., NAME.log.2, NAME.log.1, NAME.log (oldest first) with their inodes."""
        found: list[tuple[Path, int]] = []
        for k in range(1, 10_000):
            backup = self.path.with_name(f"{self.path.name}.{k}")
            try:
                found.append((backup, os.stat(backup).st_ino))
            except FileNotFoundError:
                break
        found.reverse()
        with contextlib.suppress(FileNotFoundError):
            found.append((self.path, os.stat(self.path).st_ino))
        return found

    def _open_live(self, at_end: bool) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        self.fd, self.inode = fd, os.fstat(fd).st_ino
        self._old = set()
        if at_end:
            os.lseek(fd, 0, os.SEEK_END)

    def _discover(self) -> None:
        """Open every file of the chain newer than the newest one held, oldest first.

        Order, not inode numbers, says what is new: a deleted file's inode
        number is soon reused by a new file. A held file's cannot be (it is
        open), and when every held file is deleted, all the chain is newer.
        """
        chain = self._chain()
        held = {inode for _fd, inode in self.pending}
        if self.inode is not None:
            held.add(self.inode)
        newest = max((k for k, (_p, inode) in enumerate(chain) if inode in held), default=None)
        if newest is not None:
            new = chain[newest + 1 :]
        elif self.fd is None:  # nothing read yet: all but what an earlier run left
            new = [(path, inode) for path, inode in chain if inode not in self._old]
        else:
            new = chain
        for path, _inode in new:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            real = os.fstat(fd).st_ino  # renamed meanwhile: what was opened is what counts
            if real in held:
                os.close(fd)
                continue
            held.add(real)
            self.opened += 1
            self._file_size = max(self._file_size, os.fstat(fd).st_size)
            if self.fd is None:
                self.fd, self.inode = fd, real
                self._old = set()
            else:
                self.pending.append((fd, real))

    def discover(self) -> None:
        """Hold every file supervisord made since the last look (on its inotify event)."""
        self._discover()
        # Each file made was opened here by now, or is gone. (One opened before
        # its event was read counts ahead, until the event comes.)
        if self.created > self.opened:
            self.lost_files += self.created - self.opened
            self.opened = self.created

    def lost_lines(self) -> int:
        """About how many lines the files that were never opened held."""
        if not self.lost_files or not self._lines:
            return 0
        return round(self.lost_files * self._file_size * self._lines / self._bytes)

    def read(self) -> list[str]:
        self.discover()
        if self.fd is not None and self._deleted_held() > LAG_FILES:
            self._skip_ahead()
        if self.fd is None:
            return []
        lines: list[str] = []
        total = 0
        self.more = True
        while total < MAX_PER_TICK:
            data = os.read(self.fd, READ_CHUNK)
            if data:
                total += len(data)
                lines += self.splitter.feed(data)
                self._bytes += len(data)
            elif not self._next_file():
                self.more = False
                break
        self._lines += len(lines)
        return lines

    def _deleted_held(self) -> int:
        """Files supervisord deleted that are held open here: the disk they keep is ours."""
        assert self.fd is not None
        return sum(1 for fd in [self.fd, *(fd for fd, _ in self.pending)] if _deleted(fd))

    def _skip_ahead(self) -> None:
        """Too far behind: pass over the oldest deleted files held, counting their lines."""
        assert self.fd is not None
        while self.pending and self._deleted_held() > LAG_FILES:
            self.skipped += _count_lines(self.fd)  # the partial line read is one of them
            self.splitter.flush()
            os.close(self.fd)
            self.fd, self.inode = self.pending.pop(0)

    def _next_file(self) -> bool:
        """At the end of the file being read: go on with the next one held, if any."""
        assert self.fd is not None
        if self.pending:
            os.close(self.fd)
            self.fd, self.inode = self.pending.pop(0)
            return True
        if os.fstat(self.fd).st_size < os.lseek(self.fd, 0, os.SEEK_CUR):  # truncated
            os.lseek(self.fd, 0, os.SEEK_SET)
            return True
        return False

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


def _deleted(fd: int) -> bool:
    return os.fstat(fd).st_nlink == 0


def _count_lines(fd: int) -> int:
    count = 0
    while data := os.read(fd, 1 << 20):
        count += data.count(b"\n")
    return count


MIN_SECRET = 4  # shorter values would mask noise


class LogMirror:
    def __init__(self, log: Log) -> None:
        self._log = log
        self._files: dict[str, _Followed] = {}
        self._secrets: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._reported: dict[str, float] = {}
        self._inotify: _Inotify | None = None

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
        loop = asyncio.get_running_loop()
        self._inotify = _Inotify.open()
        if self._inotify is not None:
            for folder in {f.path.parent for f in self._files.values()}:
                self._inotify.watch(folder)
            loop.add_reader(self._inotify.fd, self._on_events)
        self._task = loop.create_task(self._run())

    def _on_events(self) -> None:
        """supervisord made a file: hold it open at once, before a rotation can delete it.

        Only creations wake PID 1 (one per rotation); reading keeps its pace.
        """
        assert self._inotify is not None
        made = self._inotify.created()
        for followed in self._files.values():
            if followed.path.name in made:
                followed.created += made[followed.path.name]
                followed.discover()

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
            self._report_skipped(followed)
            busy = busy or followed.more
            printed = printed or bool(lines)
        return busy, printed

    def _report_skipped(self, followed: _Followed, *, now: bool = False) -> None:
        """Loss is said: one line naming the service and how many lines stdout did not get."""
        if not followed.skipped and not followed.lost_files:
            return
        at = time.monotonic()
        if (
            not now
            and at - self._reported.get(followed.name, -SKIP_REPORT_EVERY) < SKIP_REPORT_EVERY
        ):
            return
        self._reported[followed.name] = at
        counts = []
        if followed.skipped:
            counts.append(f"{followed.skipped} log line(s)")
        if followed.lost_files:
            counts.append(
                f"about {followed.lost_lines()} line(s) in {followed.lost_files} rotated"
                " file(s) deleted before they could be read"
            )
        self._log.warn(
            f"service {followed.name}: {' and '.join(counts)} not shown here: it writes"
            f" faster than stdout is read and log rotation overtook the mirror;"
            f" {followed.path} has the newest lines"
        )
        followed.skipped = followed.lost_files = 0

    def _emit(self, name: str, lines: list[str]) -> None:
        for secret in self._secrets:
            lines = [line.replace(secret, "********") for line in lines]
        self._log.lines(name, lines)

    def stop(self) -> None:
        """Print everything still unread, then stop following."""
        if self._task is not None:
            self._task.cancel()
        if self._inotify is not None:
            asyncio.get_running_loop().remove_reader(self._inotify.fd)
            self._on_events()
            self._inotify.close()
            self._inotify = None
        for followed in self._files.values():
            self._emit(followed.name, followed.close())
            self._report_skipped(followed, now=True)


class _Inotify:
    """inotify(7) on the log folder, through libc: IN_CREATE names each new NAME.log."""

    IN_CREATE = 0x100
    IN_NONBLOCK_CLOEXEC = 0o4000 | 0o2000000

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self.fd = fd

    @classmethod
    def open(cls) -> _Inotify | None:
        """None where inotify is not there (then the mirror polls, as before)."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(cls.IN_NONBLOCK_CLOEXEC)
        except (OSError, AttributeError):
            return None
        return cls(libc, fd) if fd >= 0 else None

    def watch(self, folder: Path) -> None:
        self._libc.inotify_add_watch(self.fd, os.fsencode(folder), self.IN_CREATE)

    def created(self) -> dict[str, int]:
        """Drain the queue: how many times each name was created."""
        made: dict[str, int] = {}
        while True:
            try:
                data = os.read(self.fd, 64 << 10)
            except BlockingIOError:
                return made
            at = 0
            while at + 16 <= len(data):
                _wd, mask, _cookie, size = struct.unpack_from("iIII", data, at)
                name = data[at + 16 : at + 16 + size].rstrip(b"\0").decode(errors="replace")
                at += 16 + size
                if mask & self.IN_CREATE:
                    made[name] = made.get(name, 0) + 1

    def close(self) -> None:
        os.close(self.fd)
