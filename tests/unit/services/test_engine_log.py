"""supervisord's output on the init's log: its tracebacks become one line (no processes)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from helix_init.logsink import Log
from helix_init.reaper import Reaper
from helix_init.services.engine import Engine
from helix_init.services.render import EnginePaths

DISK_FULL = [
    "2026-11-23 18:11:55,675 Traceback (most recent call last):",
    '  File "/venv/lib/python3.11/site-packages/supervisor/loggers.py", line 102, in emit',
    "    self.stream.write(msg)",
    "OSError: [Errno 28] No space left on device",
]


def _engine(verbosity: int = 1) -> tuple[Engine, io.BytesIO]:
    out = io.BytesIO()
    loop = asyncio.new_event_loop()
    try:
        engine = Engine(Reaper(loop), Log(out, verbosity), EnginePaths(Path("/r"), Path("/l")))
    finally:
        loop.close()
    return engine, out


def _lines(out: io.BytesIO) -> list[str]:
    return [line.split(" ", 1)[1] for line in out.getvalue().decode().splitlines()]


def test_a_traceback_is_one_error_line_and_repeats_are_quiet() -> None:
    engine, out = _engine()
    for text in [*DISK_FULL, *DISK_FULL, "WARN exited: web (exit status 1; not expected)"]:
        engine._log_line(text)
    assert _lines(out) == [
        "[supervisord] ERROR: OSError: [Errno 28] No space left on device",
        "[supervisord] WARN exited: web (exit status 1; not expected)",
    ]


def test_a_chained_traceback_is_one_line_per_error_and_debug_keeps_the_frames() -> None:
    engine, out = _engine(verbosity=2)
    chained = [
        *DISK_FULL,
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "ValueError: second",
        "INFO spawned: 'web' with pid 7",
    ]
    for text in chained:
        engine._log_line(text)
    lines = _lines(out)
    assert [line for line in lines if not line.startswith("[helix-init]")] == [
        "[supervisord] ERROR: OSError: [Errno 28] No space left on device",
        "[supervisord] ERROR: ValueError: second",
        "[supervisord] INFO spawned: 'web' with pid 7",
    ]
    assert "[helix-init] [supervisord]     self.stream.write(msg)" in lines


def test_the_unauthenticated_socket_warning_stays_hidden() -> None:
    engine, out = _engine()
    engine._log_line(
        "CRIT Server 'unix_http_server' running without any HTTP authentication checking"
    )
    assert _lines(out) == []
