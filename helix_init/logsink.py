"""Log lines for operators: `TIMESTAMP [source] text` on stdout and in the init's own log file.

Runs in PID 1. Child output arrives as raw bytes; `LineSplitter` turns it into
lines that are always safe to print: invalid UTF-8 is shown as \\x escapes and a
line longer than MAX_LINE bytes is cut into several lines, so no step or
service can make the init crash or hold unbounded memory.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from helix_init.rootfiles import append_private

INIT_SOURCE = "helix-init"
MAX_LINE = 16 * 1024
FILE_MAXBYTES = 10 * 1024 * 1024  # init.log rotates once to init.log.1 past this


def timestamp(now: float | None = None) -> str:
    """UTC, millisecond precision, sortable: 2026-11-23T17:35:29.123Z."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class Log:
    """Writes prefixed, timestamped lines to stdout and, once opened, to a file."""

    def __init__(self, stream: BinaryIO | None = None, verbosity: int = 1) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._file: BinaryIO | None = None
        self._file_path: Path | None = None
        self.verbosity = verbosity

    def open_file(self, path: Path) -> str | None:
        """Start copying lines to `path`; returns a reason when that is not possible."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = append_private(path)
        except OSError as exc:
            return f"cannot write the init log {path}: {exc.strerror}"
        self._file_path = path
        return None

    def line(self, source: str, text: str) -> None:
        self._write(f"{timestamp()} [{source}] {text}\n".encode("utf-8", "backslashreplace"))

    def lines(self, source: str, texts: Sequence[str]) -> None:
        """Many lines of one source read at one moment: one timestamp, one write each way.

        A flooding service's mirror (services/logtail.py) went through line() at
        two writes per line, ~40,000 lines/s, holding PID 1's loop meanwhile.
        """
        if texts:
            prefix = f"{timestamp()} [{source}] "
            text = "".join(f"{prefix}{t}\n" for t in texts)
            self._write(text.encode("utf-8", "backslashreplace"))

    def _write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # nobody reads stdout any more; the file still gets the line
        if self._file is not None:
            try:
                self._file.write(data)
                self._rotate_if_big()
            except OSError:
                pass  # a full log disk must not stop the init; stdout still has the line

    def _rotate_if_big(self) -> None:
        assert self._file is not None and self._file_path is not None
        if self._file.tell() < FILE_MAXBYTES:
            return
        self._file.close()
        os.replace(self._file_path, self._file_path.with_name(self._file_path.name + ".1"))
        self._file = append_private(self._file_path)

    def info(self, text: str) -> None:
        self.line(INIT_SOURCE, text)

    def debug(self, text: str) -> None:
        if self.verbosity >= 2:
            self.line(INIT_SOURCE, text)

    def warn(self, text: str) -> None:
        self.line(INIT_SOURCE, f"WARNING: {text}")

    def error(self, text: str) -> None:
        self.line(INIT_SOURCE, f"ERROR: {text}")


class LineSplitter:
    """Cuts a byte stream into printable lines (no I/O)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = bytearray()
        self._max = max_line

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        lines: list[str] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0 or nl > self._max:
                if len(self._buf) > self._max:  # at exactly max, the newline may be next
                    lines.append(_decode(self._buf[: self._max]))
                    del self._buf[: self._max]
                    continue
                return lines
            lines.append(_decode(self._buf[:nl]))
            del self._buf[: nl + 1]

    def flush(self) -> list[str]:
        if not self._buf:
            return []
        rest = _decode(self._buf)
        self._buf.clear()
        return [rest]


def _decode(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", "backslashreplace").rstrip("\r")


def follow_pipe(fd: int, on_line: Callable[[str], None]) -> asyncio.Future[None]:
    """Read `fd` on the running loop, calling on_line per line; resolves at EOF, closes fd."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    splitter = LineSplitter()
    os.set_blocking(fd, False)

    def readable() -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            for text in splitter.feed(data):
                on_line(text)
            return
        for text in splitter.flush():
            on_line(text)
        loop.remove_reader(fd)
        os.close(fd)
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    return done
