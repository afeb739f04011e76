"""Plan DNS for inner containers (pure, no I/O); runs in the cont-init DNS step, `check` and `plan`.

Why a relay at all: dockerd drops loopback nameservers (Docker's 127.0.0.11,
systemd-resolved's 127.0.0.53) for the default bridge and for build `RUN`
steps and silently falls back to Google's public resolvers. In an enterprise
network that breaks split-horizon names and leaks queries. So:

- every nameserver reachable from an inner container's network namespace →
  pass them through as daemon.json `dns`, `dns-search`, `dns-opts`;
- any nameserver only this level can reach (loopback, IPv6 link-local or
  zoned, a port other than 53) → run the relay at this level, forwarding to
  these same nameservers, and give inner containers the relay's address.

The plan never names a resolver that this level did not already use: `dns`
holds either this level's own nameservers (or the explicit override) or the
relay address, never a default of our own. An empty resolv.conf means
127.0.0.1 to glibc and musl, so that is what the relay forwards to.

The relay address is the caller's choice, passed in as `relay_address`. It
must be an address of this level that inner containers route to: the planned
bridge gateway of the inner dockerd (its `bip`) is the natural one, but that
bridge only comes up when dockerd starts, after the relay service, so the
relay binds it with IP_FREEBIND and starts answering the moment the address
appears. 0.0.0.0 is never used: answering on every address would make the
relay an open resolver (and an amplifier) on the outer network.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal, cast

from helix_init.dns.resolvconf import ResolvConf, is_address
from helix_init.problems import ConfigError, Problem
from helix_init.settings.dns import HELIX_DNS, dns_override

Mode = Literal["passthrough", "relay"]
DNS_PORT = 53
DOCKER_EMBEDDED_DNS = "127.0.0.11"
# The default of glibc and musl alike, so writing it changes nothing for a
# resolver; it only keeps daemon.json `dns-opts` non-empty (_inherited_options).
NEUTRAL_OPTION = "attempts:2"


@dataclass(frozen=True)
class DnsPlan:
    """What inner containers get, and where the relay forwards to (relay mode only)."""

    mode: Mode
    upstreams: tuple[str, ...]  # ADDR or ADDR:PORT ([ADDR]:PORT for IPv6), in order of use
    dns: tuple[str, ...]  # daemon.json "dns"
    search: tuple[str, ...]  # daemon.json "dns-search"
    options: tuple[str, ...]  # daemon.json "dns-opts"
    reason: str  # one line for the log and `helix-init plan`

    @property
    def relay_listen(self) -> str | None:
        """The address the relay binds (port 53), or None when no relay runs."""
        return self.dns[0] if self.mode == "relay" else None

    def daemon_json(self) -> dict[str, list[str]]:
        """The daemon.json keys this plan sets; empty lists are left out, not written."""
        keys = {"dns": self.dns, "dns-search": self.search, "dns-opts": self.options}
        return {key: list(values) for key, values in keys.items() if values}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "dns.json") -> DnsPlan:
        """Read a plan written by to_json(); any damage is a ConfigError naming `where`."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError([Problem(where, f"not JSON: {exc}")]) from None
        if not isinstance(data, dict):
            raise ConfigError([Problem(where, "not a JSON object")])
        problems: list[Problem] = []
        mode = data.get("mode")
        if mode not in ("passthrough", "relay"):
            problems.append(Problem(where, f"mode must be passthrough or relay: {mode!r}"))
        if not isinstance(data.get("reason"), str):
            problems.append(Problem(where, "reason must be a string"))
        lists = {}
        for key in ("upstreams", "dns", "search", "options"):
            value = data.get(key)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(Problem(where, f"{key} must be a list of strings"))
                continue
            lists[key] = tuple(value)
        if not problems and mode == "relay" and len(lists["dns"]) != 1:
            problems.append(Problem(where, "relay mode needs exactly one dns address"))
        if problems:
            raise ConfigError(problems)
        return cls(
            mode=cast(Mode, mode),
            upstreams=lists["upstreams"],
            dns=lists["dns"],
            search=lists["search"],
            options=lists["options"],
            reason=data["reason"],
        )


