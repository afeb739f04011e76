"""Warnings about services that would start but likely not run (reads the filesystem; for `check`).

Not problems: a cont-init step may install the binary before the services
start (a package step, a copied release), so `check` says it and still exits
0. A command whose program is not on the service's PATH was restarted for
ever with 127 and nobody was told before it ran.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from helix_init.contenv import expand
from helix_init.services.spec import ServicePlan, ServiceSpec


def warnings(plan: ServicePlan, environ: Mapping[str, str]) -> list[str]:
    """One line per enabled service whose command's program cannot be found now."""
    lines = []
    for spec in plan.services:
        if spec.enabled and spec.command:
            what = missing_program(spec, environ)
            if what:
                lines.append(f"{spec.source}: warning: {what}")
    return lines


def missing_program(spec: ServiceSpec, environ: Mapping[str, str]) -> str | None:
    env = dict(environ)
    for name, value in spec.environment.items():
        env[name] = expand(value, env)
    program = expand(spec.command[0], env)
    if not program:
        return None  # a variable set by a step; nothing to say now
    if "/" in program:
        if _executable(program):
            return None
        return f"command {program} is not an executable file (yet)"
    path = env.get("PATH", os.defpath)
    if any(_executable(os.path.join(d or ".", program)) for d in path.split(":")):
        return None
    return f"command {program!r} is not on the service's PATH ({path})"


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)
