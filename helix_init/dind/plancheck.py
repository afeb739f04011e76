"""DinD settings checked before anything starts: by boot.make_plan and `helix-init check`.

Runs in PID 1 (and in `helix-init check`), reading only the environment and the
operator's daemon.json. Without this, a bad value surfaced as a cont-init step
failing (exit 79) after earlier steps had already changed the level, and
`helix-init check` said "ok" about a container that could not start. Each
parser lives with the step that uses it; it is imported here only when its
variable is set, so a level that sets none of them (most of PID 1's life)
pays for no import.

HELIX_DOCKERD_CONFIG must name a file that exists when the container starts
(mounted or baked into the image), not one a cont-init step writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from helix_init.problems import ConfigError, Problem


def _daemon_json(value: str) -> None:
    from helix_init.dind.daemonjson import load_operator_config

    load_operator_config(Path(value))


def _depth(value: str) -> None:
    from helix_init.dind.facts import DEPTH_VARIABLE, depth_from_env

    depth_from_env({DEPTH_VARIABLE: value}, 0)


def _storage_fallback(value: str) -> None:
    from helix_init.dind.storage import FALLBACK_VARIABLE, fallback_from_env

    fallback_from_env({FALLBACK_VARIABLE: value})


def _docker_gid(value: str) -> None:
    from helix_init.dind.dockergroup import GID_VARIABLE, settings_from_env

    settings_from_env({GID_VARIABLE: value})


def _reserved_nets(value: str) -> None:
    from helix_init.dind.netplan import parse_reserved_nets

    parse_reserved_nets(value)


def _iptables_backend(value: str) -> None:
    from helix_init.dind.iptables import OVERRIDE_VARIABLE, override_from_env

    override_from_env({OVERRIDE_VARIABLE: value})


# Variable -> its check (raises ConfigError). The names are spelled out here,
# not imported, so that reading this table imports nothing.
CHECKS: dict[str, Callable[[str], None]] = {
    "HELIX_DOCKERD_CONFIG": _daemon_json,
    "HELIX_DOCKER_DEPTH": _depth,
    "HELIX_STORAGE_FALLBACK": _storage_fallback,
    "HELIX_DOCKER_GID": _docker_gid,
    "HELIX_INIT_RESERVED_NETS": _reserved_nets,
    "HELIX_IPTABLES_BACKEND": _iptables_backend,
}


def problems_from_env(env: Mapping[str, str]) -> list[Problem]:
    """Every problem with the DinD variables that are set; [] when all are fine or unset."""
    problems: list[Problem] = []
    for name, check in CHECKS.items():
        value = env.get(name, "").strip()
        if not value:
            continue
        try:
            check(value)
        except ConfigError as exc:
            problems += exc.problems
    return problems
