"""Sibling-dockerd mode settings, read and checked without I/O: by boot, `check` and the repairs.

Deployments that run a per-session dockerd beside the desktop (Hydra, seeds
000 and 001) need two network repairs, each off unless configured:

- localhost: the `localhost-forward` step and its `localhost-forward-undo`
  (HELIX_LOCALHOST_FORWARD=GATEWAY), in the desktop's network namespace;
- bridgeguard: the `bridge-guard` service (HELIX_BRIDGE_GUARD=BRIDGE=ADDR/PREFIX),
  in the namespace that holds the bridge.

This module parses their variables into frozen configs. `problems_from_env`
is what boot.make_plan and `helix-init check` call: a bad value is one line
naming its variable and exit 78 before anything starts, not a step that
fails (or a service that restarts forever) later.

The guarded bridge may be missing when this runs (recreating it is the
guard's job), so its name is checked for shape only, never for existence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from helix_init.problems import ConfigError, Problem

FORWARD = "HELIX_LOCALHOST_FORWARD"
FORWARD_DNS = "HELIX_LOCALHOST_FORWARD_DNS"
FORWARD_KEEP = "HELIX_LOCALHOST_FORWARD_KEEP_PORTS"
GUARD = "HELIX_BRIDGE_GUARD"
GUARD_SKIP = "HELIX_BRIDGE_GUARD_SKIP_PREFIXES"
GUARD_MODE = "HELIX_BRIDGE_GUARD_MODE"

DEFAULT_SKIP_PREFIXES = ("vethb-",)  # Hydra's session veths belong to the session bridges
GuardMode = Literal["event", "poll"]
MODES: tuple[GuardMode, ...] = ("event", "poll")
IFNAMSIZ = 16  # the kernel's limit, NUL included


@dataclass(frozen=True)
class ForwardConfig:
    """localhost:PORT (TCP, 127.0.0.1) goes to GATEWAY:PORT, except `keep_ports`."""

    gateway: IPv4Address
    dns: bool = False  # prepend `nameserver GATEWAY` to /etc/resolv.conf
    keep_ports: tuple[str, ...] = ()  # iptables --dport values: "9876", "5900:5999"


@dataclass(frozen=True)
class GuardConfig:
    """The bridge to keep, its address, and the veths never re-attached to it."""

    bridge: str
    address: IPv4Interface
    skip_prefixes: tuple[str, ...] = DEFAULT_SKIP_PREFIXES
    mode: GuardMode = "event"  # poll: never subscribe to netlink (gVisor polls anyway)


def problems_from_env(env: Mapping[str, str]) -> list[Problem]:
    """Every problem with the sibling-mode variables, one per variable; [] when all is well."""
    problems: list[Problem] = []
    _forward(env, problems)
    _guard(env, problems)
    return problems


def forward_config(env: Mapping[str, str]) -> ForwardConfig | None:
    """The localhost forwarding config, None when HELIX_LOCALHOST_FORWARD is unset."""
    problems: list[Problem] = []
    config = _forward(env, problems)
    if problems:
        raise ConfigError(problems)
    return config


def guard_config(env: Mapping[str, str]) -> GuardConfig | None:
    """The bridge guard config, None when HELIX_BRIDGE_GUARD is unset."""
    problems: list[Problem] = []
    config = _guard(env, problems)
    if problems:
        raise ConfigError(problems)
    return config


def _forward(env: Mapping[str, str], problems: list[Problem]) -> ForwardConfig | None:
    dns = _switch(env, FORWARD_DNS, problems)
    keep = _ports(env.get(FORWARD_KEEP, ""), problems)
    raw = env.get(FORWARD, "").strip()
    if not raw:
        return None
    try:
        gateway = IPv4Address(raw)
    except ValueError:
        problems.append(
            Problem(FORWARD, f"must be the gateway's IPv4 address, e.g. 10.200.1.1, got {raw!r}")
        )
        return None
    if gateway.is_loopback or gateway.is_unspecified or gateway.is_multicast:
        problems.append(
            Problem(FORWARD, f"must be the sibling dockerd's gateway address, not {gateway}")
        )
        return None
    return ForwardConfig(gateway, dns, keep)


def _guard(env: Mapping[str, str], problems: list[Problem]) -> GuardConfig | None:
    mode = env.get(GUARD_MODE, "").strip() or "event"
    if mode not in MODES:
        problems.append(Problem(GUARD_MODE, f"must be event or poll, got {mode!r}"))
        mode = "event"
    skip = tuple(p.strip() for p in env.get(GUARD_SKIP, "").split(",") if p.strip())
    for prefix in skip:
        if _name_problem(prefix, prefix=True):
            problems.append(Problem(GUARD_SKIP, f"not an interface name prefix: {prefix!r}"))
    raw = env.get(GUARD, "").strip()
    if not raw:
        return None
    example = "such as sandbox0=10.213.0.1/24"
    name, eq, cidr = raw.partition("=")
    name, cidr = name.strip(), cidr.strip()
    if not eq or not name or not cidr:
        problems.append(Problem(GUARD, f"must be BRIDGE=ADDRESS/PREFIX {example}, got {raw!r}"))
        return None
    what = _name_problem(name)
    if what:
        problems.append(Problem(GUARD, f"bridge {name!r} {what}"))
        return None
    if never_touched(name):
        problems.append(Problem(GUARD, f"refusing to guard {name}: eth* and lo are never touched"))
        return None
    address = _bridge_address(cidr)
    if isinstance(address, str):
        problems.append(Problem(GUARD, f"{address} ({example})"))
        return None
    return GuardConfig(
        name, address, skip or DEFAULT_SKIP_PREFIXES, "poll" if mode == "poll" else "event"
    )


def never_touched(name: str) -> bool:
    """eth* and lo: the container's own interfaces (inside one, eth0 is itself a veth: seed 001)."""
    return name == "lo" or name.startswith("eth")


