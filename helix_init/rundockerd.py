"""`helix-init run-dockerd`: the dockerd service's command; cleans up, then execs dockerd.

Runs as root, started by supervisord through the service's launch script, at
every (re)start of dockerd. Stale pid files from a container that was stopped
hard make dockerd refuse to start ("pid file found, ensure docker is not
running"); DOCKER_DRIVER in the environment would override the storage driver
the preflight chose; the iptables backend chosen by the dockerd-config step is
put first on PATH for dockerd alone.

It is an interpreter start on every boot's critical path (dockerd waits for
it), so it imports os, sys, the run dir's names and the exit codes only: no
Settings (helix_init.cli dispatches here before it reads them and hands the
run dir over), no dataclasses, no pathlib, not helix_init.dind's package. With
them it took ~45 ms of a ~57 ms start in the sandbox image.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from helix_init import rundir
from helix_init.exitcodes import Exit

STALE_PIDFILES: Mapping[str, str] = {
    "/var/run/docker.pid": "dockerd",
    "/var/run/docker/containerd/containerd.pid": "containerd",
}


def remove_stale_pidfiles(
    pidfiles: Mapping[str, str] = STALE_PIDFILES, proc: str = "/proc"
) -> list[str]:
    """Remove each pid file whose pid is not a running process of that name; return those removed.

    After `docker stop` + `docker start` the old docker.pid survives in the
    container's filesystem and dockerd refuses to start ("pid file found ...
    delete /var/run/docker.pid"). The pid inside is usually reused by another
    process by then, so the process name is checked, not just the pid.
    """
    removed: list[str] = []
    for pidfile, name in pidfiles.items():
        try:
            raw = _read(pidfile).strip()
        except FileNotFoundError:
            continue
        if raw.isdigit() and _process_name(proc, int(raw)) == name:
            continue
        try:
            os.unlink(pidfile)
        except FileNotFoundError:
            pass
        removed.append(pidfile)
    return removed


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _process_name(proc: str, pid: int) -> str | None:
    try:
        return _read(os.path.join(proc, str(pid), "comm")).strip()
    except OSError:
        return None


def main(where: str, env: Mapping[str, str], extra_args: list[str]) -> int:
    """Exec dockerd with the run dir `where`'s daemon.json; return only when it cannot start."""
    daemon_json = os.path.join(where, rundir.DAEMON_JSON)
    if not os.path.exists(daemon_json):
        print(f"run-dockerd: {daemon_json} is missing (no Docker at this level)")
        return Exit.CONFIG
    for path in remove_stale_pidfiles():
        print(f"run-dockerd: removed stale {path}", flush=True)
    child_env = {k: v for k, v in env.items() if k != "DOCKER_DRIVER"}
    try:
        path_dir = _read(os.path.join(where, rundir.DOCKERD_PATH_FILE)).strip()
    except OSError:
        path_dir = ""
    if path_dir:
        child_env["PATH"] = f"{path_dir}:{child_env.get('PATH', os.defpath)}"
    argv = ["dockerd", "--config-file", daemon_json, *extra_args]
    sys.stdout.flush()
    try:
        os.execvpe("dockerd", argv, child_env)
    except OSError as exc:
        print(f"run-dockerd: cannot run dockerd: {exc.strerror}")
        return Exit.NOT_FOUND
    return Exit.OK  # not reached
