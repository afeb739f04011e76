"""This level's Docker engine for `helix-init status`: version, storage driver, containers, images.

Runs in the operator's process (`docker exec ... helix-init status`), never in
PID 1: this is the one place helix-init imports the docker SDK (its import
costs ~0.4 s and 40 MB, TESTBED.md), and only when the dockerd service is
ready. The client is given an explicit API version so it never probes a
daemon first, and a short timeout, so a wedged engine costs `status` seconds,
not a hang.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SOCKET = "unix:///var/run/docker.sock"  # this level's own dockerd (services.d/dockerd.toml)
API_VERSION = "1.41"  # Docker 20.10, the oldest engine the images ship (Debian bookworm)
TIMEOUT = 3.0


@dataclass(frozen=True)
class EngineInfo:
    version: str
    api_version: str
    storage_driver: str
    containers_running: int
    containers: int
    images: int

    def line(self) -> str:
        return (
            f"engine: Docker {self.version} (API {self.api_version}), storage "
            f"{self.storage_driver}, {self.containers_running} container(s) running "
            f"of {self.containers}, {self.images} image(s)"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def engine_info(base_url: str = SOCKET) -> EngineInfo | str:
    """The engine's figures, or one line saying why they could not be read."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return "the docker SDK (python3-docker) is not installed"
    try:
        client = docker.DockerClient(base_url=base_url, version=API_VERSION, timeout=TIMEOUT)
        try:
            version, info = client.version(), client.info()
        finally:
            client.close()
    except (DockerException, OSError) as exc:
        return f"cannot ask the engine at {base_url}: {exc}"
    try:
        return EngineInfo(
            version=str(version["Version"]),
            api_version=str(version["ApiVersion"]),
            storage_driver=str(info["Driver"]),
            containers_running=int(info["ContainersRunning"]),
            containers=int(info["Containers"]),
            images=int(info["Images"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        return f"unexpected answer from the engine at {base_url}: {exc!r}"
