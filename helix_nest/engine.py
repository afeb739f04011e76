"""The Docker engine at level 0: the one in DOCKER_HOST or at the default socket, or our own.

A private dockerd (root only) lives under $HELIX_NEST_WORK (default .work/ of
this checkout) so two checkouts on one machine never share one; it is stopped
with TERM, and KILLed only if it has not exited 60 s later.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from helix_nest.proc import NestError, run

REPO = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("HELIX_NEST_WORK", REPO / ".work"))


@dataclass
class Engine:
    """A Docker engine on the host: an existing one, or a private dockerd we started."""

    host: str
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def docker(
        self, *args: str, check: bool = True, timeout: float = 600, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(["docker", *args], env=self.env, check=check, timeout=timeout, input=input)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _answers(env: dict[str, str]) -> bool:
    return run(["docker", "version"], env=env, check=False, timeout=20).returncode == 0


def engine(start_private: bool = True) -> Engine:
    """The engine in DOCKER_HOST or at the default socket, else a private dockerd (root only)."""
    env = dict(os.environ)
    root = WORK / "dockerd"
    for host in filter(
        None,
        (
            os.environ.get("DOCKER_HOST"),
            "unix:///var/run/docker.sock",
            f"unix://{root}/docker.sock",
        ),
    ):
        env["DOCKER_HOST"] = host
        if shutil.which("docker") and _answers(env):
            return Engine(host, None, env)
    if not start_private or os.geteuid() != 0 or not shutil.which("dockerd"):
        raise NestError("no Docker engine is running, and none can be started here")
    root.mkdir(parents=True, exist_ok=True)
    (root / "docker.pid").unlink(missing_ok=True)
    host = f"unix://{root}/docker.sock"
    log = open(root / "dockerd.log", "ab")  # noqa: SIM115 - dockerd's own log, for its lifetime
    proc = subprocess.Popen(
        [
            "dockerd",
            "--data-root", str(root / "root"),
            "--exec-root", str(root / "exec"),
            "--pidfile", str(root / "docker.pid"),
            "--host", host,
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )  # fmt: skip
    env["DOCKER_HOST"] = host
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _answers(env):
            return Engine(host, proc, env)
        if proc.poll() is not None:
            raise NestError(f"dockerd exited with {proc.returncode}; see {root}/dockerd.log")
        time.sleep(0.2)
    raise NestError(f"dockerd did not answer within 60s; see {root}/dockerd.log")
