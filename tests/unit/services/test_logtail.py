"""Unit: the log mirror follows a service's file across supervisord's rotations, losing nothing.

The rotations are done here the way supervisord's RotatingFileHandler does them
(shift NAME.log.i -> NAME.log.i+1, NAME.log -> NAME.log.1, open a new NAME.log;
with no backups, truncate NAME.log in place), at the worst moments for a reader.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from helix_init.logsink import Log
from helix_init.services.logtail import MAX_PER_TICK, LogMirror, _Followed


class Writer:
    """A stand-in for supervisord's rotating handler."""

    def __init__(self, path: Path, backups: int) -> None:
        self.path = path
        self.backups = backups
        self.f = open(path, "ab")  # noqa: SIM115

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.f.flush()

    def rotate(self) -> None:
        self.f.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                src = self.path.with_name(f"{self.path.name}.{i}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self.f = open(self.path, "wb")  # noqa: SIM115


def lines(n: int, start: int = 0) -> bytes:
    return b"".join(b"line %d\n" % i for i in range(start, start + n))


def expected(n: int, start: int = 0) -> list[str]:
    return [f"line {i}" for i in range(start, start + n)]


def test_several_rotations_between_two_reads_lose_nothing(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    w = Writer(log, backups=10)
    followed = _Followed("svc", log)
    w.write(lines(5))
    assert followed.read() == expected(5)
    for chunk in range(1, 5):  # four rotations before the next read
        w.write(lines(5, chunk * 5))
        w.rotate()
    w.write(lines(5, 25))
    assert followed.read() == expected(25, 5)


def test_the_first_burst_is_read_whole_even_when_it_rotated_before_the_first_read(
    tmp_path: Path,
) -> None:
    log = tmp_path / "svc.log"
    followed = _Followed("svc", log)  # before supervisord created the file
    w = Writer(log, backups=10)
    for chunk in range(3):
        w.write(lines(4, chunk * 4))
        w.rotate()
    w.write(lines(1, 12))
    assert followed.read() == expected(13)


def test_what_an_earlier_run_left_is_not_mirrored_again(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    w = Writer(log, backups=10)
    w.write(b"old 1\n")
    w.rotate()
    w.write(b"old 2\n")
    followed = _Followed("svc", log)
    w.write(b"new 1\n")
    w.rotate()
    w.write(b"new 2\n")
    assert followed.read() == ["new 1", "new 2"]


def test_a_line_cut_by_a_rotation_stays_one_line(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    w = Writer(log, backups=2)
    followed = _Followed("svc", log)
    w.write(b"first half, ")
    w.rotate()
    w.write(b"second half\n")
    assert followed.read() == ["first half, second half"]


def test_without_backups_the_truncated_file_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    w = Writer(log, backups=0)
    followed = _Followed("svc", log)
    w.write(lines(10))
    assert followed.read() == expected(10)
    w.rotate()
    w.write(lines(2, 10))
    assert followed.read() == expected(2, 10)


def test_a_file_deleted_while_being_read_is_finished_then_the_newer_ones(
    tmp_path: Path,
) -> None:
    log = tmp_path / "svc.log"
    w = Writer(log, backups=1)
    followed = _Followed("svc", log)
    w.write(lines(1))
    assert followed.read() == expected(1)
    w.write(lines(1, 1))
    w.rotate()  # ours is svc.log.1 ...
    w.write(lines(1, 2))
    w.rotate()  # ... and now deleted (still open: read to its end), then the newer ones
    w.write(lines(1, 3))
    assert followed.read() == expected(3, 1)
    assert followed.close() == []


def test_more_rotations_than_backups_lose_only_the_deleted_files(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    w = Writer(log, backups=2)
    followed = _Followed("svc", log)
    w.write(lines(1))
    assert followed.read() == expected(1)
    w.rotate()  # ours (empty now) is svc.log.1, then svc.log.2, then deleted
    for i in range(1, 5):
        w.write(lines(1, i))
        w.rotate()
    w.write(lines(1, 5))
    # lines 1 and 2 went with the deleted files; the two backups and NAME.log remain
    assert followed.read() == expected(3, 3)


def test_stop_prints_everything_left_not_one_turn_of_it(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    followed = _Followed("svc", log)
    w = Writer(log, backups=3)
    n = 3 * MAX_PER_TICK // len(b"line 123456\n")
    w.write(lines(n, 100_000))
    first = followed.read()
    assert followed.more and len(first) < n
    assert first + followed.close() == expected(n, 100_000)


def test_the_mirror_prefixes_each_line_and_masks_secrets(tmp_path: Path) -> None:
    out = io.BytesIO()
    mirror = LogMirror(Log(stream=out))
    log = tmp_path / "agent.log"
    w = Writer(log, backups=1)
    mirror.follow("agent", log)
    mirror.mask("s3cr3t-token")
    mirror.mask("abc")  # too short to mask without masking noise
    w.write(b"connecting with s3cr3t-token\nabc stays\n")
    assert mirror.tick() == (False, True)  # nothing more to read; lines were printed
    assert mirror.tick() == (False, False)  # a quiet turn: the mirror may wait longer
    printed = out.getvalue().decode().splitlines()
    assert [p.split(" ", 1)[1] for p in printed] == [
        "[agent] connecting with ********",
        "[agent] abc stays",
    ]


def test_a_mirror_far_behind_skips_the_oldest_deleted_files_and_counts_their_lines(
    tmp_path: Path,
) -> None:
    log = tmp_path / "svc.log"
    w = Writer(log, backups=1)
    followed = _Followed("svc", log)
    per_file = 3 * MAX_PER_TICK // len(b"line 1234567\n")
    shown: list[str] = []
    n = 0
    for _ in range(8):  # each turn reads one MAX_PER_TICK of a file three times that size
        w.write(lines(per_file, n))
        n += per_file
        w.rotate()
        shown += followed.read()
    w.write(lines(10, n))
    n += 10
    shown += followed.close()
    assert followed.skipped > 0
    assert len(shown) + followed.skipped == n  # every line shown or counted, none twice
    numbers = [int(s.split()[1]) for s in shown]
    assert numbers == sorted(numbers) and numbers[-10:] == list(range(n - 10, n))


def test_what_is_held_open_is_read_after_supervisord_deleted_it(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    w = Writer(log, backups=1)
    followed = _Followed("svc", log)
    w.write(lines(1))
    assert followed.read() == expected(1)
    w.write(lines(1, 1))
    w.rotate()
    assert followed.read() == expected(1, 1)  # the turn opened the new NAME.log too
    w.write(lines(1, 2))
    w.rotate()
    w.write(lines(1, 3))
    w.rotate()  # the file with line 2 is deleted now; it was held
    w.write(lines(1, 4))
    assert followed.read() == expected(3, 2)
    assert followed.skipped == 0


def test_the_mirror_says_how_many_lines_it_skipped(tmp_path: Path) -> None:
    out = io.BytesIO()
    mirror = LogMirror(Log(stream=out))
    log = tmp_path / "flood.log"
    Writer(log, backups=1)
    mirror.follow("flood", log)
    mirror._files["flood"].skipped = 1234
    mirror.tick()
    mirror._files["flood"].skipped = 5
    mirror.tick()  # said once per SKIP_REPORT_EVERY: the next count waits
    mirror.stop()  # and is said at the end
    said = [line.split(" ", 1)[1] for line in out.getvalue().decode().splitlines()]
    assert len(said) == 2
    assert said[0].startswith("[helix-init] WARNING: service flood: 1234 log line(s) not shown")
    assert f"{log} has the newest lines" in said[0]
    assert "service flood: 5 log line(s)" in said[1]
