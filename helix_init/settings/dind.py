"""DinD settings: every variable the Docker-in-Docker steps read, parsed once into DindSettings.

Pure (no I/O): boot.make_plan and `helix-init check` collect every problem
before anything starts (dind/plancheck.py); each built-in step reads the typed
values from its Level. A bad value is one line naming its variable. The
operator's daemon.json (HELIX_DOCKERD_CONFIG) is only named here; reading it
is dind/daemonjson.py's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network
from pathlib import Path
from typing import TypeVar

from helix_init.problems import ConfigError, Problem

DEPTH = "HELIX_DOCKER_DEPTH"
DEPTH_DEFAULT = "HELIX_DOCKER_DEPTH_DEFAULT"  # set by the image: sandbox 1, desktop 2
REQUIRED = "HELIX_DOCKER_REQUIRED"
RESERVED_NETS = "HELIX_INIT_RESERVED_NETS"
CHILD_RESERVED_NETS = "HELIX_CHILD_RESERVED_NETS"  # exported by the network step
STORAGE_FALLBACK = "HELIX_STORAGE_FALLBACK"
IPTABLES_BACKEND = "HELIX_IPTABLES_BACKEND"
DOCKER_GID = "HELIX_DOCKER_GID"
DESKTOP_USER = "HELIX_DESKTOP_USER"
REGISTRY = "HELIX_REGISTRY"
SANDBOX_REGISTRY = "HELIX_SANDBOX_REGISTRY"
API_URL = "HELIX_API_URL"
DOCKERD_CONFIG = "HELIX_DOCKERD_CONFIG"
GPU_VENDOR = "GPU_VENDOR"  # COMPAT: today's images

DEFAULT_DEPTH = 1
FALLBACKS = ("fuse-overlayfs", "vfs")
BACKENDS = ("legacy", "nft")
T = TypeVar("T")


@dataclass(frozen=True)
class DindSettings:
    depth: int = DEFAULT_DEPTH
    required: bool = False  # a level that cannot run dockerd fails its preflight step
    reserved_nets: tuple[IPv4Network, ...] = ()
    storage_fallback: str | None = None
    iptables_backend: str | None = None  # None: chosen from what is in use
    docker_gid: int | None = None
    desktop_user: str | None = None
    insecure_registries: tuple[str, ...] = ()
    must_reach: tuple[str, ...] = ()  # API and registry URLs or hosts the pools must not hide
    dockerd_config: Path | None = None
    gpu_vendor: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DindSettings:
        """Every DinD variable; ConfigError naming each bad one."""
        problems = ProblemList()
        default = problems.take(lambda: _count(env, DEPTH_DEFAULT, DEFAULT_DEPTH))
        settings = cls(  # in this order, so problems come in the order of the docs' table
            depth=problems.take(
                lambda: depth_from_env(env, DEFAULT_DEPTH if default is None else default)
            )
            or 0,
            storage_fallback=problems.take(lambda: fallback_from_env(env)),
            docker_gid=(problems.take(lambda: docker_group_from_env(env)) or (None, None))[0],
            reserved_nets=tuple(
                problems.take(lambda: parse_reserved_nets(env.get(RESERVED_NETS, ""))) or ()
            ),
            iptables_backend=problems.take(lambda: override_from_env(env)),
            required=env.get(REQUIRED, "0") == "1",
            desktop_user=env.get(DESKTOP_USER, "").strip() or None,
            insecure_registries=tuple(problems.take(lambda: registries_from_env(env)) or ()),
            must_reach=tuple(env.get(n, "") for n in (API_URL, REGISTRY, SANDBOX_REGISTRY)),
            dockerd_config=Path(p) if (p := env.get(DOCKERD_CONFIG, "").strip()) else None,
            gpu_vendor=env.get(GPU_VENDOR),
        )
        if problems.found:
            raise ConfigError(problems.found)
        return settings


class ProblemList:
    """Runs parsers that raise ConfigError, keeping every problem instead of the first."""

    def __init__(self) -> None:
        self.found: list[Problem] = []

    def take(self, parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except ConfigError as exc:
            self.found += exc.problems
            return None


def depth_from_env(env: Mapping[str, str], default: int) -> int:
    return _count(env, DEPTH, default)


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError([Problem(name, f"must be 0 or a positive integer, got {raw!r}")])
    return int(raw)


def fallback_from_env(env: Mapping[str, str]) -> str | None:
    """HELIX_STORAGE_FALLBACK: unset/empty means none; anything else must be a known driver."""
    value = env.get(STORAGE_FALLBACK, "").strip()
    if not value:
        return None
    if value not in FALLBACKS:
        raise ConfigError(
            [Problem(STORAGE_FALLBACK, f"must be one of {', '.join(FALLBACKS)}, got {value!r}")]
        )
    return value


def override_from_env(env: Mapping[str, str]) -> str | None:
    value = env.get(IPTABLES_BACKEND, "").strip()
    if value and value not in BACKENDS:
        raise ConfigError([Problem(IPTABLES_BACKEND, f"must be legacy or nft, got {value!r}")])
    return value or None


def docker_group_from_env(env: Mapping[str, str]) -> tuple[int | None, str | None]:
    """(fixed gid, desktop user) from HELIX_DOCKER_GID and HELIX_DESKTOP_USER."""
    raw = env.get(DOCKER_GID, "").strip()
    if raw and not (raw.isdigit() and 0 < int(raw) < 2**31):
        raise ConfigError([Problem(DOCKER_GID, f"must be a positive integer, got {raw!r}")])
    return (int(raw) if raw else None), (env.get(DESKTOP_USER, "").strip() or None)


def parse_reserved_nets(value: str) -> list[IPv4Network]:
    """HELIX_INIT_RESERVED_NETS: comma-separated IPv4 CIDRs; every bad entry is reported."""
    nets: list[IPv4Network] = []
    problems: list[Problem] = []
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        try:
            net = ip_network(item, strict=False)
        except ValueError:
            problems.append(Problem(RESERVED_NETS, f"{item!r} is not a CIDR"))
            continue
        if not isinstance(net, IPv4Network):
            problems.append(Problem(RESERVED_NETS, f"{item!r} is not IPv4"))
            continue
        nets.append(net)
    if problems:
        raise ConfigError(problems)
    return nets


def registries_from_env(env: Mapping[str, str]) -> list[str]:
    """HELIX_REGISTRY as insecure-registries entries: comma-separated, scheme dropped.

    An entry with white space or a control character in it is refused here:
    dockerd would refuse its daemon.json at start, after the steps had run.
    """
    raw = env.get(REGISTRY, "")
    entries = (r.strip().removeprefix("http://").removeprefix("https://") for r in raw.split(","))
    found = [e.rstrip("/") for e in entries if e]
    bad = [e for e in found if any(c.isspace() or not c.isprintable() for c in e)]
    if bad:
        raise ConfigError([Problem(REGISTRY, f"not a registry host[:port]: {e!r}") for e in bad])
    return found
