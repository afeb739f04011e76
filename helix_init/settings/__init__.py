"""Settings: every HELIX_INIT_* knob, read once from the environment into a frozen dataclass.

Nothing else in the package reads os.environ for configuration; code receives a
Settings. Defaults keep the s6-overlay/GOW folder names so existing drop-ins work.
Each other area's variables are parsed, without I/O, in a module beside this
one: sibling.py (HELIX_LOCALHOST_FORWARD*, HELIX_BRIDGE_GUARD*), dns.py
(HELIX_DNS, DNS_UPSTREAM).
Where an s6-overlay variable means the same thing, it is accepted too and the
HELIX_INIT_* name wins.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path

from helix_init import rundir
from helix_init.problems import ConfigError, Problem
from helix_init.settings.s6 import setting_overrides as s6_overrides

MAX_SECONDS = 86_400.0  # every time setting is finite and at most a day (docs/service-limits.md)
MAX_BYTES = float(1 << 40)
# Named in messages beside their own use.
RUN_DIR = "HELIX_INIT_RUN_DIR"
SERVICE_LOG_DIR = "HELIX_INIT_SERVICE_LOG_DIR"
STEP_PRELUDE = "HELIX_INIT_STEP_PRELUDE"
# Set by the init for each step, never read from the container's environment.
INIT_ENV_FILE = "HELIX_INIT_ENV_FILE"  # where a program step reports its exports
INIT_PID = "HELIX_INIT_PID"  # the init's pid: is it PID 1?
# Read when the CMD starts, after cont-init, so a step may export it.
CMD_USER = "HELIX_INIT_CMD_USER"
START = "HELIX_INIT_START"  # "gow": GOW's start contract (cmd.py)
GOW_STARTUP = "HELIX_INIT_GOW_STARTUP"
ADOPTED_GRACETIME = "HELIX_INIT_ADOPTED_GRACETIME"
HIDE_PROC = "HELIX_HIDE_PROC"  # the hide-proc step: 0 leaves /proc alone (procmount.py)


class OnStepFailure(IntEnum):
    """What a failed cont-init step does: s6-overlay's S6_BEHAVIOUR_IF_STAGE2_FAILS values."""

    CONTINUE = 0  # go on silently
    WARN = 1  # log a warning and go on
    STOP = 2  # stop the container (exit 79); cont-finish still runs


