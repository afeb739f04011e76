"""enabled_if: the clauses that switch a service on or off, parsed and evaluated at plan time.

Every clause given must hold. A variable counts as set when it has a non-empty
value (`docker run -e TOKEN=` leaves a service that needs TOKEN off), and
env_equals never echoes the actual value, which may be a secret.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from helix_init.services.fields import Fields

KEYS = ("path_exists", "env_set", "env_unset", "env_equals")


@dataclass(frozen=True)
class Condition:
    path_exists: tuple[str, ...] = ()
    env_set: tuple[str, ...] = ()
    env_unset: tuple[str, ...] = ()
    env_equals: tuple[tuple[str, str], ...] = ()

    def failure(
        self, environ: Mapping[str, str], exists: Callable[[str], bool] = os.path.exists
    ) -> str | None:
        """Why the condition does not hold (the first clause that fails), or None when it holds."""
        for path in self.path_exists:
            if not exists(path):
                return f"enabled_if.path_exists: {path} does not exist"
        for var in self.env_set:
            if not environ.get(var):
                return f"enabled_if.env_set: {var} is not set"
        for var in self.env_unset:
            if environ.get(var):
                return f"enabled_if.env_unset: {var} is set"
        for var, wanted in self.env_equals:
            if environ.get(var) != wanted:
                return f"enabled_if.env_equals: {var} is not {wanted!r}"
        return None


def parse_condition(fields: Fields) -> Condition:
    """Read an enabled_if table; problems go to `fields`, bad clauses are left out."""
    fields.only(KEYS)
    paths = fields.one_or_more("path_exists") or ()
    for i, path in enumerate(paths):
        if not path.startswith("/"):
            fields.problem(f"{fields.key('path_exists')}[{i}]", f"must be absolute, got {path!r}")
    equals: list[tuple[str, str]] = []
    table = fields.subtable("env_equals")
    if table is not None:
        for var, value in table.items():
            if isinstance(value, str):
                equals.append((var, value))
            else:
                table.wrong_type(table.key(var), "a string", value)
    return Condition(
        path_exists=paths,
        env_set=fields.one_or_more("env_set") or (),
        env_unset=fields.one_or_more("env_unset") or (),
        env_equals=tuple(equals),
    )
