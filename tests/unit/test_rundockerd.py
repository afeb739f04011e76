"""`helix-init run-dockerd`: stale pid files, dockerd's PATH and environment, a lean start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helix_init.cli import run_dir
from helix_init.problems import ConfigError
from helix_init.rundockerd import remove_stale_pidfiles
from helix_init.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_stale_pid_files_go_and_live_ones_stay(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid, comm in ((42, "dockerd"), (43, "sleep"), (44, "containerd")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(comm + "\n")
    files = {
        tmp_path / "docker.pid": ("42", "dockerd"),  # running: keep
        tmp_path / "containerd.pid": ("43", "containerd"),  # pid reused by sleep: remove
        tmp_path / "other.pid": ("99", "dockerd"),  # no such process: remove
        tmp_path / "junk.pid": ("not a pid", "dockerd"),  # unreadable: remove
        tmp_path / "c2.pid": ("44", "containerd"),  # running: keep
    }
    for path, (content, _) in files.items():
        path.write_text(content)
    pidfiles = {str(path): name for path, (_, name) in files.items()}
    pidfiles[str(tmp_path / "missing.pid")] = "dockerd"

    removed = remove_stale_pidfiles(pidfiles, str(proc))

    assert sorted(Path(p).name for p in removed) == ["containerd.pid", "junk.pid", "other.pid"]
    assert sorted(p.name for p in tmp_path.glob("*.pid")) == ["c2.pid", "docker.pid"]
    assert remove_stale_pidfiles(pidfiles, str(proc)) == []  # idempotent


@pytest.mark.parametrize("value", [None, "", "/tmp/helix-run", "/run/x/"])
def test_the_run_dir_is_read_as_settings_read_it(value: str | None) -> None:
    env = {} if value is None else {"HELIX_INIT_RUN_DIR": value}
    assert Path(run_dir(env)) == Settings.from_env(env).run_dir


@pytest.mark.parametrize("value", ["relative/run", " /x"])
def test_a_run_dir_settings_refuse_never_reaches_it(value: str) -> None:
    with pytest.raises(ConfigError, match="HELIX_INIT_RUN_DIR: must be an absolute path"):
        Settings.from_env({"HELIX_INIT_RUN_DIR": value})  # the init exits 78 at boot


FAKE_DOCKERD = f"""#!/bin/sh
exec {sys.executable} -c 'import json, os, sys; print(json.dumps({{"argv": sys.argv[1:], \
"path": os.environ["PATH"], "driver": os.environ.get("DOCKER_DRIVER")}}))' "$@"
"""


def _run_dockerd(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "dockerd").write_text(FAKE_DOCKERD)
    (bin_dir / "dockerd").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HELIX_INIT_RUN_DIR": str(tmp_path / "run"),
        "DOCKER_DRIVER": "vfs",
        "PYTHONPATH": str(REPO),
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "helix_init", "run-dockerd", "--debug"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_dockerd_gets_its_config_its_iptables_path_first_and_no_docker_driver(
    tmp_path: Path,
) -> None:
    missing = _run_dockerd(tmp_path)
    assert missing.returncode == 78
    assert "daemon.json is missing (no Docker at this level)" in missing.stdout

    docker = tmp_path / "run" / "docker"
    docker.mkdir(parents=True)
    (docker / "daemon.json").write_text("{}\n")
    (docker / "path").write_text("/run/helix-init/docker/iptables-nft\n")
    ran = _run_dockerd(tmp_path)

    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    assert seen["argv"] == ["--config-file", str(docker / "daemon.json"), "--debug"]
    assert seen["path"].startswith("/run/helix-init/docker/iptables-nft:")
    assert seen["driver"] is None


def test_it_imports_no_settings_dataclasses_or_pathlib() -> None:
    """An interpreter at every dockerd start, on the boot's critical path: kept lean."""
    code = (
        "import sys, helix_init.cli as c; c.main(['run-dockerd']); "
        "print(' '.join(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO), "HELIX_INIT_RUN_DIR": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "daemon.json is missing" in done.stdout  # it ran, and returned before any exec
    loaded = set(done.stdout.split())
    heavy = {"dataclasses", "pathlib", "typing", "helix_init.settings", "helix_init.dind"}
    assert loaded & heavy == set()
