"""services.d read and resolved in one call, as boot does in two (before and after cont-init)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from helix_init.problems import ConfigError
from helix_init.services.resolve import plan_of, resolve_specs
from helix_init.services.spec import ServicePlan, read_specs


def load_services(
    services_dir: Path, environ: Mapping[str, str], *, after_cont_init: bool = False
) -> ServicePlan:
    """The plan of `services_dir` in `environ`; ConfigError listing every problem, read and
    resolve alike (boot.make_plan collects them the same way)."""
    specs, problems = read_specs(services_dir)
    resolved, pending, more = resolve_specs(specs, environ, before_cont_init=not after_cont_init)
    if problems or more:
        raise ConfigError(problems + more)
    return plan_of(resolved, pending)
