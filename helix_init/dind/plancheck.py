"""DinD and DNS settings checked before anything starts: by boot.make_plan and `helix-init check`.

Runs in PID 1 (and in `helix-init check`), reading only the environment and the
operator's daemon.json, and HELIX_DNS (DNS_UPSTREAM) as the network step
will parse it. Without this, a bad value surfaced as a cont-init step
failing (exit 79) after earlier steps had already changed the level, and
`helix-init check` said "ok" about a container that could not start. The
variables are parsed by helix_init/settings/dind.py, the same parse the steps
use, which imports nothing heavy; the operator's file is read (and its module
imported) only when HELIX_DOCKERD_CONFIG is set, the DNS parser only when an
upstream list is given: an idle PID 1 never loads helix_init.dns.

HELIX_DOCKERD_CONFIG must name a file that exists when the container starts
(mounted or baked into the image), not one a cont-init step writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from helix_init.problems import ConfigError, Problem
from helix_init.settings.dind import DOCKERD_CONFIG, DindSettings
from helix_init.settings.dns import OVERRIDE_VARIABLES as DNS_OVERRIDES


def problems_from_env(env: Mapping[str, str]) -> list[Problem]:
    """Every problem with the DinD variables that are set; [] when all are fine or unset."""
    problems: list[Problem] = []
    path = env.get(DOCKERD_CONFIG, "").strip()
    if path:
        from helix_init.dind.daemonjson import load_operator_config

        try:
            load_operator_config(Path(path))
        except ConfigError as exc:
            problems += exc.problems
    try:
        DindSettings.from_env(env)
    except ConfigError as exc:
        problems += exc.problems
    if any(env.get(name, "").strip() for name in DNS_OVERRIDES):
        from helix_init.dns.plan import override_problems  # the network step's own parse

        problems += override_problems(env)
    return problems
