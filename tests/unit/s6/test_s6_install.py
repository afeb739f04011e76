"""`helix-init install s6-compat`: idempotent, and never over a real s6 command without --force."""

from __future__ import annotations

import os
from pathlib import Path

from helix_init.s6 import install


def test_installs_every_entry_point_in_both_folders_and_is_idempotent(tmp_path: Path) -> None:
    first = install.install(tmp_path, "/usr/bin/python3", force=False)
    assert len(first.written) == 2 * len(install.COMMANDS) and not first.refused
    tool = tmp_path / "command" / "with-contenv"
    assert tool.read_bytes().startswith(b"#!/usr/bin/python3 -IS\n")
    assert os.access(tool, os.X_OK)
    again = install.install(tmp_path, "/usr/bin/python3", force=False)
    assert (again.written, len(again.unchanged)) == ((), 2 * len(install.COMMANDS))


def test_refuses_to_replace_a_real_s6_binary_without_force(tmp_path: Path) -> None:
    real = tmp_path / "usr" / "bin" / "s6-svc"
    real.parent.mkdir(parents=True)
    real.write_bytes(b"\x7fELF real s6-svc")
    (tmp_path / "command").mkdir()
    (tmp_path / "command" / "with-contenv").symlink_to("../package/admin/s6-overlay/command/x")
    refused = install.install(tmp_path, "/usr/bin/python3", force=False)
    assert set(refused.refused) == {real, tmp_path / "command" / "with-contenv"}
    assert refused.written == () and not (tmp_path / "usr" / "bin" / "with-contenv").exists()
    forced = install.install(tmp_path, "/usr/bin/python3", force=True)
    assert real in forced.written and install.MARKER in real.read_bytes()
    assert not (tmp_path / "command" / "with-contenv").is_symlink()


def test_cli_exit_codes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "bin" / "s6-svc").write_bytes(b"\x7fELF")
    assert install.main(["s6-compat", "--root", str(tmp_path)]) == 78
    err = capsys.readouterr().err
    assert f"{tmp_path}/usr/bin/s6-svc exists and was not installed by helix-init" in err
    assert install.main(["s6-compat", "--root", str(tmp_path), "--force"]) == 0
    assert install.main(["s6"]) == 64
