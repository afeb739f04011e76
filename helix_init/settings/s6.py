"""s6-overlay images: where their files are, whether this is one, and the S6_* variables.

Pure (but for looking for the s6-rc.d folder). An image counts as an s6-overlay image when
its s6-rc.d tree exists or any S6_* variable is set; only then is
container_environment written and are S6_* variables given s6-overlay's
meanings (see docs/s6-overlay.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from helix_init.problems import Problem

# S6_* settings with an equivalent, in milliseconds: (Settings field, HELIX_INIT_* name, default).
MILLIS = {
    "S6_CMD_WAIT_FOR_SERVICES_MAXTIME": (
        "cmd_wait_for_services_maxtime", "HELIX_INIT_CMD_WAIT_FOR_SERVICES_MAXTIME", 0
    ),
    "S6_KILL_GRACETIME": ("kill_gracetime", "HELIX_INIT_KILL_GRACETIME", 3000),
}  # fmt: skip
# Used by the s6 stage (stage.py): cont-finish.d per script, services.d folders' stop grace.
PLAN_MILLIS = {"S6_KILL_FINISH_MAXTIME": 5000, "S6_SERVICES_GRACETIME": 3000}
# Read, but nothing to do under helix-init (see docs/s6-overlay.md for why).
NO_EFFECT = frozenset({
    "S6_READ_ONLY_ROOT", "S6_SERVICES_READYTIME", "S6_CMD_WAIT_FOR_SERVICES",
    "S6_CMD_USE_TERMINAL", "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES",
})  # fmt: skip
# Not supported: a warning at boot when set to anything but their default.
REFUSED = {
    "S6_LOGGING": ("0", "helix-init always logs to stdout and per-service files"),
    "S6_LOGGING_SCRIPT": ("", "no catch-all logger: see HELIX_INIT_SERVICE_LOG_MAXBYTES"),
    "S6_CATCHALL_USER": ("", "no catch-all logger"),
    "S6_CMD_RECEIVE_SIGNALS": ("0", "TERM and INT always stop the whole container gracefully"),
    "S6_FIX_ATTRS_HIDDEN": ("0", "fix-attrs.d is not run"),
    "S6_WAIT_FOR_CLOSING_FD": ("0", "the init does not wait on a file descriptor"),
}


@dataclass(frozen=True)
class S6Config:
    rc_dir: Path = Path("/etc/s6-overlay/s6-rc.d")
    bundles_dir: Path = Path("/etc/s6-overlay/user-bundles.d")
    env_dir: Path = Path("/run/s6/container_environment")
    results_dir: Path = Path("/run/s6-linux-init-container-results")
    basedir: Path = Path("/run/s6/basedir")
    pipes_dir: Path = Path("/run/helix-init/s6-pipes")  # logger pipelines' FIFOs
    keep_env: bool = False
    s6_variables: bool = False  # some S6_* variable is set

    @property
    def active(self) -> bool:
        return self.s6_variables or is_dir(self.rc_dir)

    @property
    def exitcode_file(self) -> Path:
        return self.results_dir / "exitcode"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S6Config:
        d = cls()
        profile = env.get("S6_RUNTIME_PROFILE", "")
        etc = (
            Path(f"/etc/cont-profile.d/{profile}/s6-overlay")
            if profile
            else Path("/etc/s6-overlay")
        )
        rc_dir = _path(env, "HELIX_INIT_S6_RC_DIR") or etc / "s6-rc.d"
        bundles = _path(env, "S6_RUNTIME_BUNDLEDIR") or (
            rc_dir.parent / "user-bundles.d"
            if "HELIX_INIT_S6_RC_DIR" in env
            else etc / "user-bundles.d"
        )
        return cls(
            rc_dir=rc_dir,
            bundles_dir=bundles,
            env_dir=_path(env, "HELIX_INIT_S6_ENV_DIR") or d.env_dir,
            results_dir=_path(env, "HELIX_INIT_S6_RESULTS_DIR") or d.results_dir,
            basedir=_path(env, "HELIX_INIT_S6_BASEDIR") or d.basedir,
            pipes_dir=(_path(env, "HELIX_INIT_RUN_DIR") or Path("/run/helix-init")) / "s6-pipes",
            keep_env=_number(env.get("S6_KEEP_ENV", "")) != 0,
            s6_variables=any(k.startswith("S6_") for k in env),
        )


def setting_overrides(env: Mapping[str, str]) -> tuple[dict[str, float | int], list[Problem]]:
    """Settings fields from S6_* variables, with s6-overlay's defaults, for an s6-overlay image.

    A HELIX_INIT_* variable set for the same setting wins; a value that is not
    a number is one problem naming the variable.
    """
    if not S6Config.from_env(env).active:
        return {}, []
    found: dict[str, float | int] = {}
    problems: list[Problem] = []
    for name, (field, ours, default) in MILLIS.items():
        if env.get(ours):
            continue
        ms = millis(env, name, default, problems)
        found[field] = ms / 1000
    if not env.get("HELIX_INIT_STEP_TIMEOUT"):
        found["step_timeout"] = 0.0  # s6-overlay gives cont-init.d scripts no timeout
    if not env.get("HELIX_INIT_BEHAVIOUR_IF_STEP_FAILS") and not env.get(
        "S6_BEHAVIOUR_IF_STAGE2_FAILS"
    ):
        found["behaviour_if_step_fails"] = 0  # s6-overlay's default: carry on silently
    raw = env.get("S6_VERBOSITY", "").strip()
    if raw and not env.get("HELIX_INIT_VERBOSITY"):
        if raw.isdigit():
            found["verbosity"] = 2 if int(raw) >= 3 else 1
        else:
            problems.append(Problem("S6_VERBOSITY", f"must be a number 0..5, got {raw!r}"))
    return found, problems


def millis(env: Mapping[str, str], name: str, default: int, problems: list[Problem]) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        problems.append(Problem(name, f"must be milliseconds (a whole number), got {raw!r}"))
        return default
    return int(raw)


def refused(env: Mapping[str, str]) -> list[str]:
    """One warning line per S6_* variable set that helix-init does not honour."""
    lines = []
    for name, (default, why) in REFUSED.items():
        raw = env.get(name, "").strip()
        if raw and raw != default:
            lines.append(f"{name}={raw} is not supported by helix-init ({why}); ignored")
    return lines


def is_dir(path: Path) -> bool:
    """A folder that is there; one this user may not look into counts as absent (a
    non-root `helix-init status` reads the settings too, and must say 77, not crash)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "")
    return Path(raw) if raw.startswith("/") else None


def _number(raw: str) -> int:
    """s6-overlay's `0$VAR` tests: empty is 0; a non-number counts as set."""
    try:
        return int("0" + raw.strip())
    except ValueError:
        return 1
