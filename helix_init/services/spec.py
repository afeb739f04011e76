"""Service specs: read services.d drop-ins into frozen ServiceSpecs, checking everything first.

Plan, then act: this module starts nothing and reads no secret, and its only
I/O is reading the drop-ins (`read_services`: files -> specs). What depends on
the container (enabled_if, the accounts `user` and `group` name, whether the
environment fits one exec) is resolve.py's, which turns the specs plus the
environment and the accounts into the ServicePlan. Every problem in every
file is collected and raised at once as one ConfigError, so `helix-init
check` shows the operator the whole list.

A folder holds one service per entry:
- `NAME.toml`: the TOML schema below (ServiceSpec's fields, same names);
- `NAME/` with an executable `run`: an s6-overlay v2 service folder, kept so
  existing images migrate unchanged (optional executable `finish`; a `down`
  file leaves it disabled; other s6 files such as `log/` are ignored);
- dotfiles and README* are skipped; anything else is a problem.

A `requires` on a service that exists but is disabled (enabled_if, `down`)
counts as satisfied: the edge is dropped from the start graph, so turning a
helper off never blocks the services that use it when it is there.
"""

from __future__ import annotations

import re
import signal
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, TypeVar

from helix_init.contenv import VAR_RE
from helix_init.problems import ConfigError, Problem
from helix_init.services import graph
from helix_init.services.conditions import Condition, parse_condition
from helix_init.services.fields import NUL, Fields, suggestion
from helix_init.services.probes import (
    Health,
    Probe,
    WaitFor,
    parse_health,
    parse_ready,
    parse_wait_for,
)

Restart = Literal["always", "on-failure", "never"]
T = TypeVar("T")

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # fullmatch: `$` let "a\n" through
MIN_BACKOFF = 0.001  # seconds; restarts faster than a millisecond apart are a busy loop
MAX_RESTARTS = 1_000_000
RESTARTS: dict[str, Restart] = {"always": "always", "on-failure": "on-failure", "never": "never"}
TOP_KEYS = (
    "command", "description", "requires", "wait_for", "ready", "health", "restart",
    "backoff", "max_restarts", "essential", "stop_signal", "stop_timeout", "user", "group",
    "working_dir", "environment", "secrets", "required_env", "inherit_exports", "enabled_if",
    "stop_file", "finish", "before_cmd",
)  # fmt: skip


@dataclass(frozen=True)
class Backoff:
    """Restart delays: initial, doubling up to max, ± jitter; reset after a run this long."""

    initial: float = 0.5
    max: float = 30.0
    jitter: float = 0.2
    reset_after: float = 60.0


@dataclass(frozen=True)
class Secret:
    """Variable `name` of the service, read at start from init's `env` or from `file`."""

    name: str
    env: str | None
    file: str | None
    required: bool = True
    # `${NAME}` may appear in the command: svcexec puts the value there at exec
    # (never in supervisord.conf, status or logs) and only when /proc hides
    # root's command lines (hidepid; procmount.py). For binaries that take a
    # token only as a flag (Helix's revdial-client `-token`).
    argv: bool = False


@dataclass(frozen=True)
class ServiceSpec:
    """One service, as its drop-in says. Read: `user` and `group` as written (`${UNAME}`),
    `enabled` false only for an s6 `down` file. Resolved (resolve.py): both expanded and
    looked up, `enabled` is enabled_if evaluated."""

    name: str
    command: tuple[str, ...]  # argv, no shell; ${VAR} is left for start time
    source: str  # the file or folder it came from
    description: str = ""
    requires: tuple[str, ...] = ()
    wait_for: tuple[WaitFor, ...] = ()
    ready: Probe | None = None
    health: Health | None = None
    restart: Restart = "always"
    backoff: Backoff = Backoff()
    max_restarts: int = 0  # 0 = unlimited; else restarts allowed since the last backoff reset
    essential: bool = False  # giving up stops the container
    stop_signal: str = "TERM"  # name without SIG
    stop_timeout: float = 10.0
    user: str | None = None
    group: str | None = None
    working_dir: str | None = None
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    secrets: tuple[Secret, ...] = ()
    required_env: tuple[str, ...] = ()  # checked at start time
    inherit_exports: bool | tuple[str, ...] = True  # cont-init exports: all, none, or these
    enabled_if: Condition | None = None
    enabled: bool = True
    disabled_reason: str = ""
    stop_file: str | None = None  # COMPAT: kept stopped while it exists (/tmp/.dockerd-stop)
    finish: tuple[str, ...] | None = None  # argv run after each exit
    # The CMD waits for this service's readiness; false for a service that needs
    # the CMD itself (desktop-bridge waits for the session's Wayland socket).
    before_cmd: bool = True


