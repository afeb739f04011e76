"""discover_steps: order, kinds, options and every kind of bad drop-in, on a tmp folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helix_init.dropins import Step, discover_steps
from helix_init.problems import Problem


def write(folder: Path, name: str, data: bytes | str, mode: int = 0o755) -> Path:
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)
    return path


def test_a_missing_folder_has_no_steps(tmp_path: Path) -> None:
    assert discover_steps(tmp_path / "absent") == ([], [])


def test_an_unlistable_folder_is_a_problem(tmp_path: Path) -> None:
    not_a_folder = write(tmp_path, "file", "")
    steps, problems = discover_steps(not_a_folder)
    assert steps == []
    assert problems == [Problem(str(not_a_folder), "cannot list the folder: Not a directory")]


def test_order_is_by_bytes_and_dotfiles_and_readmes_are_ignored(tmp_path: Path) -> None:
    for name in ("b.sh", "B.sh", "10-x.sh", "9-x.sh", "_u.sh", "é.sh", ".hidden.sh", "README"):
        write(tmp_path, name, "true\n", mode=0o644)
    write(tmp_path, "README.md", "docs\n", mode=0o644)

    steps, problems = discover_steps(tmp_path)

    assert problems == []
    assert [s.name for s in steps] == ["10-x.sh", "9-x.sh", "B.sh", "_u.sh", "b.sh", "é.sh"]


def test_kinds_sh_needs_no_exec_bit_programs_do(tmp_path: Path) -> None:
    write(tmp_path, "10-sourced.sh", "export A=1\n", mode=0o644)
    write(tmp_path, "20-script", "#!/bin/sh\n")
    write(tmp_path, "30-elf", b"\x7fELF\x02\x01\x01" + bytes(64))

    steps, problems = discover_steps(tmp_path)

    assert problems == []
    assert steps == [
        Step("10-sourced.sh", tmp_path / "10-sourced.sh", "sh"),
        Step("20-script", tmp_path / "20-script", "exec"),
        Step("30-elf", tmp_path / "30-elf", "exec"),
    ]


@pytest.mark.parametrize(
    ("header", "optional", "timeout"),
    [
        ("# helix-init: optional\n", True, None),
        ("# helix-init: timeout=600\n", False, 600.0),
        ("#helix-init: optional timeout=0\n", True, 0.0),
        ("  #   helix-init:   timeout=1.5   optional  \n", True, 1.5),
        ("# helix-init:\n", False, None),
        ("# this script is not for helix-init: optional\n", False, None),
    ],
)
def test_options_in_a_header_comment(
    tmp_path: Path, header: str, optional: bool, timeout: float | None
) -> None:
    write(tmp_path, "10-step.sh", "#!/bin/bash\n" + header + "true\n")

    steps, problems = discover_steps(tmp_path)

    assert problems == []
    assert (steps[0].optional, steps[0].timeout) == (optional, timeout)


def test_options_count_only_in_the_first_20_lines(tmp_path: Path) -> None:
    write(tmp_path, "10-step.sh", "true\n" * 20 + "# helix-init: optional\n")

    steps, _ = discover_steps(tmp_path)

    assert steps[0].optional is False


@pytest.mark.parametrize(
    ("name", "data", "mode", "problem"),
    [
        ("x", "#!/bin/sh\n", 0o644, "not executable; chmod +x it, or name it *.sh to have it"),
        ("x", "echo hi\n", 0o755, "not a program: no #! line and not an ELF binary"),
        ("x", b"\x00\x01\x02garbage", 0o755, "not a program: no #! line and not an ELF binary"),
        ("x", b"#!/bin/sh\r\necho\r\n", 0o755, "CRLF line endings (the #! line ends in \\r)"),
        ("x.sh", b"#!/bin/sh\r\necho\r\n", 0o644, "CRLF line endings (the #! line ends in \\r)"),
        ("x.sh", b"echo a\r\n", 0o644, "CRLF line endings; convert with dos2unix"),
        ("x.sh", b"echo a\n\x00\xff", 0o644, "binary data in a shell script"),
        ("x.sh", "# helix-init: timeout=-1\n", 0o644, "'# helix-init: timeout=-1' must be sec"),
        ("x.sh", "# helix-init: timeout=nan\n", 0o644, "'# helix-init: timeout=nan' must be sec"),
        ("x.sh", "# helix-init: timeout=\n", 0o644, "'# helix-init: timeout=' must be seconds"),
        ("x.sh", "# helix-init: optinal\n", 0o644, "unknown option 'optinal' in '# helix-init:'"),
    ],
)
def test_bad_files_are_problems_naming_the_path(
    tmp_path: Path, name: str, data: bytes | str, mode: int, problem: str
) -> None:
    path = write(tmp_path, name, data, mode)

    steps, problems = discover_steps(tmp_path)

    assert steps == []
    assert len(problems) == 1
    assert problems[0].where == str(path)
    assert problems[0].what.startswith(problem)


def test_directories_symlinks_and_special_files(tmp_path: Path) -> None:
    (tmp_path / "10-dir").mkdir()
    (tmp_path / "20-broken").symlink_to("/nonexistent/target")
    write(tmp_path, "real.sh", "true\n")
    (tmp_path / "30-good-link.sh").symlink_to(tmp_path / "real.sh")
    os.mkfifo(tmp_path / "40-fifo")

    steps, problems = discover_steps(tmp_path)

    assert [s.name for s in steps] == ["30-good-link.sh", "real.sh"]
    assert [str(p) for p in problems] == [
        f"{tmp_path}/10-dir: is a directory; expected an executable file or a *.sh script",
        f"{tmp_path}/20-broken: broken symlink to /nonexistent/target",
        f"{tmp_path}/40-fifo: is not a regular file",
    ]


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    write(tmp_path, "10-ok.sh", "true\n")
    write(tmp_path, "20-bad", "no shebang\n")
    write(tmp_path, "30-bad.sh", "a\r\n")
    write(tmp_path, "40-ok", "#!/bin/sh\n")

    steps, problems = discover_steps(tmp_path)

    assert [s.name for s in steps] == ["10-ok.sh", "40-ok"]
    assert [Path(p.where).name for p in problems] == ["20-bad", "30-bad.sh"]


@pytest.mark.parametrize(
    ("text", "builtin"),
    [
        ("#!/bin/sh\n# a comment\n\nexec helix-init step cgroups\n", "cgroups"),
        ("#!/usr/bin/env bash\nexec /usr/local/bin/helix-init step docker-group\n", "docker-group"),
        ("#!/bin/sh\n# helix-init: timeout=60\n  exec helix-init step user  \n", "user"),
        ("#!/bin/sh\nset -e\nexec helix-init step cgroups\n", None),  # more than the exec
        ('#!/bin/sh\n[ -n "$X" ] || exit 0\nexec helix-init step user\n', None),
        ("#!/bin/sh\nexec helix-init step cgroups extra\n", None),
        ("#!/bin/sh\nhelix-init step cgroups\n", None),  # not exec: the shell goes on after
        ("#!/usr/bin/python3\nexec helix-init step cgroups\n", None),  # not a shell
        ("#!/bin/sh\nexec helix-init-wrapper step cgroups\n", None),
    ],
)
def test_a_script_that_only_execs_a_builtin_step_is_that_builtin(
    tmp_path: Path, text: str, builtin: str | None
) -> None:
    write(tmp_path, "10-x", text)

    (step,), problems = discover_steps(tmp_path)

    assert (step.builtin, problems) == (builtin, [])


def test_a_sourced_script_is_never_a_builtin(tmp_path: Path) -> None:
    write(tmp_path, "10-x.sh", "exec helix-init step cgroups\n", mode=0o644)

    (step,), _ = discover_steps(tmp_path)

    assert step.builtin is None


def test_the_shipped_builtin_steps_are_recognised() -> None:
    repo = Path(__file__).resolve().parents[2]
    steps = discover_steps(repo / "cont-init.d")[0] + discover_steps(repo / "cont-finish.d")[0]

    assert {s.name: s.builtin for s in steps} == {
        "00-helix-preflight": "preflight",
        "02-helix-hide-proc": "hide-proc",
        "05-helix-user": "user",
        "10-helix-cgroups": "cgroups",
        "20-helix-network": "network",
        "25-helix-localhost-forward": "localhost-forward",
        "30-helix-dockerd-config": "dockerd-config",
        "40-helix-docker-group": "docker-group",
        "50-helix-revdial": "revdial",
        "25-helix-localhost-forward-undo": "localhost-forward-undo",
    }
