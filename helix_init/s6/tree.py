"""Read an s6-overlay v3 tree (/etc/s6-overlay/s6-rc.d) into definitions, or report problems.

No side effects: files in, frozen definitions out, like s6-rc-compile's
offline phase. A definition folder holds `type` (oneshot, longrun, bundle),
`dependencies.d/` (and the older `dependencies` file), and by type:
oneshot `up` and `down` (one command line each, see upline.py), `timeout-up`,
`timeout-down`; longrun `run`, `finish`, `notification-fd`, `timeout-up`,
`timeout-down`, `timeout-kill`, `down-signal`, `producer-for`,
`consumer-for`, `pipeline-name`; bundle `contents.d/` (or `contents`).

The bundles `user` and `user2` say what starts: from `user-bundles.d/`
(S6_RUNTIME_BUNDLEDIR) or, as linuxserver's images still do, from
`s6-rc.d/user` without a `type` file. Names s6-overlay itself defines are
known here as stages of helix-init: `base`, `fix-attrs` and
`legacy-cont-init` (cont-init.d, which runs first) and `legacy-services`
(services.d). Every problem names the folder and is reported at once.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from helix_init.problems import Problem
from helix_init.s6 import upline
from helix_init.settings.s6 import is_dir

Kind = Literal["oneshot", "longrun", "bundle"]
KINDS: tuple[Kind, ...] = ("oneshot", "longrun", "bundle")
USER_BUNDLES = ("user", "user2")
EARLY_BUILTINS = frozenset({"base", "fix-attrs", "legacy-cont-init"})  # done by cont-init.d
SERVICES_BUILTIN = "legacy-services"  # services.d: helix-init's services stage
BUILTINS = EARLY_BUILTINS | {SERVICES_BUILTIN}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@+-]*$")


@dataclass(frozen=True)
class Definition:
    name: str
    folder: Path
    kind: Kind
    dependencies: tuple[str, ...] = ()
    contents: tuple[str, ...] = ()  # bundle
    up: tuple[str, ...] = ()  # oneshot argv; () = nothing to do
    down: tuple[str, ...] | None = None  # oneshot, None = no down file
    run: Path | None = None  # longrun
    finish: Path | None = None
    notification_fd: int | None = None
    timeout_up: float = 0.0  # seconds, 0 = none
    timeout_down: float = 0.0
    timeout_kill: float = 0.0
    timeout_finish: float = 5.0  # s6-supervise's default
    down_signal: str = "TERM"
    producer_for: str | None = None
    consumer_for: tuple[str, ...] = ()
    pipeline_name: str | None = None


@dataclass(frozen=True)
class Tree:
    """Every definition, and the atomic services `user` + `user2` start, in dependency order."""

    folder: Path
    definitions: dict[str, Definition] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # oneshots and longruns to start, dependencies first

    def get(self, name: str) -> Definition:
        return self.definitions[name]

    def atomic_deps(self, name: str) -> tuple[str, ...]:
        """Direct dependencies with bundles expanded into their atoms (builtins kept)."""
        return tuple(dict.fromkeys(a for d in self.get(name).dependencies for a in self.atoms(d)))

    def atoms(self, name: str, seen: frozenset[str] = frozenset()) -> tuple[str, ...]:
        if name in BUILTINS or name not in self.definitions:
            return (name,)
        d = self.definitions[name]
        if d.kind != "bundle":
            return (name,)
        if name in seen:
            return ()
        return tuple(a for c in d.contents for a in self.atoms(c, seen | {name}))


def load_tree(folder: Path, bundles: Path | None) -> tuple[Tree | None, list[Problem]]:
    """The tree under `folder` (None when the folder does not exist) and every problem in it."""
    if not is_dir(folder):
        return None, []
    problems: list[Problem] = []
    defs: dict[str, Definition] = {}
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        return None, [Problem(str(folder), f"cannot list the s6-rc.d folder: {exc.strerror}")]
    broken: set[str] = set()  # still names: no "unknown service" for what depends on them
    for entry in entries:
        if entry.name.startswith("."):
            continue
        d = _read_definition(Path(entry.path), problems, bundle_default=entry.name in USER_BUNDLES)
        if d is not None:
            defs[d.name] = d
        else:
            broken.add(entry.name)
    for name in USER_BUNDLES:
        extra = bundles / name if bundles is not None else None
        if extra is not None and extra.is_dir():
            d = _read_definition(extra, problems, bundle_default=True)
            if d is not None:
                old = defs.get(name)
                merged = d.contents + (old.contents if old else ())
                defs[name] = Definition(
                    name, extra, "bundle", contents=tuple(dict.fromkeys(merged))
                )
        defs.setdefault(name, Definition(name, folder / name, "bundle"))
    _add_pipelines(defs, problems)
    tree = Tree(folder, defs)
    _check_references(tree, broken, problems)
    if problems:
        return tree, problems
    order = _start_order(tree, problems)
    return Tree(folder, defs, order), problems


def _read_definition(
    path: Path, problems: list[Problem], bundle_default: bool
) -> Definition | None:
    where = str(path)
    if not path.is_dir():
        problems.append(Problem(where, "not a service definition folder"))
        return None
    if not _NAME.match(path.name) or path.name in BUILTINS:
        why = "is defined by s6-overlay itself" if path.name in BUILTINS else "is not a valid name"
        problems.append(Problem(where, f"service name {path.name!r} {why}"))
        return None
    raw = _text(path / "type")
    kind_text = (raw or "").strip() or ("bundle" if bundle_default else "")
    if not kind_text:
        problems.append(Problem(where, "no type file (oneshot, longrun or bundle)"))
        return None
    if kind_text not in KINDS:
        problems.append(
            Problem(where, f"unknown type {kind_text!r} (expected oneshot, longrun or bundle)")
        )
        return None
    kind: Kind = kind_text
    deps = _names(path, "dependencies")
    if kind == "bundle":
        return Definition(path.name, path, kind, deps, contents=_names(path, "contents"))
    timeout_up = _millis(path, "timeout-up", problems)
    timeout_down = _millis(path, "timeout-down", problems)
    if kind == "oneshot":
        up = _line(path, "up", problems, required=True)
        down = _line(path, "down", problems, required=False)
        return Definition(
            path.name, path, kind, deps, up=up or (), down=down,
            timeout_up=timeout_up, timeout_down=timeout_down,
        )  # fmt: skip
    run, finish = path / "run", path / "finish"
    if not run.is_file():
        problems.append(Problem(where, "longrun without a run file"))
        return None
    if not os.access(run, os.X_OK):
        problems.append(Problem(str(run), "not executable (chmod +x it)"))
    return Definition(
        path.name, path, kind, deps,
        run=run,
        finish=finish if finish.is_file() else None,
        notification_fd=_fd(path, problems),
        timeout_up=timeout_up,
        timeout_down=timeout_down,
        timeout_kill=_millis(path, "timeout-kill", problems),
        timeout_finish=_millis(path, "timeout-finish", problems, default=5.0),
        down_signal=_signal(path, problems),
        producer_for=(_text(path / "producer-for") or "").strip() or None,
        consumer_for=tuple((_text(path / "consumer-for") or "").split()),
        pipeline_name=(_text(path / "pipeline-name") or "").strip() or None,
    )  # fmt: skip


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _names(path: Path, what: str) -> tuple[str, ...]:
    """`what.d/` entries (empty files named after services) plus the older `what` file."""
    names: list[str] = []
    folder = path / f"{what}.d"
    if folder.is_dir():
        names += sorted(n for n in os.listdir(folder) if not n.startswith("."))
    names += (_text(path / what) or "").split()
    return tuple(dict.fromkeys(names))


def _line(path: Path, name: str, problems: list[Problem], required: bool) -> tuple[str, ...] | None:
    text = _text(path / name)
    if text is None:
        if required:
            problems.append(Problem(str(path), f"oneshot without an {name} file"))
        return None
    try:
        return upline.parse(text)
    except upline.UpLineError as exc:
        problems.append(Problem(str(path / name), str(exc)))
        return None


def _millis(path: Path, name: str, problems: list[Problem], default: float = 0.0) -> float:
    text = _text(path / name)
    if text is None:
        return default
    if not text.strip().isdigit():
        problems.append(Problem(str(path / name), f"must be milliseconds, got {text.strip()!r}"))
        return 0.0
    return int(text.strip()) / 1000


def _fd(path: Path, problems: list[Problem]) -> int | None:
    text = _text(path / "notification-fd")
    if text is None:
        return None
    value = text.strip()
    if not value.isdigit() or int(value) < 3:
        problems.append(
            Problem(str(path / "notification-fd"), f"must be a file descriptor >= 3, got {value!r}")
        )
        return None
    return int(value)


def _signal(path: Path, problems: list[Problem]) -> str:
    text = _text(path / "down-signal")
    if text is None:
        return "TERM"
    raw = text.strip().upper()
    try:
        sig = (
            signal.Signals(int(raw))
            if raw.isdigit()
            else signal.Signals["SIG" + raw.removeprefix("SIG")]
        )
    except (KeyError, ValueError):
        problems.append(Problem(str(path / "down-signal"), f"unknown signal {text.strip()!r}"))
        return "TERM"
    return sig.name.removeprefix("SIG")


def _add_pipelines(defs: dict[str, Definition], problems: list[Problem]) -> None:
    """s6-rc's pipelines: a producer starts after its consumer (so no line is lost), and a
    `pipeline-name` in the last consumer is a bundle of the whole pipeline."""
    for name, d in list(defs.items()):
        if d.kind == "longrun" and d.producer_for and d.producer_for in defs:
            deps = tuple(dict.fromkeys((*d.dependencies, d.producer_for)))
            defs[name] = replace(d, dependencies=deps)
    for d in list(defs.values()):
        if d.pipeline_name is None:
            continue
        if d.pipeline_name in defs or d.pipeline_name in BUILTINS:
            problems.append(
                Problem(str(d.folder), f"pipeline-name {d.pipeline_name!r} is already a service")
            )
            continue
        members: list[str] = []
        todo = [d.name]
        while todo:
            current = todo.pop()
            if current in members or current not in defs:
                continue
            members.append(current)
            todo.extend(defs[current].consumer_for)
        defs[d.pipeline_name] = Definition(
            d.pipeline_name, d.folder, "bundle", contents=tuple(reversed(members))
        )


def _check_references(tree: Tree, broken: set[str], problems: list[Problem]) -> None:
    known = set(tree.definitions) | BUILTINS | broken
    for d in tree.definitions.values():
        for dep in d.dependencies:
            if dep not in known:
                problems.append(
                    Problem(str(d.folder), f"dependencies.d names unknown service {dep!r}")
                )
            elif dep == d.name:
                problems.append(Problem(str(d.folder), "depends on itself"))
        for member in d.contents:
            if member not in known:
                problems.append(Problem(str(d.folder), f"bundle names missing service {member!r}"))
        if d.producer_for is not None:
            c = tree.definitions.get(d.producer_for)
            if c is None or c.kind != "longrun" or d.name not in c.consumer_for:
                problems.append(
                    Problem(
                        str(d.folder),
                        f"producer-for names {d.producer_for!r}, which is not a longrun whose"
                        f" consumer-for names {d.name!r}",
                    )
                )
        for producer in d.consumer_for:
            p = tree.definitions.get(producer)
            if p is None or p.kind != "longrun" or p.producer_for != d.name:
                problems.append(
                    Problem(
                        str(d.folder),
                        f"consumer-for names {producer!r}, which is not a longrun whose"
                        f" producer-for names {d.name!r}",
                    )
                )


def _start_order(tree: Tree, problems: list[Problem]) -> tuple[str, ...]:
    """The atoms of user and user2 and all they depend on, dependencies first (ties by name)."""
    wanted: set[str] = set()
    stack = [a for b in USER_BUNDLES for a in tree.atoms(b)]
    while stack:
        name = stack.pop()
        if name in wanted or name in BUILTINS:
            continue
        wanted.add(name)
        stack.extend(tree.atomic_deps(name))
    order: list[str] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(name: str, path: list[str]) -> bool:
        if state.get(name) == 2 or name in BUILTINS:
            return True
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            problems.append(
                Problem(str(tree.get(name).folder), f"dependency cycle {' -> '.join(cycle)}")
            )
            return False
        state[name] = 1
        for dep in sorted(tree.atomic_deps(name)):
            if not visit(dep, [*path, name]):
                return False
        state[name] = 2
        order.append(name)
        return True

    for name in sorted(wanted):
        if not visit(name, []):
            break
    return tuple(order)
