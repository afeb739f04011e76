"""Localhost forwarding to a sibling dockerd's gateway: the `localhost-forward` step and its undo.

Runs as root in a cont-init step process (undo: a cont-finish step), inside
the desktop's network namespace, once per boot; off unless
HELIX_LOCALHOST_FORWARD names the gateway.

Why (seed 000): the user's `docker run -p 8082:80 nginx` goes to a dockerd
beside the desktop, which publishes on its bridge gateway (10.200.1.1:8082),
not on the desktop's loopback, so `curl localhost:8082` failed. The fix that
Helix verified, kept as is:

- a DNAT in `nat OUTPUT` for TCP to 127.0.0.1 -> the gateway (same port);
- route_localnet=1 on `all` (the kernel ORs `all` with the interface, so this
  alone lets a 127.0.0.1-sourced packet leave the host) and, belt and braces,
  on the interface that faces the gateway, found by a route lookup;
- a MASQUERADE in `nat POSTROUTING` for the gateway's subnet, so the source
  is the desktop's address and replies find their way back.

Decisions:
- Which ports: all of them, as Helix does. Excluding the ports that listen
  locally when the step runs would be a snapshot taken before any service has
  started, so it would be wrong by the time it matters. Ports the desktop
  serves on 127.0.0.1 itself are listed in HELIX_LOCALHOST_FORWARD_KEEP_PORTS
  (RETURN rules ahead of the DNAT). Only 127.0.0.1 is forwarded: 127.0.0.2..
  and ::1 stay local.
- The MASQUERADE matches `-s 127.0.0.0/8` as well: only forwarded connections
  are rewritten; the desktop's own traffic to that subnet keeps its address.
- Idempotent: every rule carries the comment below and is checked (`-C`)
  before it is added, so restarts never pile rules up.
- Undo removes exactly what the step added and restores what it changed:
  the step records rules, previous sysctl values and the resolv.conf line in
  a state file under HELIX_INIT_RUN_DIR, and the undo works from that file only.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from helix_init.hostcmd import Runner, StepError, check
from helix_init.settings.sibling import ForwardConfig

COMMENT = "helix-init localhost-forward"
LOOPBACK = "127.0.0.1/32"
SYSCTL = "net/ipv4/conf/{}/route_localnet"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Rule:
    """One iptables rule; a `first` rule goes to the top of its chain, the others are appended."""

    table: str
    chain: str
    spec: tuple[str, ...]
    first: bool = False

    def argv(self, action: str) -> list[str]:
        """iptables argv for action -C (check), -A/-I (add) or -D (delete)."""
        if action == "add":
            where = ["-I", self.chain, "1"] if self.first else ["-A", self.chain]
        else:
            where = [action, self.chain]
        return ["iptables", "-w", "5", "-t", self.table, *where, *self.spec]

    def __str__(self) -> str:
        return f"{self.table} {self.chain} {' '.join(self.spec)}"


@dataclass
class Undo:
    """What the step did, for the undo: rules ensured, sysctls changed (old values), a line."""

    rules: list[Rule] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)  # interface -> previous value
    resolv_line: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Undo:
        data = json.loads(text)
        return cls(
            rules=[
                Rule(r["table"], r["chain"], tuple(r["spec"]), r["first"]) for r in data["rules"]
            ],
            sysctls=dict(data["sysctls"]),
            resolv_line=data["resolv_line"],
        )

    def merge(self, newer: Undo) -> Undo:
        """A later run's record on top of an earlier one: the earliest previous values win."""
        rules = list(dict.fromkeys([*self.rules, *newer.rules]))
        return Undo(rules, {**newer.sysctls, **self.sysctls}, self.resolv_line or newer.resolv_line)


# --- decisions (pure) ---------------------------------------------------------


def forward_rules(config: ForwardConfig, subnet: IPv4Network) -> list[Rule]:
    """The rules, in the order they are ensured: kept ports, the DNAT, the MASQUERADE."""
    tag = ("-m", "comment", "--comment", COMMENT)
    to_loopback = ("-d", LOOPBACK, "-p", "tcp")
    rules = [
        Rule("nat", "OUTPUT", (*to_loopback, "--dport", port, *tag, "-j", "RETURN"), first=True)
        for port in config.keep_ports
    ]
    rules.append(
        Rule(
            "nat",
            "OUTPUT",
            (*to_loopback, *tag, "-j", "DNAT", "--to-destination", str(config.gateway)),
        )
    )
    rules.append(
        Rule(
            "nat", "POSTROUTING", ("-s", "127.0.0.0/8", "-d", str(subnet), *tag, "-j", "MASQUERADE")
        )
    )
    return rules


def gateway_subnet(gateway: IPv4Address, addresses: Iterable[IPv4Interface]) -> IPv4Network:
    """The on-link subnet holding the gateway (from the facing interface's addresses), else /32."""
    for address in addresses:
        if gateway in address.network and address.network.prefixlen < 32:
            return address.network
    return IPv4Network(f"{gateway}/32")


