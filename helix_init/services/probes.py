"""Probes: wait_for conditions, ready and health checks, parsed from a service table (no I/O).

A probe table names exactly one kind; targets are checked for shape here (an
absolute socket path, host:port with a real port, an http:// URL, a unix://
Docker socket) so a typo fails `helix-init check`, not a boot an hour later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from helix_init.services.fields import MIN_INTERVAL, Fields

WaitKind = Literal["path", "unix", "tcp"]
ProbeKind = Literal["unix", "tcp", "http", "command", "docker", "notify"]
K = TypeVar("K", bound=str)

WAIT_KINDS: tuple[WaitKind, ...] = ("path", "unix", "tcp")
PROBE_KINDS: tuple[ProbeKind, ...] = ("unix", "tcp", "http", "command", "docker", "notify")
HEALTH_KINDS: tuple[ProbeKind, ...] = ("unix", "tcp", "http", "command", "docker")


@dataclass(frozen=True)
class WaitFor:
    """A condition before start: any one of `targets` exists (path), accepts (unix, tcp)."""

    kind: WaitKind
    targets: tuple[str, ...]
    timeout: float = 0.0  # 0 = wait forever


@dataclass(frozen=True)
class Probe:
    """How to tell a service works. `target` is a path, host:port, URL, argv tuple or None."""

    kind: ProbeKind
    target: str | tuple[str, ...] | None
    status: int = 200  # http only
    timeout: float = 60.0  # ready: give up after this long (0 = never); health: per check
    interval: float = 0.2  # ready: between attempts; health: between checks


@dataclass(frozen=True)
class Health:
    """Periodic checks once ready; `failures` in a row mark the service unhealthy.

    `probe.timeout` and `probe.interval` equal `timeout` and `interval` here, also
    when the probe is the ready probe reused.
    """

    probe: Probe
    interval: float = 10.0
    failures: int = 3
    timeout: float = 5.0


def parse_wait_for(f: Fields) -> tuple[WaitFor, ...]:
    """The `wait_for` array of tables, e.g. [{ unix = "/run/a.sock", timeout = 30 }]."""
    raw = f.raw("wait_for")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        f.wrong_type("wait_for", "an array of tables", raw)
        return ()
    waits: list[WaitFor] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            f.wrong_type(f"wait_for[{i}]", "a table", item)
            continue
        w = f.child(item, f"wait_for[{i}]")
        clean = w.only((*WAIT_KINDS, "timeout"))
        kind = _one_kind(w, WAIT_KINDS, clean)
        timeout = w.number("timeout", 0.0)
        targets = w.one_or_more(kind) if kind else None
        if kind is None or targets is None:
            continue
        for target in targets:
            what = _tcp_problem(target) if kind == "tcp" else _path_problem(target)
            if what:
                w.problem(w.key(kind), what)
        waits.append(WaitFor(kind, targets, timeout))
    return tuple(waits)


def _one_kind(f: Fields, kinds: tuple[K, ...], clean: bool) -> K | None:
    """The one kind key a probe or wait table must have, or None after reporting the problem.

    "None given" is not reported when an unknown key was (most likely the kind, misspelt).
    """
    given = [k for k in kinds if f.has(str(k))]
    if len(given) == 1:
        return given[0]
    allowed = ", ".join(str(k) for k in kinds)
    if given:
        both = " and ".join(repr(k) for k in given)
        f.problem(f.name, f"needs exactly one of {allowed}; got {both}")
    elif clean:
        f.problem(f.name, f"needs exactly one of {allowed}; got none")
    return None


def parse_ready(f: Fields) -> Probe | None:
    """The `ready` table: one probe kind, plus timeout (0 = wait forever) and interval."""
    r = f.subtable("ready")
    if r is None:
        return None
    clean = r.only((*PROBE_KINDS, "status", "timeout", "interval"))
    timeout = r.number("timeout", 60.0)
    interval = r.number("interval", 0.2, minimum=MIN_INTERVAL)
    return _probe(r, PROBE_KINDS, clean, timeout, interval)


def parse_health(f: Fields, ready: Probe | None) -> Health | None:
    """The `health` table; without a probe kind of its own it reuses the ready probe."""
    h = f.subtable("health")
    if h is None:
        return None
    clean = h.only((*PROBE_KINDS, "status", "interval", "failures", "timeout"))
    interval = h.number("interval", 10.0, minimum=MIN_INTERVAL)
    timeout = h.number("timeout", 5.0, minimum=MIN_INTERVAL)
    failures = h.integer("failures", 3, minimum=1)
    if h.has("notify"):
        h.problem(h.key("notify"), "notify only signals readiness; use another probe kind")
        return None
    if any(h.has(k) for k in HEALTH_KINDS) or not clean:
        probe = _probe(h, HEALTH_KINDS, clean, timeout, interval)
    elif ready is None:
        h.problem("health", "no probe given and no ready probe to reuse")
        return None
    elif ready.kind == "notify":
        h.problem("health", "no probe given, and the ready probe (notify) cannot be reused")
        return None
    else:
        probe = Probe(ready.kind, ready.target, ready.status, timeout, interval)
    return Health(probe, interval, failures, timeout) if probe else None


def _probe(
    p: Fields, kinds: tuple[ProbeKind, ...], clean: bool, timeout: float, interval: float
) -> Probe | None:
    kind = _one_kind(p, kinds, clean)
    status = p.integer("status", 200, minimum=100, maximum=599)
    if p.has("status") and kind not in (None, "http"):
        p.problem(p.key("status"), "applies to an http probe only")
    if kind is None:
        return None
    key = p.key(kind)
    target: str | tuple[str, ...] | None
    if kind == "command":
        target = p.strings(kind, non_empty=True)
    elif kind == "notify":
        if p.raw(kind) is not True:
            p.wrong_type(key, "true (leave ready out for no probe)", p.raw(kind))
        target = None
    else:
        target = p.string(kind)
        what = _target_problem(kind, target) if target is not None else None
        if what:
            p.problem(key, what)
            return None
    if target is None and kind != "notify":
        return None
    return Probe(kind, target, status, timeout, interval)


def _target_problem(kind: ProbeKind, target: str) -> str | None:
    if kind == "unix":
        return _path_problem(target)
    if kind == "tcp":
        return _tcp_problem(target)
    if kind == "http":
        return _http_problem(target)
    if not target.startswith("unix:///"):
        return f"must be a unix:// URL such as 'unix:///var/run/docker.sock', got {target!r}"
    return None


def _path_problem(target: str) -> str | None:
    # `${XDG_RUNTIME_DIR}/wayland-0`: the variable is expanded at start time and
    # is taken to hold an absolute path.
    if target.startswith("/") or target.startswith("${"):
        return None
    return f"must be an absolute path (or start with ${{VAR}}), got {target!r}"


def _tcp_problem(target: str) -> str | None:
    host, colon, port = target.rpartition(":")
    if not colon or not host or not port:
        return f"must be 'host:port', got {target!r}"
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return f"port must be 1..65535, got {port!r} in {target!r}"
    return None


def _http_problem(target: str) -> str | None:
    if not target.startswith("http://"):
        return f"must start with http://, got {target!r}"
    parts = urlsplit(target)
    try:
        port = parts.port
    except ValueError:
        return f"port must be 1..65535 in {target!r}"
    if not parts.hostname or port == 0:
        return f"must be http://host[:port]/path, got {target!r}"
    return None
