"""The container environment: the init's own variables plus what cont-init steps exported.

Runs in PID 1. s6-overlay's `with-contenv` idea, traceable: every carried
variable remembers the step that exported it (COMPAT.md: an exported variable
once changed a whole container's graphics stack and took a day to find), and
the log names the step and the variables, never their values.

A step reports its environment through the file named by HELIX_INIT_ENV_FILE:
`*.sh` steps get it written for them (the full `env -0` of the sourcing shell
when it exits, so unsets are seen too); other programs may write `KEY=VALUE`
entries there themselves, NUL- or newline-separated (sets only).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from helix_init.rootfiles import write_private
from helix_init.settings import INIT_ENV_FILE

ENV_FILE_VAR = INIT_ENV_FILE
# Shell bookkeeping that changes in every shell and is nobody's export.
_SHELL_NOISE = frozenset({"SHLVL", "_", "PWD", "OLDPWD", ENV_FILE_VAR})
VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # ${VAR} in service files
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PRIVATE|CREDENTIAL|API_KEY", re.IGNORECASE)


def expand(text: str, env: Mapping[str, str]) -> str:
    """${VAR} from `env`; unknown variables become empty, as in a shell."""
    return VAR_RE.sub(lambda m: env.get(m.group(1), ""), text)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def mask(name: str, value: str) -> str:
    return "********" if is_secret_name(name) and value else value


@dataclass
class Exports:
    """Variables carried from steps: name -> (value or None when unset, step name)."""

    base: dict[str, str]
    carried: dict[str, tuple[str | None, str]] = field(default_factory=dict)

    def current(self) -> dict[str, str]:
        env = dict(self.base)
        for name, (value, _step) in self.carried.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def only_carried(self, names: bool | tuple[str, ...]) -> dict[str, str]:
        """The environment with none, all, or a named subset of the carried variables."""
        if names is True:
            return self.current()
        env = dict(self.base)
        if names is False:
            return env
        current = self.current()
        for name in names:
            if name in current:
                env[name] = current[name]
        return env

    def apply(self, step: str, before: Mapping[str, str], reported: str, full: bool) -> list[str]:
        """Record what a step changed; returns log-ready words like 'FOO' or '-BAR' (unset)."""
        after = parse_env_file(reported)
        changed: list[str] = []
        for name, value in after.items():
            if name in _SHELL_NOISE or before.get(name) == value:
                continue
            self.carried[name] = (value, step)
            changed.append(name)
        if full:
            for name in before:
                if name not in after and name not in _SHELL_NOISE:
                    self.carried[name] = (None, step)
                    changed.append(f"-{name}")
        return changed

    def save(self, path: Path) -> None:
        """Write the carried variables (root only: values may be secrets)."""
        data = {name: {"value": v, "step": s} for name, (v, s) in self.carried.items()}
        write_private(path, json.dumps(data, indent=1, sort_keys=True))


def parse_env_file(text: str) -> dict[str, str]:
    sep = "\0" if "\0" in text else "\n"
    env: dict[str, str] = {}
    for entry in text.split(sep):
        name, eq, value = entry.partition("=")
        if eq and name and "\n" not in name:
            env[name] = value
    return env
