"""LineSplitter and the log line format (no processes, no files but tmp_path)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from helix_init.logsink import MAX_LINE, LineSplitter, Log, timestamp

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[[^\]]+\] ")


def split(chunks: list[bytes], max_line: int = MAX_LINE) -> list[str]:
    splitter = LineSplitter(max_line)
    lines = []
    for chunk in chunks:
        lines += splitter.feed(chunk)
    return lines + splitter.flush()


def in_chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"one\ntwo\n"], ["one", "two"]),
        ([b"on", b"e\ntw", b"o\n"], ["one", "two"]),
        ([b"no newline at the end"], ["no newline at the end"]),
        ([b"\n\n"], ["", ""]),
        ([b"windows\r\n"], ["windows"]),
        ([b""], []),
        ([b"caf\xe9 \xff\n"], ["caf\\xe9 \\xff"]),
        ([b"caf\xc3", b"\xa9\n"], ["café"]),  # a character split across reads stays whole
    ],
)
def test_lines(chunks: list[bytes], expected: list[str]) -> None:
    assert split(chunks) == expected


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 8, 9, 64])
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"x" * 8 + b"\n", ["x" * 8]),  # exactly the limit: one line, not an extra empty one
        (b"x" * 9 + b"\n", ["x" * 8, "x"]),
        (b"x" * 16 + b"\nend\n", ["x" * 8, "x" * 8, "end"]),
        (b"x" * 20, ["x" * 8, "x" * 8, "x" * 4]),
        (b"ab\n" + b"y" * 17 + b"\n", ["ab", "y" * 8, "y" * 8, "y"]),
    ],
)
def test_long_lines_are_cut_the_same_whatever_the_reads(
    data: bytes, expected: list[str], chunk_size: int
) -> None:
    assert split(in_chunks(data, chunk_size), max_line=8) == expected


def test_memory_stays_bounded_without_newlines() -> None:
    splitter = LineSplitter(16)
    for _ in range(1000):
        splitter.feed(b"z" * 100)
        assert len(splitter._buf) <= 16 + 100


def test_default_limit_is_16_kib() -> None:
    assert split([b"a" * (MAX_LINE * 3) + b"\n"]) == ["a" * MAX_LINE] * 3


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1795455329.1234, "2026-11-23T17:35:29.123Z"),
        (1795455329.9999, "2026-11-23T17:35:29.999Z"),
    ],
)
def test_timestamp(now: float, expected: str) -> None:
    assert timestamp(now) == expected


def test_log_lines_are_prefixed_and_copied_to_the_file(tmp_path: Path) -> None:
    out = io.BytesIO()
    log = Log(out, verbosity=1)
    log.info("before the file")
    assert log.open_file(tmp_path / "sub" / "init.log") is None
    log.line("10-step.sh", "caf\udce9")  # a lone surrogate must not crash the init
    log.warn("careful")
    log.error("broken")
    log.debug("hidden at verbosity 1")

    lines = out.getvalue().decode().splitlines()
    assert [LOG_LINE.sub("", line) for line in lines] == [
        "before the file",
        "caf\\udce9",
        "WARNING: careful",
        "ERROR: broken",
    ]
    assert all(LOG_LINE.match(line) for line in lines)
    assert [line.split("] ", 1)[0].split(" [")[1] for line in lines] == [
        "helix-init",
        "10-step.sh",
        "helix-init",
        "helix-init",
    ]
    assert (tmp_path / "sub" / "init.log").read_text().splitlines() == lines[1:]


def test_log_file_that_cannot_be_opened_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    log = Log(io.BytesIO())
    reason = log.open_file(tmp_path / "file" / "init.log")
    assert reason is not None and reason.startswith(f"cannot write the init log {tmp_path}")