@dataclass(frozen=True)
class Settings:
    cont_init_dir: Path = Path("/etc/cont-init.d")
    cont_finish_dir: Path = Path("/etc/cont-finish.d")
    services_dir: Path = Path("/etc/services.d")
    run_dir: Path = Path("/run/helix-init")
    log_dir: Path = Path("/var/log/helix-init")
    service_log_dir: Path = Path("/var/log/helix-services")
    step_timeout: float = 300.0  # per program step; 0 = none; a step header can override
    sh_step_timeout: float = 0.0  # per sourced *.sh step: none, as the old entrypoint had
    step_heartbeat: float = 60.0  # a step still running says so this often; 0 = never
    adopted_gracetime: float = 10.0  # TERM to what a step left running, then the sweep
    finish_timeout: float = 30.0  # budget for the whole cont-finish.d folder
    step_prelude: tuple[Path, ...] = ()  # COMPAT: sourced before every *.sh step (GOW's utils.sh)
    behaviour_if_step_fails: OnStepFailure = OnStepFailure.STOP
    cmd_user: str | None = None
    start: str = "cmd"  # "gow": GOW's start contract (cmd.py); COMPAT
    gow_startup: Path | None = None  # GOW's startup script; None = cmd.GOW_STARTUPS
    cmd_shell: bool = False  # COMPAT: one string argument runs as `bash -c ARG`
    cmd_gracetime: float = 10.0  # TERM to the CMD, then KILL
    cmd_wait_for_services_maxtime: float = 0.0  # 0 = wait for readiness forever
    kill_gracetime: float = 3.0  # final sweep: TERM to everything left, then KILL
    service_log_maxbytes: int = 50 * 1024 * 1024
    service_log_backups: int = 5
    verbosity: int = 1
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def sock_path(self) -> Path:
        """The init's control socket (root only)."""
        return self.run_dir / rundir.CONTROL_SOCK

    @property
    def ready_path(self) -> Path:
        return self.run_dir / rundir.READY

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings; every bad value is reported, naming its variable."""
        problems: list[Problem] = []
        reader = _Reader(env, problems)
        d = cls()
        s = cls(
            cont_init_dir=reader.path("HELIX_INIT_CONT_INIT_DIR", d.cont_init_dir),
            cont_finish_dir=reader.path("HELIX_INIT_CONT_FINISH_DIR", d.cont_finish_dir),
            services_dir=reader.path("HELIX_INIT_SERVICES_DIR", d.services_dir),
            run_dir=reader.path(RUN_DIR, d.run_dir),
            log_dir=reader.path("HELIX_INIT_LOG_DIR", d.log_dir),
            service_log_dir=reader.path(SERVICE_LOG_DIR, d.service_log_dir),
            step_timeout=reader.seconds("HELIX_INIT_STEP_TIMEOUT", d.step_timeout),
            sh_step_timeout=reader.seconds("HELIX_INIT_SH_STEP_TIMEOUT", d.sh_step_timeout),
            step_heartbeat=reader.seconds("HELIX_INIT_STEP_HEARTBEAT", d.step_heartbeat),
            adopted_gracetime=reader.seconds(ADOPTED_GRACETIME, d.adopted_gracetime),
            finish_timeout=reader.seconds("HELIX_INIT_FINISH_TIMEOUT", d.finish_timeout),
            step_prelude=reader.paths(STEP_PRELUDE) or _gow_prelude(env),
            behaviour_if_step_fails=OnStepFailure(
                reader.choice(
                    ("HELIX_INIT_BEHAVIOUR_IF_STEP_FAILS", "S6_BEHAVIOUR_IF_STAGE2_FAILS"),
                    d.behaviour_if_step_fails,
                    tuple(int(p) for p in OnStepFailure),
                )
            ),
            cmd_user=env.get(CMD_USER) or None,
            start=reader.word(START, d.start, ("cmd", "gow")),
            gow_startup=reader.optional_path((GOW_STARTUP, "STARTUP_SCRIPT")),
            cmd_shell=reader.flag("HELIX_INIT_CMD_SHELL", d.cmd_shell),
            cmd_gracetime=reader.seconds("HELIX_INIT_CMD_GRACETIME", d.cmd_gracetime),
            cmd_wait_for_services_maxtime=reader.seconds(
                "HELIX_INIT_CMD_WAIT_FOR_SERVICES_MAXTIME", d.cmd_wait_for_services_maxtime
            ),
            kill_gracetime=reader.seconds("HELIX_INIT_KILL_GRACETIME", d.kill_gracetime),
            service_log_maxbytes=reader.size(
                "HELIX_INIT_SERVICE_LOG_MAXBYTES", d.service_log_maxbytes
            ),
            service_log_backups=reader.choice(
                ("HELIX_INIT_SERVICE_LOG_BACKUPS",), d.service_log_backups, range(0, 1000)
            ),
            verbosity=reader.choice(("HELIX_INIT_VERBOSITY",), d.verbosity, (0, 1, 2)),
            environ=dict(env),
        )
        # An s6-overlay image: S6_* variables with s6-overlay's meanings and defaults.
        overrides, more = s6_overrides(env)
        problems += more
        if "behaviour_if_step_fails" in overrides:
            overrides["behaviour_if_step_fails"] = OnStepFailure(
                int(overrides["behaviour_if_step_fails"])
            )
        s = replace(s, **overrides)  # type: ignore[arg-type]
        if problems:
            raise ConfigError(problems)
        return s


GOW_PRELUDE = Path("/opt/gow/bash-lib/utils.sh")


def _gow_prelude(env: Mapping[str, str]) -> tuple[Path, ...]:
    """COMPAT: under GOW's start contract, GOW's library is the prelude unless one is set."""
    if env.get(START, "").strip() == "gow" and GOW_PRELUDE.is_file():
        return (GOW_PRELUDE,)
    return ()


class _Reader:
    """Parses one variable at a time, collecting problems instead of raising."""

    def __init__(self, env: Mapping[str, str], problems: list[Problem]) -> None:
        self.env = env
        self.problems = problems

    def path(self, name: str, default: Path) -> Path:
        raw = self.env.get(name)
        if not raw:
            return default
        if not raw.startswith("/"):
            self.problems.append(Problem(name, f"must be an absolute path, got {raw!r}"))
            return default
        return Path(raw)

    def optional_path(self, names: tuple[str, ...]) -> Path | None:
        """The first of `names` that is set, as an absolute path; None if none is."""
        for name in names:
            raw = self.env.get(name, "").strip()
            if raw.startswith("/"):
                return Path(raw)
            if raw:
                self.problems.append(Problem(name, f"must be an absolute path, got {raw!r}"))
                return None
        return None

    def word(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        if raw not in allowed:
            self.problems.append(Problem(name, f"must be one of {', '.join(allowed)}, got {raw!r}"))
            return default
        return raw

    def paths(self, name: str) -> tuple[Path, ...]:
        """A colon-separated list of absolute paths, like PATH; each must be a readable file."""
        found: list[Path] = []
        for raw in self.env.get(name, "").split(":"):
            raw = raw.strip()
            if not raw:
                continue
            if not raw.startswith("/"):
                self.problems.append(Problem(name, f"must list absolute paths, got {raw!r}"))
            elif not os.access(raw, os.R_OK) or not os.path.isfile(raw):
                self.problems.append(Problem(name, f"{raw}: no such readable file"))
            else:
                found.append(Path(raw))
        return tuple(found)

    def seconds(self, name: str, default: float, maximum: float = MAX_SECONDS) -> float:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(Problem(name, f"must be a number, got {raw!r}"))
            return default
        # inf (or 1e400, which float() reads as inf) made a shutdown that never ends.
        if value < 0 or value != value:
            self.problems.append(Problem(name, f"must be 0 or more, got {raw!r}"))
            return default
        if not math.isfinite(value) or value > maximum:
            most = f"{maximum:.0f}" if maximum == int(maximum) else f"{maximum:g}"
            self.problems.append(Problem(name, f"must be finite, at most {most}, got {raw!r}"))
            return default
        return value

    def size(self, name: str, default: int) -> int:
        """A number of bytes, 0..MAX_BYTES."""
        return int(self.seconds(name, default, maximum=MAX_BYTES))

    def choice(self, names: tuple[str, ...], default: int, allowed: range | tuple[int, ...]) -> int:
        for name in names:
            raw = self.env.get(name)
            if raw is None or raw == "":
                continue
            try:
                value = int(raw)
            except ValueError:
                value = -1
            if value not in allowed:
                shown = f"{allowed[0]}..{allowed[-1]}" if isinstance(allowed, range) else allowed
                self.problems.append(Problem(name, f"must be one of {shown}, got {raw!r}"))
                return default
            return value
        return default

    def flag(self, name: str, default: bool) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if raw == "":
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        self.problems.append(Problem(name, f"must be 1 or 0, got {raw!r}"))
        return default
