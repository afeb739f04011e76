"""Where s6-overlay images enter the boot: the plan's s6 part, and its few runtime duties.

`plan` runs with the rest of make_plan (no side effects). `Runtime` runs in
PID 1 as root: at boot it writes /run/s6/container_environment, the halt
command (`/run/s6/basedir/bin/halt`, which stops the container gracefully)
and an empty results folder; after every step it syncs container_environment;
at the end it reads the exit code a finish script left in
/run/s6-linux-init-container-results/exitcode, as s6-overlay does.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from helix_init.contenv import Exports
from helix_init.dropins import Step
from helix_init.logsink import Log
from helix_init.problems import ConfigError, Problem
from helix_init.s6 import convert, envdir
from helix_init.s6.tree import Tree, load_tree
from helix_init.services import graph
from helix_init.services.spec import ServicePlan, ServiceSpec
from helix_init.settings import s6 as s6config
from helix_init.settings.s6 import S6Config


@dataclass(frozen=True)
class S6Plan:
    config: S6Config = field(default_factory=S6Config)
    tree: Tree | None = None
    stages: convert.S6Stages = field(default_factory=convert.S6Stages)
    hook: tuple[Step, ...] = ()  # S6_STAGE2_HOOK, before cont-init.d
    finish_maxtime: float | None = None  # S6_KILL_FINISH_MAXTIME, per cont-finish.d script
    services_gracetime: float | None = None  # S6_SERVICES_GRACETIME, for services.d folders
    cmd_arg0: tuple[str, ...] = ()  # S6_CMD_ARG0, put before a CMD
    sync_disks: bool = False  # S6_SYNC_DISKS
    warnings: tuple[str, ...] = ()  # S6_* variables set that are not honoured

    def cont_init(self, steps: Sequence[Step]) -> tuple[Step, ...]:
        return (*self.hook, *steps, *self.stages.early)

    def cont_finish(self, steps: Sequence[Step]) -> tuple[Step, ...]:
        if self.finish_maxtime is not None:
            steps = [s if s.timeout is not None else replace(s, timeout=self.finish_maxtime)
                     for s in steps]  # fmt: skip
        return (*self.stages.down, *steps)

    def cmd(self, cmd: Sequence[str]) -> tuple[str, ...]:
        return (*self.cmd_arg0, *cmd) if cmd else ()

    def describe(self) -> list[str]:
        """`helix-init plan`: the tree in the order it will run."""
        if self.tree is None:
            return []
        st = self.stages
        lines = [f"s6-rc tree ({self.tree.folder}), bundles user and user2, as it will run:"]
        lines.append(f"  oneshots after cont-init.d: {_names(st.early)}")
        if st.placeholders:
            lines.append(f"  oneshots with nothing to run: {', '.join(st.placeholders)}")
        for spec in st.longruns:
            needs = f" after {', '.join(spec.requires)}" if spec.requires else ""
            ready = ", ready by notification-fd" if spec.ready else ", ready once started"
            lines.append(f"  longrun {spec.name}{needs}{ready}, stop {spec.stop_signal}")
        lines.append(f"  oneshots once the services are ready: {_names(st.late)}")
        lines.append(f"  down lines at shutdown: {_names(st.down)}")
        return lines

    @property
    def active(self) -> bool:
        return self.config.active or self.tree is not None


def plan(environ: Mapping[str, str], services: ServicePlan) -> tuple[S6Plan, list[Problem]]:
    """The s6-rc.d tree turned into stages; `services`: the services.d plan (legacy-services)."""
    config = S6Config.from_env(environ)
    tree, problems = load_tree(config.rc_dir, config.bundles_dir)
    stages = convert.S6Stages()
    if tree is not None and not problems:
        stages, problems = convert.stages(tree, environ, services.enabled, config.pipes_dir)
    if not (config.active or tree is not None):
        return S6Plan(config, tree, stages), problems
    finish_ms = s6config.millis(environ, "S6_KILL_FINISH_MAXTIME", 5000, problems)
    grace_ms = s6config.millis(environ, "S6_SERVICES_GRACETIME", 3000, problems)
    hook = environ.get("S6_STAGE2_HOOK", "").strip()
    hook_steps = (Step("S6_STAGE2_HOOK", Path("/bin/sh"), "exec", argv=("/bin/sh", "-c", hook)),)
    try:
        arg0 = tuple(shlex.split(environ.get("S6_CMD_ARG0", "")))
    except ValueError as exc:
        problems.append(Problem("S6_CMD_ARG0", f"cannot be split into words ({exc})"))
        arg0 = ()
    s6 = S6Plan(
        config, tree, stages,
        hook=hook_steps if hook else (),
        finish_maxtime=finish_ms / 1000,
        services_gracetime=grace_ms / 1000,
        cmd_arg0=arg0,
        sync_disks=s6config.millis(environ, "S6_SYNC_DISKS", 0, problems) != 0,
        warnings=tuple(s6config.refused(environ)),
    )  # fmt: skip
    return s6, problems


def with_longruns(services: ServicePlan, s6: S6Plan) -> ServicePlan:
    """services.d plus the tree's longruns, levels recomputed; a name in both is a problem."""
    if s6.services_gracetime is not None:  # services.d folders: S6_SERVICES_GRACETIME
        services = replace(services, services=tuple(
            replace(s, stop_timeout=s6.services_gracetime) if _is_folder(s) else s
            for s in services.services
        ))  # fmt: skip
    if not s6.stages.longruns:
        return services
    taken = {spec.name: spec.source for spec in services.services}
    clashes = [
        Problem(spec.source, f"service {spec.name!r} is also defined by {taken[spec.name]}")
        for spec in s6.stages.longruns
        if spec.name in taken
    ]
    if clashes:
        raise ConfigError(clashes)
    specs = (*services.services, *s6.stages.longruns)
    enabled = {s.name for s in specs if s.enabled}
    deps = {s.name: [r for r in s.requires if r in enabled] for s in specs if s.enabled}
    return replace(services, services=specs, start_levels=graph.start_levels(deps))


