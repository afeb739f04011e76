"""Resolve: service specs plus the environment and the accounts -> the ServicePlan; in PID 1.

The one step between reading the drop-ins (spec.py, files only) and acting on
them. Boot resolves after cont-init, when the steps have made the files,
exported the variables and made the users that decide it: enabled_if is
evaluated, `user` and `group` are expanded (`${UNAME}`) and must exist, and
the container's variables plus the service's own must fit one exec. `check`
and `plan` resolve before cont-init (before_cont_init=True): a decision a step
can still change is listed in ServicePlan.pending with what it waits on, and
an account the user step will make is taken as made.

The accounts come through a small interface (Accounts), the system's
pwd/grp by default, so a test or `plan` can pass its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Literal, Protocol

from helix_init import usersetup
from helix_init.contenv import expand
from helix_init.problems import ConfigError, Problem
from helix_init.services import graph
from helix_init.services.conditions import Condition
from helix_init.services.limits import exec_problem
from helix_init.services.spec import Pending, ServicePlan, ServiceSpec
from helix_init.settings.user import VARIABLES as USER_VARIABLES

Kind = Literal["user", "group"]


class Accounts(Protocol):
    def has(self, kind: Kind, account: str) -> bool:
        """Whether user or group `account` (a name, or a number) exists."""
        ...


class SystemAccounts:
    """The accounts of this system: pwd and grp (NSS), by name or by number."""

    def has(self, kind: Kind, account: str) -> bool:
        import grp
        import pwd

        try:
            if account.isascii() and account.isdigit():
                _ = pwd.getpwuid(int(account)) if kind == "user" else grp.getgrgid(int(account))
            else:
                _ = pwd.getpwnam(account) if kind == "user" else grp.getgrnam(account)
        except (KeyError, OverflowError):
            return False
        return True


def resolve(
    specs: Sequence[ServiceSpec],
    environ: Mapping[str, str],
    *,
    accounts: Accounts | None = None,
    exists: Callable[[str], bool] = os.path.exists,
    before_cont_init: bool = False,
) -> ServicePlan:
    """The plan; raises ConfigError listing every problem."""
    resolved, pending, problems = resolve_specs(
        specs, environ, accounts=accounts, exists=exists, before_cont_init=before_cont_init
    )
    if problems:
        raise ConfigError(problems)
    return plan_of(resolved, pending)


def resolve_specs(
    specs: Sequence[ServiceSpec],
    environ: Mapping[str, str],
    *,
    accounts: Accounts | None = None,
    exists: Callable[[str], bool] = os.path.exists,
    before_cont_init: bool = False,
) -> tuple[list[ServiceSpec], tuple[Pending, ...], list[Problem]]:
    """Each spec resolved, the pending decisions and every problem (resolve, without raising
    and without the levels, which need a graph free of cycles)."""
    known = accounts or SystemAccounts()
    problems: list[Problem] = []
    pending: list[Pending] = []
    resolved = []
    for spec in specs:
        changes: dict[str, object] = {}
        if spec.enabled and spec.enabled_if is not None:
            reason = spec.enabled_if.failure(environ, exists)
            changes.update(enabled=reason is None, disabled_reason=reason or "")
            if before_cont_init:
                now = "on" if reason is None else f"off: {reason}"
                pending.append(Pending(spec.name, "enabled_if", _inputs(spec.enabled_if), now))
        for kind in ("user", "group"):
            raw = getattr(spec, kind)
            if raw is None:
                continue
            value, waits = _account(spec, kind, raw, environ, known, before_cont_init, problems)
            changes[kind] = value
            if waits is not None:
                pending.append(waits)
        what = _exec_problem(spec, environ)
        if what:
            problems.append(Problem(spec.source, f"environment: {what}"))
        resolved.append(replace(spec, **changes) if changes else spec)  # type: ignore[arg-type]
    return resolved, tuple(pending), problems


def plan_of(specs: Sequence[ServiceSpec], pending: tuple[Pending, ...] = ()) -> ServicePlan:
    """The plan of resolved specs: the start levels over the enabled ones (graph.py)."""
    enabled = {s.name for s in specs if s.enabled}
    deps = {s.name: [r for r in s.requires if r in enabled] for s in specs if s.enabled}
    return ServicePlan(tuple(specs), graph.start_levels(deps), pending)


def _inputs(condition: Condition) -> str:
    """What an enabled_if reads, which a cont-init step may make or export."""
    paths = [f"path {p}" for p in condition.path_exists]
    names = dict.fromkeys(
        [*condition.env_set, *condition.env_unset, *(v for v, _ in condition.env_equals)]
    )
    return ", ".join([*paths, *(f"variable {v}" for v in names)])


def _account(
    spec: ServiceSpec,
    kind: Kind,
    raw: str,
    environ: Mapping[str, str],
    accounts: Accounts,
    before_cont_init: bool,
    problems: list[Problem],
) -> tuple[str | None, Pending | None]:
    """The account expanded, and a Pending when the user step is still to make it; before
    cont-init that counts as there (after it, the account must exist: the step may be
    removed)."""
    value = expand(raw, environ)
    if not value:
        problems.append(
            Problem(spec.source, f"{kind}: {raw!r} is empty here (its variable is not set)")
        )
        return None, None

    def has_gid(gid: int) -> bool:
        return accounts.has("group", str(gid))

    if before_cont_init and usersetup.will_create(environ, value, kind, has_gid):
        step = f"the user step ({', '.join(USER_VARIABLES)})"
        return value, Pending(spec.name, f"{kind} {value}", step, "not there yet")
    if not accounts.has(kind, value):
        problems.append(Problem(spec.source, f"{kind}: unknown {kind} {value!r}"))
        return None, None
    return value, None


def _exec_problem(spec: ServiceSpec, environ: Mapping[str, str]) -> str | None:
    """The container's variables and the service's own must fit one exec (see limits.py)."""
    env = dict(environ)
    for name, value in spec.environment.items():
        env[name] = expand(value, env)
    return exec_problem((expand(a, env) for a in spec.command), env)
