"""What every built-in step shares: this level's settings and paths, the command runner, output.

Runs in a cont-init step process (never in PID 1). Steps hand results on
through files under HELIX_INIT_RUN_DIR (dind/paths.py) and exported variables.
Every step's fork imports this module first, so it imports only what PID 1 has
loaded already, plus the run dir's paths (see builtin/__init__.py's STEPS).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from helix_init.dind import DindError
from helix_init.dind.paths import LevelPaths
from helix_init.hostcmd import CommandResult
from helix_init.settings import INIT_ENV_FILE, Settings
from helix_init.settings.dind import DindSettings
from helix_init.settings.user import UserSettings

if TYPE_CHECKING:  # facts.py brings cgroups, storage and ctypes: only preflight needs them
    from helix_init.dind.facts import Facts


def run_command(argv: Sequence[str]) -> CommandResult:
    """The Runner for steps: a step is its own process, so plain subprocess is fine here."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CommandResult(127, "", str(exc))
    return CommandResult(done.returncode, done.stdout, done.stderr)


class Level:
    """Paths and settings of this level, as the steps share them."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.settings = Settings.from_env(env)
        paths = LevelPaths(self.settings.run_dir)
        self.docker_dir = paths.docker_dir
        self.facts_path = paths.facts_path
        self.daemon_json = paths.daemon_json
        self.netplan_path = paths.netplan_path
        self.dns_path = paths.dns_path
        self.path_file = paths.path_file

    @cached_property
    def dind(self) -> DindSettings:
        """The DinD variables, parsed when a step first needs them (ConfigError if bad)."""
        return DindSettings.from_env(self.env)

    @cached_property
    def user(self) -> UserSettings:
        """PUID, PGID, UNAME and UMASK, parsed when a step first needs them (ConfigError if bad)."""
        return UserSettings.from_env(self.env)

    def facts(self) -> Facts:
        try:
            data: Facts = json.loads(self.facts_path.read_text())
        except (OSError, ValueError):
            raise DindError(f"{self.facts_path} is missing: run the preflight step first") from None
        return data

    def docker_wanted(self) -> bool:
        return bool(self.facts().get("can_run_dockerd"))

    def export(self, name: str, value: str) -> None:
        """Hand a variable to later steps, the services and the CMD (see contenv.py)."""
        target = self.env.get(INIT_ENV_FILE)
        if target:
            with open(target, "a") as f:
                f.write(f"{name}={value}\0")


def say(text: str) -> None:
    """One line of the step's output; the init prefixes and timestamps it."""
    print(text, flush=True)


def which(name: str) -> bool:
    import shutil  # here: with bz2 and lzma it is ~5 ms of every step's fork, for two steps' use

    return shutil.which(name) is not None
