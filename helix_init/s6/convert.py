"""Turn an s6-rc.d tree into helix-init's stages: oneshots as steps, longruns as services.

Pure but for looking commands up (PATH, shebangs), like s6-rc-compile. s6-rc
brings `user` and `user2` up in dependency order; helix-init keeps that
order in its stages:

- oneshots that need no longrun run at the end of cont-init (after
  cont-init.d: s6-overlay's `base` holds it), one at a time in dependency
  order, as steps named after their folder;
- longruns are services, `requires` following their dependencies on other
  longruns (a dependency on `legacy-services` means every services.d entry);
- oneshots that need a longrun run once the services are ready, before the CMD;
- `down` lines run at shutdown, in reverse order, before cont-finish.d.

A longrun that needs a oneshot which itself needs a longrun would need a
oneshot between two service levels: refused with one line naming it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from helix_init.dropins import Step
from helix_init.problems import Problem
from helix_init.s6.tree import BUILTINS, SERVICES_BUILTIN, Definition, Tree
from helix_init.services import s6dir
from helix_init.services.probes import Probe
from helix_init.services.spec import ServiceSpec

COMPAT = Path(__file__).resolve().parent / "compat"


@dataclass(frozen=True)
class S6Stages:
    early: tuple[Step, ...] = ()  # after cont-init.d
    late: tuple[Step, ...] = ()  # once the services are ready, before the CMD
    down: tuple[Step, ...] = ()  # at shutdown, before cont-finish.d
    longruns: tuple[ServiceSpec, ...] = ()
    placeholders: tuple[str, ...] = ()  # oneshots whose up holds only comments


def stages(
    tree: Tree,
    env: Mapping[str, str],
    legacy: tuple[str, ...],
    pipes: Path = Path("/run/helix-init/s6-pipes"),
) -> tuple[S6Stages, list[Problem]]:
    """`legacy`: the services.d services (what `legacy-services` stands for)."""
    problems: list[Problem] = []
    path = env.get("PATH", os.defpath)
    late_set = _needing_services(tree)
    early: list[Step] = []
    late: list[Step] = []
    down: list[Step] = []
    longruns: list[ServiceSpec] = []
    placeholders: list[str] = []
    for name in tree.order:
        d = tree.get(name)
        if d.kind == "oneshot":
            if not d.up:
                placeholders.append(name)
            else:
                argv = _resolve(d.up, d.folder / "up", path, problems)
                (late if name in late_set else early).append(_step(d, argv, "up", d.timeout_up))
            if d.down:
                argv = _resolve(d.down, d.folder / "down", path, problems)
                down.append(_step(d, argv, "down", d.timeout_down))
        elif d.kind == "longrun":
            longruns.append(_longrun(tree, d, legacy, late_set, pipes, problems))
    result = S6Stages(tuple(early), tuple(late), tuple(reversed(down)), tuple(longruns),
                      tuple(placeholders))  # fmt: skip
    return result, problems


def _needing_services(tree: Tree) -> set[str]:
    """Oneshots that depend, directly or not, on a longrun or on services.d."""
    memo: dict[str, bool] = {}

    def needs(name: str) -> bool:
        if name == SERVICES_BUILTIN:
            return True
        if name in BUILTINS or name not in tree.definitions:
            return False
        if tree.get(name).kind == "longrun":
            return True
        if name not in memo:
            memo[name] = False  # the tree has no cycles; this only guards
            memo[name] = any(needs(dep) for dep in tree.atomic_deps(name))
        return memo[name]

    return {n for n in tree.order if tree.get(n).kind == "oneshot" and needs(n)}


def _step(d: Definition, argv: tuple[str, ...], which: str, timeout: float) -> Step:
    return Step(
        name=d.name if which == "up" else f"{d.name} (down)",
        path=d.folder / which,
        kind="exec",
        timeout=timeout,  # 0 (no timeout-up file): none, as in s6-rc
        argv=argv,
    )


def _longrun(
    tree: Tree,
    d: Definition,
    legacy: tuple[str, ...],
    late: set[str],
    pipes: Path,
    problems: list[Problem],
) -> ServiceSpec:
    requires: list[str] = []
    for dep in tree.atomic_deps(d.name):
        if dep == SERVICES_BUILTIN:
            requires += legacy
        elif dep in late:
            problems.append(
                Problem(
                    str(d.folder),
                    f"depends on oneshot {dep!r}, which itself needs a longrun: helix-init runs"
                    " oneshots before its services or after them, never between two of them",
                )
            )
        elif dep in tree.definitions and tree.get(dep).kind == "longrun":
            requires.append(dep)
    assert d.run is not None
    # A pipeline: each consumer reads a FIFO named after it, which its producers
    # write to; the FIFO outlives restarts of either side, as s6-rc's fdholder does.
    stdin = pipes / d.name if d.consumer_for else None
    stdout = pipes / d.producer_for if d.producer_for else None
    kill_after = d.timeout_kill or d.timeout_down or 10.0
    command = s6dir.command(
        d.folder, d.run, d.finish, d.notification_fd, d.timeout_finish, stdin, stdout,
        kill_after, d.down_signal,
    )  # fmt: skip
    ready = Probe("notify", None, timeout=d.timeout_up) if d.notification_fd is not None else None
    problems.extend(_shebang_problems(d.run))
    if d.finish is not None:
        problems.extend(_shebang_problems(d.finish))
    stop_timeout = s6dir.stop_timeout(kill_after, d.finish, d.timeout_finish)
    return ServiceSpec(
        name=d.name,
        command=command,
        source=str(d.folder),
        description=f"s6-rc longrun {d.folder}",
        requires=tuple(dict.fromkeys(requires)),
        ready=ready,
        stop_signal=d.down_signal,
        stop_timeout=stop_timeout,
        working_dir=str(d.folder),
    )


def _shebang_problems(path: Path) -> list[Problem]:
    why = s6dir.interpreter_problem(path)
    return [Problem(str(path), why)] if why else []


def _resolve(
    argv: tuple[str, ...], where: Path, path: str, problems: list[Problem]
) -> tuple[str, ...]:
    """The argv to run for an up/down line; `with-contenv` works even when not installed."""
    prefix: tuple[str, ...] = ()
    words = argv
    if words[0] == "with-contenv" and shutil.which("with-contenv", path=path) is None:
        prefix = (os.path.realpath(sys.executable), "-IS", str(COMPAT / "contenv.py"))
        words = words[1:]
        if not words:
            problems.append(Problem(str(where), "with-contenv needs a program to run"))
            return argv
    elif words[0] == "with-contenv" and len(words) > 1:
        prefix, words = (words[0],), words[1:]
    program = words[0]
    found = program if "/" in program else shutil.which(program, path=path)
    if found is None or not os.path.isfile(found):
        problems.append(Problem(str(where), f"cannot run {program!r}: no such program"))
        return argv
    if not os.access(found, os.X_OK):
        problems.append(Problem(str(where), f"cannot run {found}: not executable (chmod +x it)"))
        return argv
    problems.extend(_shebang_problems(Path(found)))
    return (*prefix, *words)
