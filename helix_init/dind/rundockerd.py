"""`helix-init run-dockerd`: the dockerd service's command; cleans up, then execs dockerd.

Runs as root, started by supervisord through svcexec, at every (re)start of
dockerd. Stale pid files from a container that was stopped hard make dockerd
refuse to start ("pid file found, ensure docker is not running"); DOCKER_DRIVER
in the environment would override the storage driver the preflight chose; the
iptables backend chosen by the dockerd-config step is put first on PATH for
dockerd alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from helix_init.dind import storage
from helix_init.dind.paths import LevelPaths
from helix_init.exitcodes import Exit
from helix_init.settings import Settings


def main(env: Mapping[str, str], extra_args: list[str]) -> int:
    level = LevelPaths(Settings.from_env(env).run_dir)
    if not level.daemon_json.exists():
        print(f"run-dockerd: {level.daemon_json} is missing (no Docker at this level)")
        return Exit.CONFIG
    for path in storage.remove_stale_pidfiles():
        print(f"run-dockerd: removed stale {path}", flush=True)
    child_env = {k: v for k, v in env.items() if k != "DOCKER_DRIVER"}
    try:
        path_dir = level.path_file.read_text().strip()
    except OSError:
        path_dir = ""
    if path_dir:
        child_env["PATH"] = f"{path_dir}:{child_env.get('PATH', os.defpath)}"
    argv = ["dockerd", "--config-file", str(level.daemon_json), *extra_args]
    sys.stdout.flush()
    try:
        os.execvpe("dockerd", argv, child_env)
    except OSError as exc:
        print(f"run-dockerd: cannot run dockerd: {exc.strerror}")
        return Exit.NOT_FOUND
    return Exit.OK  # not reached
