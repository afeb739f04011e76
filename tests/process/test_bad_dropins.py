"""Bad drop-ins: each problem is one clear line naming its path, exit 78 before anything runs.

Output that is merely ugly (10 MB of it, invalid UTF-8) is not a bad drop-in:
the step runs and its output passes through, cut and escaped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.pid1 import LOG_LINE, PYTHON, Pid1

pytestmark = pytest.mark.process

CONFIG = 78
STEP_FAILED = 79
MAX_LINE = 16 * 1024


def _directory(folder: Path) -> Path:
    (folder / "20-dir").mkdir()
    return folder / "20-dir"


def _no_exec_bit(folder: Path) -> Path:
    path = folder / "20-noexec"
    path.write_text("#!/bin/sh\necho hi\n")
    path.chmod(0o644)
    return path


def _crlf_program(folder: Path) -> Path:
    path = folder / "20-crlf"
    path.write_bytes(b"#!/bin/sh\r\necho hi\r\n")
    path.chmod(0o755)
    return path


def _crlf_script(folder: Path) -> Path:
    path = folder / "20-crlf.sh"
    path.write_bytes(b"echo hi\r\necho there\r\n")
    return path


def _broken_symlink(folder: Path) -> Path:
    path = folder / "20-link"
    path.symlink_to("/nonexistent/step")
    return path


def _binary_garbage(folder: Path) -> Path:
    path = folder / "20-garbage"
    path.write_bytes(bytes(range(256)) * 8)
    path.chmod(0o755)
    return path


def _binary_garbage_script(folder: Path) -> Path:
    path = folder / "20-garbage.sh"
    path.write_bytes(b"echo hi\n" + bytes(range(256)))
    return path


def _bad_option(folder: Path) -> Path:
    path = folder / "20-option.sh"
    path.write_text("# helix-init: timeout=soon\necho hi\n")
    return path


def _unknown_option(folder: Path) -> Path:
    path = folder / "20-unknown.sh"
    path.write_text("# helix-init: optinal\necho hi\n")
    return path


BAD: dict[str, tuple[Callable[[Path], Path], str]] = {
    "directory": (_directory, "is a directory; expected an executable file or a *.sh script"),
    "no exec bit": (
        _no_exec_bit,
        "not executable; chmod +x it, or name it *.sh to have it sourced by a shell",
    ),
    "CRLF program": (
        _crlf_program,
        "CRLF line endings (the #! line ends in \\r); convert with dos2unix",
    ),
    "CRLF script": (_crlf_script, "CRLF line endings; convert with dos2unix"),
    "broken symlink": (_broken_symlink, "broken symlink to /nonexistent/step"),
    "binary garbage": (_binary_garbage, "not a program: no #! line and not an ELF binary"),
    "binary garbage script": (_binary_garbage_script, "binary data in a shell script"),
    "bad timeout": (_bad_option, "'# helix-init: timeout=soon' must be seconds >= 0"),
    "unknown option": (
        _unknown_option,
        "unknown option 'optinal' in '# helix-init:' (known: optional, timeout=N)",
    ),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_drop_in_stops_boot_before_anything_runs(pid1: Pid1, kind: str) -> None:
    make, reason = BAD[kind]
    ran = pid1.path("something-ran")
    pid1.step("10-good.sh", f'touch "{ran}"\n')
    pid1.finish_step("10-good.sh", f'touch "{ran}"\n')
    bad = make(pid1.cont_init)

    result = pid1.run("touch", str(ran))

    assert result.code == CONFIG, result.describe()
    assert result.errors() == [
        f"{bad}: {reason}",
        f"invalid drop-ins: nothing was started (exit {CONFIG})",
    ]
    assert not ran.exists()
    assert all(LOG_LINE.match(line) for line in result.lines), result.describe()
    assert result.stderr == ""


def test_every_problem_is_listed_cont_finish_included(pid1: Pid1) -> None:
    expected = []
    for make, reason in BAD.values():
        expected.append(f"{make(pid1.cont_init)}: {reason}")
    expected.append(f"{_no_exec_bit(pid1.cont_finish)}: {BAD['no exec bit'][1]}")

    result = pid1.run("true")

    assert result.code == CONFIG, result.describe()
    assert sorted(result.errors()[:-1]) == sorted(expected)


def test_an_unknown_cmd_user_is_a_config_error(pid1: Pid1) -> None:
    result = pid1.run("true", env={"HELIX_INIT_CMD_USER": "no-such-user"})

    assert result.code == CONFIG, result.describe()
    assert result.errors()[0] == "HELIX_INIT_CMD_USER: unknown user 'no-such-user'"


def test_a_bad_setting_is_one_line_naming_the_variable(pid1: Pid1) -> None:
    result = pid1.run("true", env={"HELIX_INIT_STEP_TIMEOUT": "soon"})

    assert result.code == CONFIG
    assert result.stderr == "helix-init: HELIX_INIT_STEP_TIMEOUT: must be a number, got 'soon'\n"
    assert result.stdout == ""


def test_a_step_whose_interpreter_is_missing_fails_with_one_line(pid1: Pid1) -> None:
    pid1.step("10-missing-interpreter", "#!/nonexistent/bin/interp\n")

    result = pid1.run("true")

    assert result.code == STEP_FAILED, result.describe()
    assert result.errors()[0] == (
        "cont-init step 10-missing-interpreter failed: "
        "cannot start " + str(pid1.cont_init / "10-missing-interpreter") + ": "
        "No such file or directory"
    )


def test_ten_megabytes_of_output_pass_through_cut_at_16_kib(pid1: Pid1) -> None:
    # 8 MiB on one line, then 2 MiB of 64-byte lines.
    pid1.step(
        "10-loud",
        f"#!{PYTHON}\nimport sys\nout = sys.stdout.buffer\n"
        "out.write(b'a' * (8 << 20) + b'\\n')\n"
        "out.write((b'b' * 63 + b'\\n') * ((2 << 20) // 64))\n",
    )

    result = pid1.run("sh", "-c", "echo cmd ran", timeout=60)

    assert result.code == 0, result.describe()
    texts = result.texts("10-loud")
    long_pieces = (8 << 20) // MAX_LINE
    assert texts[:long_pieces] == ["a" * MAX_LINE] * long_pieces
    assert texts[long_pieces:] == ["b" * 63] * ((2 << 20) // 64)
    assert "cmd ran" in result.lines
    log_file = pid1.log_dir / "init.log"
    assert os.path.getsize(log_file) + os.path.getsize(f"{log_file}.1") > 10 << 20


def test_invalid_utf8_output_is_escaped(pid1: Pid1) -> None:
    pid1.step("10-latin1.sh", "printf 'caf\\351 \\377\\376 end\\n'\nprintf 'no newline \\300'\n")

    result = pid1.run("true")

    assert result.code == 0, result.describe()
    assert result.texts("10-latin1.sh") == [r"caf\xe9 \xff\xfe end", r"no newline \xc0"]


def test_check_lists_every_problem_with_its_path(pid1: Pid1) -> None:
    expected = [f"{make(pid1.cont_init)}: {reason}" for make, reason in BAD.values()]

    result = pid1.command("check")

    assert result.code == CONFIG
    assert sorted(result.stdout.splitlines()) == sorted(expected)
    assert f"{len(expected)} problem(s)" in result.stderr


def test_check_says_ok_on_a_good_folder(pid1: Pid1) -> None:
    pid1.step("10-a.sh", "echo a\n", mode=0o644)
    pid1.step("20-b", "#!/bin/sh\necho b\n")
    pid1.finish_step("10-c.sh", "echo c\n")

    result = pid1.command("check")

    assert result.code == 0
    assert result.stdout.startswith("ok: 2 cont-init step(s), 1 cont-finish step(s)")
    assert not pid1.run_dir.exists()  # checking has no side effects


def test_plan_prints_the_steps_in_order_with_their_options(pid1: Pid1) -> None:
    pid1.step("20-b", "#!/bin/sh\n# helix-init: optional timeout=7\n")
    pid1.step("10-a.sh", "echo a\n")
    pid1.finish_step("10-c.sh", "echo c\n")

    result = pid1.command(
        "plan", env={"HELIX_INIT_STEP_TIMEOUT": "30", "HELIX_INIT_SH_STEP_TIMEOUT": ""}
    )

    assert result.code == 0
    lines = result.stdout.splitlines()
    cont_init = lines.index(f"cont-init ({pid1.cont_init}):")
    assert lines[cont_init + 1 : cont_init + 3] == [
        "  10-a.sh  [sh, no timeout]",  # sourced steps: none by default, as the old entrypoint
        "  20-b  [exec optional, timeout 7s]",
    ]
    cont_finish = lines.index(f"cont-finish ({pid1.cont_finish}):")
    assert lines[cont_finish + 1 :] == ["  10-c.sh  [sh]"]
