"""A service's environment: exactly what it gets at start, and where each variable comes from.

Runs in PID 1. One function builds it, for the launch file (what svcexec
execs with) and for `helix-init env SERVICE` (what an operator reads), so
the two cannot disagree. The environment is, in this order:

  the container's variables (minus secret sources and NOTIFY_SOCKET, which
  are not for every service), with the cont-init exports the service takes
  (`inherit_exports`: all, none or a list); HOME/USER/LOGNAME for a
  service with a `user` (as for the CMD); its `environment` table; its
  secrets; NOTIFY_SOCKET for `ready = "notify"`.

Nothing else: supervisord's own SUPERVISOR_* variables never reach a
service (svcexec execs with this environment only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from helix_init.cmd import RunAs
from helix_init.contenv import Exports, expand, is_secret_name
from helix_init.services.spec import ServiceSpec

MASK = "********"
CONTAINER = ""  # the origin of a variable the container itself set


@dataclass(frozen=True)
class Variable:
    value: str
    origin: str = CONTAINER  # "step NAME", "service file", "secret from $X", "helix-init (...)"
    secret: bool = False

    def shown(self, name: str, secrets: frozenset[str]) -> str:
        """The value as an operator may see it: masked if it is or holds a known secret."""
        if self.secret or is_secret_name(name):
            return MASK if self.value else ""
        return MASK if any(secret in self.value for secret in secrets) else self.value


@dataclass(frozen=True)
class ServiceEnv:
    variables: dict[str, Variable]
    secret_files: dict[str, str] = field(default_factory=dict)  # NAME -> path, read by svcexec
    missing: tuple[str, ...] = ()  # required variables or secrets it lacks

    @property
    def env(self) -> dict[str, str]:
        """What the service is started with (file secrets are added by svcexec)."""
        return {n: v.value for n, v in self.variables.items() if n not in self.secret_files}

    @property
    def public(self) -> dict[str, str]:
        """Without secrets: for the init's own probes of the service (run as root)."""
        return {n: v.value for n, v in self.variables.items() if not v.secret}


def service_env(
    spec: ServiceSpec,
    exports: Exports,
    hidden: frozenset[str],
    environ: Mapping[str, str],
    notify_socket: str | None = None,
    run_as: RunAs | None = None,
) -> ServiceEnv:
    variables = {
        name: Variable(value, _origin(exports, name, value))
        for name, value in exports.only_carried(spec.inherit_exports).items()
        if name not in hidden
    }
    if run_as is not None:
        origin = f"helix-init (user {run_as.name})"
        for key, value in (("HOME", run_as.home), ("USER", run_as.name), ("LOGNAME", run_as.name)):
            variables[key] = Variable(value, origin)
    # One plain view, kept up to date: rebuilt per entry it made 24,000 entries
    # take ~20 s (quadratic) with PID 1's event loop blocked.
    plain = {n: v.value for n, v in variables.items()}
    for key, value in spec.environment.items():
        plain[key] = expanded = expand(value, plain)
        variables[key] = Variable(expanded, "service file")
    missing = [name for name in spec.required_env if not variables.get(name, Variable("")).value]
    files: dict[str, str] = {}
    for secret in spec.secrets:
        if secret.env is not None:
            value = environ.get(secret.env, "")
            if value:
                variables[secret.name] = Variable(value, f"secret from ${secret.env}", True)
            elif secret.required:
                missing.append(secret.env)
        elif secret.file is not None:
            if os.path.exists(secret.file):
                files[secret.name] = secret.file
                origin = f"secret from file {secret.file}, read at each start"
                variables[secret.name] = Variable("(file)", origin, True)
            elif secret.required:
                missing.append(f"{secret.name} (file {secret.file})")
    if notify_socket is not None:
        variables["NOTIFY_SOCKET"] = Variable(notify_socket, "helix-init (ready = notify)")
    return ServiceEnv(variables, files, tuple(missing))


def _origin(exports: Exports, name: str, value: str) -> str:
    """The step that set this value, or the container (also when the service refused the export)."""
    carried = exports.carried.get(name)
    return f"step {carried[1]}" if carried is not None and carried[0] == value else CONTAINER
