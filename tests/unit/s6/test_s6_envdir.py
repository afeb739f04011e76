"""/run/s6/container_environment: written from the environment, script writes adopted as exports."""

from __future__ import annotations

import stat
from pathlib import Path

from helix_init.contenv import Exports
from helix_init.s6.envdir import ContainerEnvironment, decode


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_boot_writes_one_file_per_variable(tmp_path: Path) -> None:
    folder = tmp_path / "container_environment"
    folder.mkdir()
    (folder / "STALE").write_text("from an earlier run")
    env = ContainerEnvironment(folder)
    env.write_all(
        {
            "PATH": "/usr/bin",
            "MULTI": "a\nb",
            "EMPTY": "",
            "API_TOKEN": "t0k",
            "NOTIFY_SOCKET": "/x",
        }
    )
    assert sorted(p.name for p in folder.iterdir()) == ["API_TOKEN", "EMPTY", "MULTI", "PATH"]
    assert (folder / "MULTI").read_text() == "a\nb"  # as s6-dumpenv: the value, no newline added
    assert (folder / "EMPTY").read_bytes() == b""
    assert (mode(folder), mode(folder / "PATH"), mode(folder / "API_TOKEN")) == (
        0o755,
        0o644,
        0o600,
    )


def test_a_script_writing_a_file_exports_the_variable(tmp_path: Path) -> None:
    """linuxserver's init-envfile: FILE__PASS=/secret gives a PASS file with the secret."""
    folder = tmp_path / "ce"
    exports = Exports({"FILE__PASS": "/run/secrets/pass", "KEEP": "1"})
    env = ContainerEnvironment(folder)
    env.write_all(exports.current())
    (folder / "PASS").write_text("hunter2")  # the script's `cat "$SECRETFILE" > PASS`
    (folder / "KEEP").unlink()  # and one removed
    assert env.sync(exports, "init-envfile") == ["PASS", "-KEEP"]
    assert exports.current() == {"FILE__PASS": "/run/secrets/pass", "PASS": "hunter2"}
    assert exports.carried["PASS"] == ("hunter2", "init-envfile")
    assert mode(folder / "PASS") == 0o600  # it came from a FILE__ secret: root only


def test_exports_of_a_step_are_written_to_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ce"
    exports = Exports({"A": "1", "B": "2"})
    env = ContainerEnvironment(folder)
    env.write_all(exports.current())
    exports.carried["C"] = ("3", "10-step.sh")
    exports.carried["A"] = (None, "10-step.sh")
    assert env.sync(exports, "10-step.sh") == []  # nothing a script wrote itself
    assert sorted(p.name for p in folder.iterdir()) == ["B", "C"]
    assert (folder / "C").read_text() == "3"


def test_decode_is_s6_envdir_verbatim_mode() -> None:
    assert decode(b"value\n") == "value"
    assert decode(b"two\nlines\n\n") == "two\nlines\n"
    assert decode(b"nul\0inside") == "nul\ninside"