def with_nameserver(text: str, line: str) -> str | None:
    """resolv.conf text with `line` first, or None when that nameserver is already listed."""
    wanted = line.split()
    if any(existing.split() == wanted for existing in text.splitlines()):
        return None
    return f"{line}\n{text}"


def without_nameserver(text: str, line: str) -> str | None:
    """resolv.conf text with our first line taken out again, or None when it is not first."""
    first, _, rest = text.partition("\n")
    return rest if first.split() == line.split() else None


# --- I/O ------------------------------------------------------------------------


def forward(
    config: ForwardConfig, runner: Runner, state: Path, resolv_conf: Path, say: Say
) -> None:
    """Set up forwarding to config.gateway; record what was done in `state` for the undo."""
    iface, addresses = facing_interface(config.gateway)
    subnet = gateway_subnet(config.gateway, addresses)
    if iface is None:
        say(f"warning: no route to {config.gateway} yet; masquerading {subnet} only")
    else:
        say(f"gateway {config.gateway} via {iface}; masquerading {subnet}")
    done = Undo()
    for name in ("all", iface) if iface else ("all",):
        previous = set_sysctl(SYSCTL.format(name), "1")
        if previous is not None:
            done.sysctls[name] = previous
            say(f"sysctl net.ipv4.conf.{name}.route_localnet=1")
    rules = forward_rules(config, subnet)
    added = ensure_rules(runner, rules)
    done.rules = rules
    kept = f", except port(s) {', '.join(config.keep_ports)}" if config.keep_ports else ""
    say(
        f"localhost:PORT (tcp) -> {config.gateway}:PORT{kept}: "
        f"{added} rule(s) added, {len(rules) - added} already present"
    )
    if config.dns:
        line = f"nameserver {config.gateway}"
        if edit_in_place(resolv_conf, lambda text: with_nameserver(text, line)):
            done.resolv_line = line
            say(f"{resolv_conf}: prepended {line}")
    save(state, done)


def undo(runner: Runner, state: Path, resolv_conf: Path, say: Say) -> None:
    """Remove exactly the rules the step recorded and restore what it changed."""
    try:
        record = Undo.from_json(state.read_text())
    except FileNotFoundError:
        return  # the step did nothing (forwarding off) or the undo already ran
    except (ValueError, KeyError, TypeError) as exc:
        raise StepError(f"{state}: unreadable ({exc}); remove the rules by hand") from None
    removed = 0
    for rule in reversed(record.rules):
        if runner(rule.argv("-C")).returncode == 0:
            check(runner, rule.argv("-D"))
            removed += 1
    say(f"removed {removed} localhost forwarding rule(s)")
    for name, previous in record.sysctls.items():
        if set_sysctl(SYSCTL.format(name), previous) is not None:
            say(f"sysctl net.ipv4.conf.{name}.route_localnet={previous}")
    line = record.resolv_line
    if line and edit_in_place(resolv_conf, lambda text: without_nameserver(text, line)):
        say(f"{resolv_conf}: removed {line}")
    state.unlink()


def ensure_rules(runner: Runner, rules: Sequence[Rule]) -> int:
    """Add each rule unless `iptables -C` finds it; how many were added."""
    added = 0
    for rule in rules:
        if runner(rule.argv("-C")).returncode != 0:
            check(runner, rule.argv("add"))
            added += 1
    return added


def facing_interface(gateway: IPv4Address) -> tuple[str | None, list[IPv4Interface]]:
    """The interface a route lookup for `gateway` leaves by, and its IPv4 addresses."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        try:
            routes = list(ipr.route("get", dst=str(gateway)))
        except NetlinkError:  # ENETUNREACH: the interface is not there (yet)
            return None, []
        oif = routes[0].get_attr("RTA_OIF") if routes else None
        if oif is None:
            return None, []
        name = ipr.get_links(oif)[0].get_attr("IFLA_IFNAME")
        addresses = [
            IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in ipr.get_addr(index=oif, family=socket.AF_INET)
        ]
    if name == "lo":
        raise StepError(f"{gateway} is an address of this namespace, not a gateway beside it")
    return str(name), addresses


def set_sysctl(key: str, value: str) -> str | None:
    """Write /proc/sys/KEY; the previous value when it changed, None when it already held."""
    path = Path("/proc/sys") / key
    previous = path.read_text().strip()
    if previous == value:
        return None
    path.write_text(value)
    return previous


def edit_in_place(path: Path, change: Callable[[str], str | None]) -> bool:
    """Rewrite `path` in place (Docker bind-mounts resolv.conf: a rename would fail)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    new = change(text)
    if new is None:
        return False
    with open(path, "w") as f:
        f.write(new)
    return True


def save(state: Path, done: Undo) -> None:
    try:
        earlier = Undo.from_json(state.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        earlier = Undo()
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(earlier.merge(done).to_json())
