"""The control-plane stand-in: a container on the level-0 engine that the RevDial agents dial.

It is the `api` container of the nest, reachable from every level as `api`
and `api.helix.test` (network aliases on helix-net, resolved down the levels
by the DNS relays), serving examples/standins/control-plane on port 8080 as
the real API does. Its runner token is made per nest and copied into the
container as a root-only file, never put in an argv. It is asked from the
host with `docker exec` (no host networking assumed).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field

from helix_nest.engine import WORK
from helix_nest.images import CONTROL_PLANE_IMAGE
from helix_nest.level import Level
from helix_nest.proc import NestError

API_FQDN = "api.helix.test"
API_PORT = 8080
API_URL = f"http://{API_FQDN}:{API_PORT}"  # HELIX_API_URL of every level
TOKEN_PATH = "/run/runner-token"
ASK = f"""
import sys, urllib.error, urllib.request
try:
    answer = urllib.request.urlopen("http://127.0.0.1:{API_PORT}" + sys.argv[1], timeout=30)
    print(answer.status); print(answer.read().decode(errors="replace"), end="")
except urllib.error.HTTPError as exc:
    print(exc.code); print(exc.read().decode(errors="replace"), end="")
"""


@dataclass
class ControlPlane:
    """The running control-plane container `name` on `host`'s engine."""

    host: Level
    name: str
    token: str = field(repr=False)

    @classmethod
    def start(cls, host: Level, name: str, network: str) -> ControlPlane:
        token = f"hxrt-{secrets.token_hex(16)}"
        host.docker(
            "create", "--pull", "never", "--name", name, "--network", network,
            "--network-alias", "api", "--network-alias", API_FQDN, CONTROL_PLANE_IMAGE,
            "--listen", f"0.0.0.0:{API_PORT}", "--token-file", TOKEN_PATH,
        )  # fmt: skip
        secret = WORK / f"{name}.token"
        secret.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        try:
            host.docker("cp", str(secret), f"{name}:{TOKEN_PATH}")
        finally:
            secret.unlink()
        host.docker("start", name)
        plane = cls(host, name, token)
        deadline = time.monotonic() + 30
        while plane.ask("/api/v1/runners", check=False)[0] != 200:
            if time.monotonic() > deadline:
                logs = host.docker("logs", name, check=False)
                raise NestError(f"the control plane did not answer in 30s: {logs.stdout}")
            time.sleep(0.2)
        return plane

    def ask(self, path: str, check: bool = True) -> tuple[int, str]:
        """(HTTP status, body) of GET path on the control plane, asked inside its container."""
        done = self.host.docker("exec", self.name, "python3", "-c", ASK, path, check=False)
        status, _, body = done.stdout.partition("\n")
        if not status.isdigit():
            if check:
                raise NestError(f"asking the control plane {path}: {done.stderr.strip()}")
            return 0, done.stderr
        return int(status), body

    def runners(self) -> list[str]:
        """The runner ids connected now."""
        status, body = self.ask("/api/v1/runners")
        if status != 200:
            raise NestError(f"control plane /api/v1/runners: {status} {body}")
        found: list[str] = json.loads(body)["runners"]
        return found

    def through_tunnel(self, runner_id: str, path: str) -> tuple[int, str]:
        """GET path at runner_id's local address, dialled back through its RevDial tunnel."""
        return self.ask(f"/api/v1/runners/{runner_id}/proxy{path}")

    def wait_connected(self, runner_id: str, timeout: float = 90) -> float:
        """Seconds until runner_id is connected; NestError after `timeout`."""
        started = time.monotonic()
        while runner_id not in self.runners():
            if time.monotonic() - started > timeout:
                raise NestError(
                    f"RevDial agent {runner_id} not connected in {timeout:g}s "
                    f"(connected: {', '.join(self.runners()) or 'none'})"
                )
            time.sleep(0.3)
        return time.monotonic() - started