def _names(steps: Sequence[Step]) -> str:
    return ", ".join(s.name for s in steps) or "none"


def _is_folder(spec: ServiceSpec) -> bool:
    return spec.working_dir == spec.source and not spec.source.endswith(".toml")


class Runtime:
    def __init__(self, s6: S6Plan, log: Log) -> None:
        self.s6 = s6
        self.log = log
        self.envdir: envdir.ContainerEnvironment | None = None

    def boot(self, exports: Exports) -> str | None:
        """Write what s6 scripts expect under /run; why not, if it cannot be written."""
        if not self.s6.active:
            return None
        for line in self.s6.warnings:
            self.log.warn(line)
        c = self.s6.config
        try:
            c.results_dir.mkdir(parents=True, exist_ok=True)
            c.exitcode_file.unlink(missing_ok=True)
            halt = c.basedir / "bin" / "halt"
            halt.parent.mkdir(parents=True, exist_ok=True)
            pid = os.getpid()
            halt.write_text(f"#!/bin/sh\n# helix-init: stop the container\nexec kill -TERM {pid}\n")
            halt.chmod(0o755)
            if not c.keep_env:
                self.envdir = envdir.ContainerEnvironment(c.env_dir)
                self.envdir.write_all(exports.current())
        except OSError as exc:
            return f"s6-overlay runtime folders: cannot write {exc.filename}: {exc.strerror}"
        return None

    def after_step(self, exports: Exports, step: str) -> None:
        if self.envdir is None:
            return
        try:
            changed = self.envdir.sync(exports, step)
        except OSError as exc:
            self.log.warn(f"cannot update {self.envdir.folder}: {exc.strerror}")
            return
        if changed:
            self.log.info(f"step {step} set in {self.envdir.folder.name}: {', '.join(changed)}")

    def final_code(self, code: int) -> int:
        """s6-overlay: the container exits with what a finish script wrote to the exitcode file."""
        if not self.s6.active:
            return code
        if self.s6.sync_disks:
            os.sync()
        path = self.s6.config.exitcode_file
        try:
            text = path.read_text().strip()
        except OSError:
            return code
        if not text.isdigit() or int(text) > 255:
            self.log.warn(f"{path}: not an exit code ({text[:20]!r}); exiting with {code}")
            return code
        if int(text) != code:
            self.log.info(f"exit code {text} from {path} (was {code})")
        return int(text)
