"""One level of the nest: run commands in its container, ask its init, wait for it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from helix_nest import images
from helix_nest.engine import Engine
from helix_nest.proc import NestError, run

# --privileged fails on these hosts (CAP_SYS_RESOURCE is not in the bounding
# set); this is the set TESTBED.md measured to nest levels deep.
CAPS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
]  # fmt: skip


@dataclass
class Level:
    """Level n of the nest, reached from the host through the containers in `path`."""

    depth: int
    name: str
    path: tuple[str, ...]  # container names from level 1 down to this one (empty: the host)
    eng: Engine
    parent: Level | None = None  # the level whose engine runs this one (None for level 0)

    @classmethod
    def host(cls, eng: Engine) -> Level:
        return cls(0, "host", (), eng)

    @property
    def prefix(self) -> list[str]:
        """The argv prefix that runs a command in this level's container."""
        return self._prefix(())

    def _prefix(self, passed: Sequence[str]) -> list[str]:
        argv: list[str] = []
        for name in self.path:
            argv += ["docker", "exec", "-i", *(a for v in passed for a in ("-e", v)), name]
        return argv

    def exec(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 300,
        input: bytes | None = None,
        secrets: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in this level's container. `secrets` reach it as environment
        variables handed from hop to hop (`docker exec -e NAME`), never in an argv."""
        env = {**self.eng.env, **(secrets or {})}
        return run(
            [*self._prefix(list(secrets or ())), *argv], env=env, check=check, timeout=timeout,
            input=input,
        )  # fmt: skip

    def sh(
        self, command: str, *, check: bool = True, timeout: float = 300, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command in this level's container."""
        return self.exec(["sh", "-c", command], check=check, timeout=timeout, input=input)

    def docker(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 300,
        input: bytes | None = None,
        secrets: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`docker ARGS` against this level's engine."""
        return self.exec(["docker", *args], check=check, timeout=timeout, input=input,
                         secrets=secrets)  # fmt: skip

    def inside(self, name: str) -> Level:
        """The level of container `name`, run by this level's engine."""
        return Level(self.depth + 1, name, (*self.path, name), self.eng, self)

    def load(self, *names: str) -> None:
        """Load images into this level's engine from its parent's engine, which has them.

        The pipe runs inside the parent's container, so the bytes cross one
        `docker exec`, not one per level above (a 3-hop load from the host took
        2.7 times as long as a 1-hop one). Level 1 loads from the host engine.
        """
        assert self.parent is not None
        if self.parent.depth == 0:
            images.copy_images(self.eng, self.prefix, *names)
            return
        listed = " ".join(names)
        self.parent.exec(
            ["bash", "-o", "pipefail", "-c",
             f"docker save {listed} | docker exec -i {self.name} docker load -q"],
            timeout=900,
        )  # fmt: skip

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.exec(["helix-init", "status", "--json"]).stdout)
        return data

    def services(self) -> dict[str, dict[str, Any]]:
        """This level's services by name, from `helix-init status --json`."""
        return {s["name"]: s for s in self.status()["services"]["services"]}

    def wait_healthy(self, timeout: float = 180) -> None:
        """Poll `helix-init health`; fail at once, with its last lines, if the container ended."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            done = self.exec(["helix-init", "health"], check=False, timeout=30)
            if done.returncode == 0:
                return
            last = (done.stdout + done.stderr).strip()
            if self.parent is not None and not self.running():
                logs = self.parent.docker("logs", "--tail", "30", self.name, check=False)
                raise NestError(
                    f"level {self.depth} ({self.name}) exited with {self.exit_code()} "
                    f"before it was healthy; last lines:\n{(logs.stdout + logs.stderr).strip()}"
                )
            time.sleep(0.3)
        raise NestError(f"level {self.depth} ({self.name}) not healthy in {timeout:g}s: {last}")

    def running(self) -> bool:
        """Whether this level's container runs (asked of the level above)."""
        assert self.parent is not None
        state = self.parent.docker("inspect", "-f", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def exit_code(self) -> int:
        assert self.parent is not None
        return int(self.parent.docker("inspect", "-f", "{{.State.ExitCode}}", self.name).stdout)
