"""The built-in cont-init steps, `helix-init step NAME`: one module per step, and their order.

Runs as root in a cont-init step process (never in PID 1), once per boot, in
the order of the shipped cont-init.d entries. Each step is one function named
for its effect, whose docstring names the failure it prevents; idempotent (a
second run changes nothing), printing one line per decision; the init
prefixes and timestamps them. Steps hand results on through files under
HELIX_INIT_RUN_DIR (dind/paths.py) and exported variables. The libraries they
call (dind/, dns/, sibling/, usersetup) never import this package.

Whether this level runs dockerd at all is decided once, by `preflight`: when
it cannot, the later steps do nothing, no daemon.json is written, and the
dockerd service (enabled only when daemon.json exists) is off. Where
HELIX_DOCKER_REQUIRED=1 (the sandbox image) that is a failed step instead.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

from helix_init import usersetup
from helix_init.builtin.level import Level
from helix_init.exitcodes import Exit
from helix_init.hostcmd import StepError
from helix_init.problems import ConfigError

# In boot order (cont-init.d's numbers): /proc hidden before anything can put a
# secret in argv; the user next, since the docker group
# adds them; preflight before every dockerd step, which do nothing when it says
# this level cannot run dockerd; the network plan before daemon.json, which
# names its bridge, pools and DNS. Each is (module, function): a step imports
# its own module only. Every step is a fork of PID 1, which has none of them
# loaded, so importing them all (pyroute2's users, daemon.json's, iptables')
# in each of the nine forks was a large share of a level's cont-init.
STEPS: dict[str, tuple[str, str]] = {
    "hide-proc": ("hideproc", "hide_other_users_processes"),
    "user": ("user", "set_up_user"),
    "preflight": ("preflight", "preflight"),
    "cgroups": ("cgroups", "fix_cgroups"),
    "network": ("network", "plan_network"),
    "dockerd-config": ("dockerdconfig", "write_dockerd_config"),
    "docker-group": ("dockergroup", "ensure_docker_group"),
    "revdial": ("revdial", "name_revdial_runner"),
    "localhost-forward": ("localhostforward", "forward_localhost_to_gateway"),
    "localhost-forward-undo": ("localhostforward", "undo_localhost_forwarding"),
}


def step_function(name: str) -> Callable[[Level], None] | None:
    """The function of built-in step `name` (its module imported now), None if unknown."""
    if name not in STEPS:
        return None
    module, function = STEPS[name]
    found: Callable[[Level], None] = getattr(
        importlib.import_module(f"{__name__}.{module}"), function
    )
    return found


def run_step(name: str, env: Mapping[str, str]) -> int:
    """`helix-init step NAME`: 0 on success, 1 with one line on stderr otherwise."""
    step = step_function(name)
    if step is None:
        print(
            f"helix-init step: unknown step {name!r} (known: {', '.join(STEPS)})", file=sys.stderr
        )
        return Exit.USAGE
    try:
        step(Level(env))
    except (StepError, ConfigError, OSError, usersetup.UserSetupError) as exc:
        print(f"step {name} failed: {exc}", file=sys.stderr)
        return Exit.FAILED
    return Exit.OK
