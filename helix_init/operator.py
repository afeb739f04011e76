"""Operator commands that read the drop-ins or the init's state: check, plan, health.

Runs as a short-lived process beside the init (docker exec, a HEALTHCHECK).
"""

from __future__ import annotations

import sys

from helix_init.boot import make_plan
from helix_init.exitcodes import Exit
from helix_init.problems import ConfigError
from helix_init.settings import Settings


def run(name: str, args: list[str], settings: Settings) -> int:
    if name == "check":
        return check(settings)
    if name == "plan":
        return plan(settings)
    if name == "health":
        return health(settings)
    print(f"helix-init: unknown command {name}", file=sys.stderr)
    return Exit.USAGE


def check(settings: Settings) -> int:
    try:
        boot_plan = make_plan(settings, [])
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"helix-init check: {len(exc.problems)} problem(s)", file=sys.stderr)
        return Exit.CONFIG
    print(
        f"ok: {len(boot_plan.cont_init)} cont-init step(s), "
        f"{len(boot_plan.cont_finish)} cont-finish step(s)"
    )
    return Exit.OK


def plan(settings: Settings) -> int:
    try:
        boot_plan = make_plan(settings, [])
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return Exit.CONFIG
    print(f"cont-init ({settings.cont_init_dir}):")
    for step in boot_plan.cont_init:
        extra = " optional" if step.optional else ""
        timeout = settings.step_timeout if step.timeout is None else step.timeout
        print(f"  {step.name}  [{step.kind}{extra}, timeout {timeout:g}s]")
    print(f"cont-finish ({settings.cont_finish_dir}):")
    for step in boot_plan.cont_finish:
        print(f"  {step.name}  [{step.kind}]")
    return Exit.OK


def health(settings: Settings) -> int:
    if settings.ready_path.exists():
        print("ready")
        return Exit.OK
    print("not ready")
    return Exit.NOT_READY