def _bridge_address(cidr: str) -> IPv4Interface | str:
    """The bridge's own address with its prefix, or why `cidr` is not one."""
    if "/" not in cidr:
        return f"address {cidr!r} needs its prefix length"
    try:
        address = IPv4Interface(cidr)
    except ValueError:
        return f"{cidr!r} is not an IPv4 address/prefix"
    net: IPv4Network = address.network
    if net.prefixlen < 31 and address.ip in (net.network_address, net.broadcast_address):
        which = "network" if address.ip == net.network_address else "broadcast"
        return f"{cidr} is the subnet's {which} address, not one a bridge can have"
    if address.ip.is_loopback or address.ip.is_multicast or address.ip.is_unspecified:
        return f"{cidr} cannot be a bridge address"
    return address


def _name_problem(name: str, prefix: bool = False) -> str | None:
    """Why `name` cannot be (the start of) a network interface name, or None."""
    if not name or len(name.encode()) >= IFNAMSIZ:
        return f"is not a valid interface name (1 to {IFNAMSIZ - 1} bytes)"
    if any(c in name for c in "/:") or any(c.isspace() for c in name):
        return "is not a valid interface name (no '/', ':' or spaces)"
    if not prefix and name in (".", ".."):
        return "is not a valid interface name"
    return None


def _switch(env: Mapping[str, str], name: str, problems: list[Problem]) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    problems.append(Problem(name, f"must be 1 or 0, got {raw!r}"))
    return False


def _ports(raw: str, problems: list[Problem]) -> tuple[str, ...]:
    """'9876, 5900-5999' -> ('9876', '5900:5999'); problems name FORWARD_KEEP."""
    ports: list[str] = []
    for item in (p.strip() for p in raw.split(",")):
        if not item:
            continue
        low, dash, high = item.partition("-")
        bounds = [low, high] if dash else [low]
        if not all(b.isascii() and b.isdigit() and 1 <= int(b) <= 65535 for b in bounds):
            problems.append(
                Problem(FORWARD_KEEP, f"ports are 1..65535 or ranges A-B, got {item!r}")
            )
            continue
        if dash and int(low) > int(high):
            problems.append(Problem(FORWARD_KEEP, f"range {item!r} is backwards"))
            continue
        ports.append(f"{int(low)}:{int(high)}" if dash else str(int(low)))
    return tuple(dict.fromkeys(ports))