def plan_dns(
    resolv: ResolvConf,
    override: str | None,
    relay_address: str,
    *,
    override_name: str = HELIX_DNS,
) -> DnsPlan:
    """Choose passthrough or relay. `override` (comma or space separated) replaces the
    nameservers of resolv.conf; search and options still come from resolv.conf."""
    problems = _check_relay_address(relay_address)
    if override and override.strip():
        source = override_name
        servers, bad = _parse_override(override, override_name)
        problems += bad
    elif resolv.nameservers:
        source = "resolv.conf"
        servers = [parse_endpoint(ns) for ns in resolv.nameservers]
    else:
        source = "resolv.conf (no nameserver: glibc uses 127.0.0.1)"
        servers = [("127.0.0.1", DNS_PORT)]
    if problems:
        raise ConfigError(problems)
    servers = list(dict.fromkeys(servers))
    upstreams = tuple(format_endpoint(host, port) for host, port in servers)
    options = _inherited_options(resolv)
    unreachable = [why for why in map(_why_unreachable, servers) if why]
    if not unreachable and any(_is_ipv4(host) for host, _ in servers):
        return DnsPlan(
            mode="passthrough",
            upstreams=upstreams,
            dns=tuple(host for host, _ in servers),
            search=resolv.search,
            options=options,
            reason=f"{source}: {', '.join(upstreams)} reachable from inner containers",
        )
    if not unreachable:
        # dockerd drops IPv6 nameservers from the default bridge unless IPv6 is on,
        # and falls back to public resolvers when none is left; the relay listens on IPv4.
        unreachable = ["no IPv4 nameserver (dockerd would fall back to public resolvers)"]
    via = f" (Docker forwards to {', '.join(resolv.ext_servers)})" if resolv.ext_servers else ""
    return DnsPlan(
        mode="relay",
        upstreams=upstreams,
        dns=(relay_address,),
        search=resolv.search,
        options=options,
        reason=(
            f"{source}: {'; '.join(unreachable)}{via}; "
            f"relay {format_endpoint(relay_address, DNS_PORT)} -> {', '.join(upstreams)}"
        ),
    )


def parse_endpoint(text: str, default_port: int = DNS_PORT) -> tuple[str, int]:
    """`ADDR`, `ADDR:PORT` or `[IPV6]:PORT` → (address, port); ValueError otherwise."""
    text = text.strip()
    bracketed = re.fullmatch(r"\[(?P<host>[^\]]+)\](?::(?P<port>\d+))?", text)
    if bracketed:
        host, port_text = bracketed["host"], bracketed["port"]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None
    if not is_address(host):
        raise ValueError(f"not an IP address: {text!r}")
    if port_text is not None and not port_text.isdigit():
        raise ValueError(f"not a port: {text!r}")
    port = int(port_text) if port_text else default_port
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {text!r}")
    return host, port


def format_endpoint(host: str, port: int) -> str:
    """The inverse of parse_endpoint(); port 53 is left out."""
    shown = f"[{host}]" if ":" in host and port != DNS_PORT else host
    return shown if port == DNS_PORT else f"{shown}:{port}"


def _check_relay_address(address: str) -> list[Problem]:
    where = "dns relay address"
    if not is_address(address) or "%" in address:
        return [Problem(where, f"not an IP address: {address!r}")]
    ip = ipaddress.ip_address(address)
    if ip.is_loopback or ip.is_unspecified:
        return [Problem(where, f"{address} is not reachable from inner containers")]
    return []


def override_problems(env: Mapping[str, str]) -> list[Problem]:
    """HELIX_DNS (or DNS_UPSTREAM) checked before anything starts, as the network step will."""
    name, value = dns_override(env)
    return _parse_override(value, name)[1] if value else []


def _parse_override(text: str, name: str) -> tuple[list[tuple[str, int]], list[Problem]]:
    servers, problems = [], []
    for word in re.split(r"[,\s]+", text.strip()):
        try:
            servers.append(parse_endpoint(word))
        except ValueError as exc:
            problems.append(Problem(name, str(exc)))
    return servers, problems


def _why_unreachable(server: tuple[str, int]) -> str:
    """Why an inner container cannot use this nameserver directly; "" if it can."""
    host, port = server
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if ip.is_loopback or ip.is_unspecified:  # glibc reads 0.0.0.0 as this host
        return f"{host} is loopback-only"
    if "%" in host or (ip.version == 6 and ip.is_link_local):
        return f"{host} is link-local to this level"
    if port != DNS_PORT:
        return f"{format_endpoint(host, port)} is not on port 53 (daemon.json has no port)"
    return ""


def _is_ipv4(host: str) -> bool:
    return ipaddress.ip_address(host.split("%", 1)[0]).version == 4


def _inherited_options(resolv: ResolvConf) -> tuple[str, ...]:
    """Options to hand down, without the `ndots:0` that Docker adds for its own
    embedded resolver. Newer Docker marks it (`# Option ndots from: internal`);
    Docker 20.10 does not, so behind 127.0.0.11 it is treated as Docker's too.

    Passing it down is harmful, not just noisy: an inner embedded resolver that
    sees ndots set explicitly answers single-label names (`api`) empty instead
    of forwarding them, so a level-2 container could not resolve a level-1
    service (seen on this machine with 20.10).

    Leaving it out is not enough when nothing else is left: an empty `dns-opts`
    makes dockerd copy this level's own resolv.conf options (Docker's ndots:0
    included) into every container it creates, which is the same harm. So the
    list is kept non-empty with NEUTRAL_OPTION (the system tier caught this:
    `api` stayed unresolvable from level 2 with `dns-opts` left out).
    """
    docker_made = resolv.ndots_from == "internal" or (
        resolv.ndots_from == "" and DOCKER_EMBEDDED_DNS in resolv.nameservers
    )
    if not docker_made:
        return resolv.options
    kept = tuple(opt for opt in resolv.options if opt != "ndots:0")
    if kept or kept == resolv.options:
        return kept
    return (NEUTRAL_OPTION,)