@dataclass(frozen=True)
class Pending:
    """A decision about a service that waits for cont-init: what, on what, and how it looks now."""

    service: str
    decision: str  # "enabled_if", "user retro", "group retro"
    waits_on: str  # what a step may make or export: "path /x", "variable V", "the user step"
    now: str  # before the steps ran: "on", "off: <why>", "not there yet"


@dataclass(frozen=True)
class ServicePlan:
    """Every service and the order to start the enabled ones: level by level, each level at once.

    Made by resolve.py; before cont-init (`check`, `plan`) `pending` lists what
    is decided again after it."""

    services: tuple[ServiceSpec, ...] = ()  # every service found, disabled ones too, by name
    start_levels: tuple[tuple[str, ...], ...] = ()  # enabled services only
    pending: tuple[Pending, ...] = ()

    @property
    def enabled(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services if s.enabled)

    @property
    def stop_levels(self) -> tuple[tuple[str, ...], ...]:
        return tuple(reversed(self.start_levels))

    def get(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(name)


def read_services(services_dir: Path) -> tuple[ServiceSpec, ...]:
    """Every drop-in in `services_dir` (missing folder = no services), by name; reads nothing
    else. Raises ConfigError listing every problem in every file."""
    specs, problems = read_specs(services_dir)
    if problems:
        raise ConfigError(problems)
    return specs


def read_specs(services_dir: Path) -> tuple[tuple[ServiceSpec, ...], list[Problem]]:
    """The specs that could be read, and every problem: a file too broken to read is left out,
    the others keep a default where a value was bad (so resolving them says more)."""
    problems: list[Problem] = []
    found = _read_folder(services_dir, problems)
    specs = [spec for spec in found.values() if spec is not None]
    _check_requires(specs, set(found), problems)
    return tuple(specs), problems


Fingerprint = tuple[tuple[str, int, int, int], ...]


def fingerprint(services_dir: Path) -> Fingerprint:
    """What a read would find, cheaply: each entry's (and an s6 folder's files') name, inode,
    size and mtime. Boot compares it after cont-init: a step that wrote a drop-in (an image
    that copies custom services in) is seen, and only then is the folder read again."""
    found: list[tuple[str, int, int, int]] = []

    def add(path: Path, name: str) -> None:
        try:
            st = path.stat()
        except OSError:
            return
        found.append((name, st.st_ino, st.st_size, st.st_mtime_ns))

    try:
        entries = sorted(services_dir.iterdir())
    except OSError:
        return ()
    for entry in entries:
        add(entry, entry.name)
        if entry.is_dir():
            try:
                children = sorted(entry.iterdir())
            except OSError:
                continue
            for child in children:
                add(child, f"{entry.name}/{child.name}")
    return tuple(found)


def _read_folder(folder: Path, problems: list[Problem]) -> dict[str, ServiceSpec | None]:
    """Every entry by service name; None for one too broken to read (its name still counts)."""
    if not folder.exists():
        return {}
    try:
        entries = sorted(folder.iterdir())
    except OSError as e:
        problems.append(Problem(str(folder), f"cannot list the services folder: {e.strerror}"))
        return {}
    found: dict[str, ServiceSpec | None] = {}
    sources: dict[str, Path] = {}
    targets: dict[Path, Path] = {}  # what each entry really is -> the first entry naming it
    for entry in entries:
        if entry.name.startswith(".") or entry.name.startswith("README"):
            continue
        if not entry.name.isprintable():  # say it on one line, and read nothing from it
            problems.append(
                Problem(
                    repr(str(entry)),
                    f"invalid service name {entry.name.removesuffix('.toml')!r}: use letters,"
                    " digits, '_', '.' and '-', starting with a letter or digit",
                )
            )
            continue
        # A `y.toml` symlink to the s6 folder `y` made two services running one
        # script; one drop-in (file or folder) is one service, whatever its names.
        real = entry.resolve()
        if real in targets:
            problems.append(
                Problem(
                    str(entry),
                    f"the same drop-in as {targets[real]} (a symlink); one entry per service",
                )
            )
            continue
        targets[real] = entry
        if entry.is_dir():
            name, spec = entry.name, _read_s6_folder(entry, problems)
        elif entry.is_file() and entry.suffix == ".toml":
            name, spec = entry.stem, _read_toml(entry, problems)
        else:
            problems.append(
                Problem(str(entry), "not a service: expected NAME.toml or an s6 folder NAME/run")
            )
            continue
        if not NAME_RE.fullmatch(name):
            problems.append(
                Problem(
                    str(entry),
                    f"invalid service name {name!r}: use letters, digits, '_', '.' and '-',"
                    " starting with a letter or digit",
                )
            )
        if name in sources:
            problems.append(
                Problem(str(entry), f"service {name!r} is also defined by {sources[name]}")
            )
            continue
        sources[name] = entry
        found[name] = spec
    return found


def _read_s6_folder(folder: Path, problems: list[Problem]) -> ServiceSpec | None:
    run, finish = folder / "run", folder / "finish"
    if not run.is_file():
        problems.append(Problem(str(folder), "s6 service folder without an executable 'run' file"))
        return None
    for script in (run, finish):
        if script.exists() and not script.stat().st_mode & (
            stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
        ):
            problems.append(Problem(str(script), "not executable (chmod +x it)"))
    down = (folder / "down").exists()
    from helix_init.services import s6dir  # only for s6 folders: PID 1 stays lean

    # As s6-supervise runs it (services/s6dir.py): in its folder, readiness by a
    # newline on its notification-fd, finish with s6's arguments (125: no restart).
    fd, finish_timeout = s6dir.read_fd(folder), s6dir.read_millis(folder, "timeout-finish", 5.0)
    for name, bad in (("notification-fd", fd), ("timeout-finish", finish_timeout)):
        if isinstance(bad, str):
            problems.append(Problem(str(folder / name), bad))
    fd = fd if isinstance(fd, int) else None
    finish_timeout = finish_timeout if isinstance(finish_timeout, float) else 5.0
    for script in (run, finish):
        why = s6dir.interpreter_problem(script)
        if why:
            problems.append(Problem(str(script), why))
    kill_after = 10.0  # the default stop grace: a v2 folder's timeout-kill is not read
    finish_script = finish if finish.exists() else None
    return ServiceSpec(
        name=folder.name,
        command=s6dir.command(
            folder, run, finish_script, fd, finish_timeout, kill_after=kill_after
        ),
        stop_timeout=s6dir.stop_timeout(kill_after, finish_script, finish_timeout),
        source=str(folder),
        ready=Probe("notify", None, timeout=0.0) if fd is not None else None,
        working_dir=str(folder),
        enabled=not down,
        disabled_reason="down file present" if down else "",
    )


def _read_toml(path: Path, problems: list[Problem]) -> ServiceSpec | None:
    where = str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        problems.append(Problem(where, f"cannot read: {e.strerror}"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        problems.append(
            Problem(where, f"not UTF-8 text (byte 0x{data[e.start]:02x} on line {line})")
        )
        return None
    import tomllib  # here, not at the top: an empty services.d costs PID 1 nothing

    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        problems.append(Problem(where, f"TOML syntax error: {e}"))
        return None
    return _parse_service(Fields(table, where, problems), path.stem)


def _parse_service(f: Fields, name: str) -> ServiceSpec:
    """One service table; problems are recorded and the bad values replaced by defaults."""
    f.only(TOP_KEYS)
    d = ServiceSpec(name=name, command=(), source=f.where)
    command = f.strings("command", non_empty=True)
    if command is None and not f.has("command"):
        f.problem("command", "missing: every service needs command = [argv...]")
    requires = f.strings("requires") or ()
    ready = parse_ready(f)
    condition = _optional(f, "enabled_if", parse_condition)
    secrets = _secrets(f)
    _no_secret_in_argv(f, command or (), secrets)
    environment = _environment(f)
    return ServiceSpec(
        name=name,
        command=command or (),
        source=f.where,
        description=f.string("description") or "",
        requires=tuple(dict.fromkeys(requires)),
        wait_for=parse_wait_for(f),
        ready=ready,
        health=parse_health(f, ready),
        restart=_restart(f),
        backoff=_optional(f, "backoff", _backoff) or d.backoff,
        max_restarts=f.integer("max_restarts", d.max_restarts, minimum=0, maximum=MAX_RESTARTS),
        essential=f.boolean("essential", d.essential),
        stop_signal=_stop_signal(f),
        stop_timeout=f.number("stop_timeout", d.stop_timeout),
        user=_account(f, "user"),
        group=_account(f, "group"),
        working_dir=f.absolute_path("working_dir"),
        environment=MappingProxyType(environment),
        secrets=secrets,
        required_env=_variable_names(f, "required_env"),
        inherit_exports=_inherit_exports(f),
        enabled_if=condition,
        stop_file=f.absolute_path("stop_file"),
        finish=f.strings("finish", non_empty=True),
        before_cmd=f.boolean("before_cmd", d.before_cmd),
    )


def _optional(f: Fields, name: str, parse: Callable[[Fields], T]) -> T | None:
    sub = f.subtable(name)
    return parse(sub) if sub is not None else None


def _restart(f: Fields) -> Restart:
    value = f.string("restart")
    if value is None:
        return "always"
    if value not in RESTARTS:
        allowed = ", ".join(repr(r) for r in RESTARTS)
        f.problem("restart", f"must be one of {allowed}, got {value!r}")
        return "always"
    return RESTARTS[value]


def _backoff(b: Fields) -> Backoff:
    b.only(("initial", "max", "jitter", "reset_after"))
    d = Backoff()
    initial = b.number("initial", d.initial, positive=True, minimum=MIN_BACKOFF)
    maximum = b.number("max", max(d.max, initial))  # a large initial alone is not an error
    jitter = b.number("jitter", d.jitter)
    if maximum < initial:
        b.problem("backoff.max", f"must be >= backoff.initial ({initial:g}), got {maximum:g}")
    if jitter > 1:
        b.problem("backoff.jitter", f"must be between 0 and 1, got {jitter:g}")
    return Backoff(initial, maximum, jitter, b.number("reset_after", d.reset_after))


def _stop_signal(f: Fields) -> str:
    value = f.string("stop_signal")
    if value is None:
        return "TERM"
    name = value.strip().upper().removeprefix("SIG")
    if f"SIG{name}" not in signal.Signals.__members__:
        known = [s.removeprefix("SIG") for s in signal.Signals.__members__]
        f.problem("stop_signal", f"unknown signal {value!r}{suggestion(name, known)}")
        return "TERM"
    return name


def _account(f: Fields, key: Literal["user", "group"]) -> str | None:
    """A user or group as written: a name, a number or `${VAR}` (resolve.py expands and
    looks it up; `user = "${UNAME}"` follows the desktop user whatever PUID/PGID/UNAME
    an operator picks)."""
    raw: object = f.raw(key)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if raw is not None and not isinstance(raw, str):
        f.wrong_type(key, "a name or a number", raw)
        return None
    if raw is not None and NUL in raw:
        f.no_nul(key)
        return None
    return raw


def _environment(f: Fields) -> dict[str, str]:
    table = f.subtable("environment")
    env: dict[str, str] = {}
    for var, value in table.items() if table else ():
        if not _env_name_ok(var):
            f.problem("environment", f"not a valid variable name: {var!r}")
        elif not isinstance(value, str):
            f.wrong_type(f"environment.{var}", "a string", value)
        elif NUL in value:
            f.no_nul(f"environment.{var}")
        else:
            env[var] = value
    return env


def _secrets(f: Fields) -> tuple[Secret, ...]:
    table = f.subtable("secrets")
    secrets: list[Secret] = []
    for var, value in table.items() if table else ():
        key = f"secrets.{var if var.isprintable() else repr(var)}"
        if not isinstance(value, dict):
            f.wrong_type(key, 'a table such as { env = "VAR" } or { file = "/path" }', value)
            continue
        s = f.child(value, key)
        s.only(("env", "file", "required", "argv"))
        env, file = s.string("env"), s.absolute_path("file")
        required = s.boolean("required", True)
        argv = s.boolean("argv", False)
        if not _env_name_ok(var):
            f.problem(key, "not a valid variable name")
        elif s.has("env") and s.has("file"):
            f.problem(key, "needs exactly one of env or file; got both")
        elif not s.has("env") and not s.has("file"):
            f.problem(key, "needs exactly one of env or file; got none")
        elif env is not None or file is not None:
            secrets.append(Secret(var, env, file, required, argv))
    return tuple(secrets)


def _no_secret_in_argv(f: Fields, command: tuple[str, ...], secrets: tuple[Secret, ...]) -> None:
    """`${SECRET}` in argv would be expanded to the value: readable by anyone in /proc/*/cmdline."""
    names = {s.name for s in secrets if not s.argv}
    if any(s.argv for s in secrets) and f.has("user"):
        f.problem(
            "secrets",
            "argv = true needs the service to run as root: /proc hides only other users'"
            " command lines, so its own user (and that user's processes) could read it",
        )
    for i, arg in enumerate(command):
        for var in VAR_RE.findall(arg):
            if var in names:
                f.problem(
                    f"command[{i}]",
                    f"${{{var}}} would put secret {var} on the command line, where every"
                    " process can read it (/proc/PID/cmdline); let the service read it"
                    " from its environment (or, for a binary that takes it only as a flag,"
                    " mark the secret argv = true)",
                )


def _env_name_ok(name: str) -> bool:
    """Plain: no '=', and no whitespace or control character (a newline in a name broke
    supervisord's config); anything else a process environment can carry is allowed."""
    return (
        bool(name) and "=" not in name and name.isprintable() and not any(c.isspace() for c in name)
    )


def _inherit_exports(f: Fields) -> bool | tuple[str, ...]:
    value = f.raw("inherit_exports")
    if value is None or isinstance(value, bool):
        return True if value is None else value
    if not isinstance(value, list):
        f.wrong_type("inherit_exports", "a boolean or an array of variable names", value)
        return True
    return _variable_names(f, "inherit_exports")


def _variable_names(f: Fields, key: str) -> tuple[str, ...]:
    names = f.strings(key) or ()
    for i, name in enumerate(names):
        if not _env_name_ok(name):
            f.problem(f"{key}[{i}]", f"not a valid variable name: {name!r}")
    return tuple(n for n in names if _env_name_ok(n))


def _check_requires(specs: list[ServiceSpec], names: set[str], problems: list[Problem]) -> None:
    """Cross-file checks: every requirement exists, none is the service itself, no cycles.

    `names` includes files too broken to parse, so a syntax error in one file is
    not also reported as an unknown service in the files that require it.
    """
    deps: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        for required in spec.requires:
            if required == spec.name:
                problems.append(Problem(spec.source, "requires: a service cannot require itself"))
            elif required not in names:
                hint = suggestion(required, names)
                problems.append(
                    Problem(spec.source, f"requires: unknown service {required!r}{hint}")
                )
        deps[spec.name] = tuple(r for r in spec.requires if r in names and r != spec.name)
    sources = {spec.name: spec.source for spec in specs}
    while cycle := graph.find_cycle(deps):
        problems.append(
            Problem(sources[cycle[0]], f"requires: dependency cycle {' -> '.join(cycle)}")
        )
        deps = {n: r for n, r in deps.items() if n not in cycle}
