"""Put the five-level nest up, level by level, timing each; take it down again.

Levels start one after the other (each needs the one above it): load the
level's image into its parent's engine, `docker run` it, wait until
`helix-init health` passes, wait until the control plane lists its RevDial
runner. Every name made on the host engine (the level-1 container, its
volume, helix-net, the control plane) starts with `prefix`, so a test nest
and a demo on a shared engine never remove each other's containers; inner
names are private to their level.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from helix_nest.engine import Engine
from helix_nest.images import BUSYBOX_IMAGE, DESKTOP_IMAGE, SANDBOX_IMAGE
from helix_nest.level import CAPS, Level
from helix_nest.plane import API_URL, ControlPlane


@dataclass(frozen=True)
class LevelPlan:
    """One level: container name, image kind, the user network it joins at the level above."""

    name: str
    kind: str  # "sandbox" or "desktop"
    network: str

    @property
    def image(self) -> str:
        return SANDBOX_IMAGE if self.kind == "sandbox" else DESKTOP_IMAGE

    @property
    def runner_env(self) -> tuple[str, str]:
        """What names this level's RevDial runner: the sandbox image's role is wolf
        (wolf-$WOLF_INSTANCE_ID), the desktop's is sandbox (sandbox-$HELIX_SESSION_ID)."""
        return ("WOLF_INSTANCE_ID" if self.kind == "sandbox" else "HELIX_SESSION_ID", self.name)

    @property
    def runner_id(self) -> str:
        return f"{'wolf' if self.kind == 'sandbox' else 'sandbox'}-{self.name}"


LEVELS = (
    LevelPlan("l1", "sandbox", "helix-net"),
    LevelPlan("l2", "desktop", "net2"),
    LevelPlan("l3", "sandbox", "net3"),
    LevelPlan("l4", "desktop", "net4"),
)


@dataclass
class NestLevel:
    """A level that is up, and where its boot time went."""

    level: Level
    plan: LevelPlan
    load_s: float  # its image loaded into the parent's engine (0 at level 1)
    boot_s: float  # `docker run` -> `helix-init health` passes
    agent_s: float  # healthy -> the control plane lists its runner

    @property
    def depth(self) -> int:
        return self.level.depth


@dataclass
class Nest:
    host: Level
    plane: ControlPlane
    levels: list[NestLevel]
    prefix: str

    @property
    def all(self) -> list[Level]:
        """[host, l1, l2, ...]: index = depth."""
        return [self.host, *(n.level for n in self.levels)]


def needed_below(plans: tuple[LevelPlan, ...]) -> list[str]:
    """The images an engine needs to run `plans` (its child first) and pass them on.

    The two images share their base layers, so carrying both costs little more
    than one; every level also gets busybox for the containers tests run there.
    """
    return [*dict.fromkeys(p.image for p in plans), BUSYBOX_IMAGE]


def start_level(
    parent: Level, name: str, network: str, plan: LevelPlan, token: str, reserved: str = ""
) -> Level:
    """Run plan's image as `name` on `network` at `parent`, /var/lib/docker on a volume."""
    depth = parent.depth + 1
    if parent.docker("network", "inspect", network, check=False).returncode != 0:
        parent.docker("network", "create", network)
    variable, value = plan.runner_env
    args = [
        "run", "-d", "--pull", "never", "--name", name, "--hostname", plan.name,
        "--network", network, *CAPS, "-v", f"{name}-docker:/var/lib/docker",
        "-e", f"HELIX_DOCKER_DEPTH={depth}", "-e", f"HELIX_API_URL={API_URL}",
        "-e", f"{variable}={value}",
        "-e", "RUNNER_TOKEN",  # its value from the docker CLI's environment, not argv
    ]  # fmt: skip
    if reserved:
        args += ["-e", f"HELIX_INIT_RESERVED_NETS={reserved}"]
    parent.docker(*args, plan.image, secrets={"RUNNER_TOKEN": token})
    return parent.inside(name)


def build_nest(
    eng: Engine, depth: int = 4, prefix: str = "", log: Callable[[str], None] = print
) -> Nest:
    """Levels 1..depth below the host, the control plane beside level 1 on helix-net."""
    host = Level.host(eng)
    net = f"{prefix}helix-net"
    if host.docker("network", "inspect", net, check=False).returncode != 0:
        host.docker("network", "create", net)
    plane = ControlPlane.start(host, f"{prefix}api", net)
    log(f"control plane {plane.name} up on {net} ({API_URL}/api/v1/revdial)")
    nest = Nest(host, plane, [], prefix)
    reserved = ""
    plans = LEVELS[:depth]
    for i, plan in enumerate(plans):
        parent = nest.all[-1]
        started = time.monotonic()
        if parent.depth > 0:
            parent.load(*needed_below(plans[i:]))
        loaded = time.monotonic()
        top = parent.depth == 0
        name, network = (prefix + plan.name, net) if top else (plan.name, plan.network)
        level = start_level(parent, name, network, plan, plane.token, reserved)
        level.wait_healthy()
        healthy = time.monotonic()
        plane.wait_connected(plan.runner_id)
        up = NestLevel(level, plan, loaded - started, healthy - loaded, time.monotonic() - healthy)
        nest.levels.append(up)
        log(
            f"level {level.depth}: {plan.kind} {name} in {parent.name}: "
            + (f"images loaded {up.load_s:.1f}s, " if parent.depth else "")
            + f"healthy {up.boot_s:.1f}s after docker run, "
            f"agent {plan.runner_id} connected {up.agent_s:.1f}s later"
        )
        env = level.exec(["cat", "/run/helix-init/env.json"], check=False).stdout
        carried = json.loads(env) if env.strip() else {}
        reserved = carried.get("HELIX_CHILD_RESERVED_NETS", {}).get("value", reserved)
    nest.all[-1].load(BUSYBOX_IMAGE)
    return nest


def remove_nest(eng: Engine, prefix: str = "") -> None:
    host = Level.host(eng)
    host.docker("rm", "-f", f"{prefix}l1", f"{prefix}api", check=False, timeout=180)
    host.docker("volume", "rm", "-f", f"{prefix}l1-docker", check=False)
    host.docker("network", "rm", f"{prefix}helix-net", check=False)
