"""Address plan for this level's dockerd (bip, pools, MTU, bridge); pure, plus two netlink helpers.

Each dockerd avoids only the routes of its own network namespace, so an inner
level's pools can land on a network an outer level uses, and the inner level
then cannot reach it (the API, a registry, the resolver). The plan avoids
every route and address visible here, the nameservers, the hosts this level
must reach, and every range the levels above reserved (HELIX_INIT_RESERVED_NETS),
and passes that list plus its own /16 down to the next level.

Helix's per-depth default, 10.(212+depth).0.0/16 cut into /24 pools, is kept
whenever it is free, so addresses stay predictable; otherwise the first free
/16 of 10.0.0.0/8, then 172.16.0.0/12, then 192.168.0.0/16 is used.

The bridge is "helix0", never docker0: a second dockerd in the same namespace
can delete docker0. dockerd rejects `bridge` together with `bip` ("-b & --bip,
mutually exclusive"; checked with 20.10) and insists a non-default bridge
already exists, so ensure_bridge creates helix0 with the bip address and the
uplink MTU before dockerd starts, and daemon.json names the bridge without a
bip; dockerd takes the bridge's address as the default network (checked with
20.10: bridge network 10.213.0.0/24, next user network 10.213.1.0/24).

The two I/O functions run iproute2's `ip` (its JSON output) through the
step's Runner, not pyroute2: importing pyroute2 (0.7,
Debian's) took ~0.18 s of the network step's ~0.24 s in a level-1 boot, where
the `ip` calls take a few milliseconds each (docs/boot.md). The kernel's
answers are the same: `ip -4 route show table all` is the RTM_GETROUTE dump of
every table, `ip -4 address show` the RTM_GETADDR dump.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address
from typing import Any
from urllib.parse import urlsplit

from helix_init.dind import DindError
from helix_init.hostcmd import Runner, check
from helix_init.settings.dind import RESERVED_NETS

BRIDGE_NAME = "helix0"
POOL_SIZE = 24
SEARCH_SPACE = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
)


@dataclass(frozen=True)
class Avoid:
    """A network the plan must not overlap, and why (for the log and the error)."""

    net: IPv4Network
    why: str


@dataclass(frozen=True)
class NetPlan:
    network: IPv4Network  # the /16 this level's dockerd owns
    bip: IPv4Interface  # the first /24's .1: helix0's address
    mtu: int | None  # the default-route interface's MTU
    reserved_for_children: tuple[IPv4Network, ...]
    moved_because: str | None = None  # why the per-depth default was not used

    @property
    def address_pools(self) -> list[dict[str, object]]:
        return [{"base": str(self.network), "size": POOL_SIZE}]

    @property
    def children_env(self) -> str:
        """The HELIX_INIT_RESERVED_NETS value for the next level down."""
        return ",".join(str(n) for n in self.reserved_for_children)


def default_network(depth: int) -> IPv4Network | None:
    """Helix's per-depth /16, 10.(212+depth).0.0/16; none past 10.255."""
    octet = 212 + depth
    return IPv4Network(f"10.{octet}.0.0/16") if depth >= 0 and octet <= 255 else None


def candidate_networks() -> Iterator[IPv4Network]:
    for space in SEARCH_SPACE:
        yield from space.subnets(new_prefix=16)


def first_clash(net: IPv4Network, avoid: Sequence[Avoid]) -> Avoid | None:
    return next((a for a in avoid if net.overlaps(a.net)), None)


def plan_network(
    depth: int,
    *,
    routes: Iterable[IPv4Network] = (),
    addresses: Iterable[IPv4Interface] = (),
    nameservers: Iterable[IPv4Address] = (),
    must_reach: Iterable[IPv4Address] = (),
    reserved: Sequence[IPv4Network] = (),
    mtu: int | None = None,
) -> NetPlan:
    """Choose the /16 for this level: the per-depth default when free, else the first free one."""
    avoid = [Avoid(r, f"route {r}") for r in routes if r.prefixlen > 0]
    avoid += [Avoid(a.network, f"address {a}") for a in addresses]
    avoid += [Avoid(IPv4Network(n), f"nameserver {n}") for n in nameservers]
    avoid += [Avoid(IPv4Network(h), f"host to reach {h}") for h in must_reach]
    avoid += [Avoid(r, f"{r} reserved by a level above") for r in reserved]

    moved_because = None
    default = default_network(depth)
    if default is None:
        moved_because = f"depth {depth} has no per-depth default (10.{212 + depth}.0.0/16)"
    elif clash := first_clash(default, avoid):
        moved_because = f"the depth-{depth} default {default} overlaps {clash.why}"
    else:
        return _plan(default, reserved, mtu, None)

    for net in candidate_networks():
        if first_clash(net, avoid) is None:
            return _plan(net, reserved, mtu, moved_because)
    raise DindError(
        "no free /16 for dockerd's networks: every /16 of "
        + ", ".join(str(s) for s in SEARCH_SPACE)
        + f" overlaps a route, address, nameserver, host to reach or reserved range "
        f"({len(avoid)} avoided; {RESERVED_NETS} has {len(reserved)})"
    )


def _plan(
    net: IPv4Network, reserved: Sequence[IPv4Network], mtu: int | None, moved: str | None
) -> NetPlan:
    first = next(net.subnets(new_prefix=POOL_SIZE))
    bip = IPv4Interface(f"{first.network_address + 1}/{POOL_SIZE}")
    passed = tuple(dict.fromkeys([*reserved, net]))
    return NetPlan(net, bip, mtu, passed, moved)


# --- parsing what the caller hands in ----------------------------------------


def ip_host(url_or_host: str) -> IPv4Address | None:
    """The IPv4 address in a URL, host:port or bare host; None for names and IPv6."""
    text = url_or_host.strip()
    if not text:
        return None
    host = urlsplit(text if "//" in text else f"//{text}").hostname
    try:
        addr = ip_address(host or "")
    except ValueError:
        return None
    return addr if isinstance(addr, IPv4Address) else None


def hosts_to_reach(urls_or_hosts: Iterable[str]) -> list[IPv4Address]:
    """IP hosts of the API and registry URLs (DindSettings.must_reach); names are not resolved."""
    found = (ip_host(text) for text in urls_or_hosts)
    return [a for a in found if a is not None]


def nameservers(resolv_conf: str) -> list[IPv4Address]:
    """IPv4 `nameserver` lines of a resolv.conf."""
    found: list[IPv4Address] = []
    for line in resolv_conf.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                addr = ip_address(parts[1])
            except ValueError:
                continue
            if isinstance(addr, IPv4Address):
                found.append(addr)
    return found


# --- I/O: iproute2 ------------------------------------------------------------


@dataclass(frozen=True)
class LinkState:
    """A link as `ip -j address show` shows it: MTU, up (IFF_UP), its IPv4 addresses.

    From `ip`, not /sys/class/net: sysfs shows the network namespace of whoever
    mounted it, which need not be ours (`unshare --net` keeps the host's).
    """

    mtu: int
    up: bool
    addresses: tuple[IPv4Interface, ...]


def parse_links(ip_json: str) -> dict[str, LinkState]:
    """Every link of `ip -j address show`, by name."""
    return {link["ifname"]: _link_state(link) for link in json.loads(ip_json or "[]")}


def _link_state(link: dict[str, Any]) -> LinkState:
    return LinkState(int(link["mtu"]), "UP" in link.get("flags", ()), tuple(_link_addresses(link)))


@dataclass(frozen=True)
class Surroundings:
    routes: tuple[IPv4Network, ...]
    addresses: tuple[IPv4Interface, ...]
    links: Mapping[str, LinkState] = field(default_factory=dict)  # every link, by name


def parse_ip_routes(ip_json: str, ignore: Sequence[str] = ()) -> tuple[IPv4Network, ...]:
    """IPv4 routes from `ip -j -4 route show table all`, except those through `ignore`.

    `ip` writes a host route's dst without its /32 and the default route as "default".
    """
    found: list[IPv4Network] = []
    for route in json.loads(ip_json or "[]"):
        if route.get("dev") in ignore or "dst" not in route:
            continue
        dst = route["dst"]
        found.append(IPv4Network("0.0.0.0/0" if dst == "default" else dst, strict=False))
    return tuple(found)


def parse_ip_addresses(ip_json: str, ignore: Sequence[str] = ()) -> tuple[IPv4Interface, ...]:
    """IPv4 addresses from `ip -j -4 address show`, except those on `ignore`.

    A point-to-point address names its peer in "address", as IFA_ADDRESS does.
    """
    found: list[IPv4Interface] = []
    for link in json.loads(ip_json or "[]"):
        if link.get("ifname") not in ignore:
            found += _link_addresses(link)
    return tuple(found)


def _link_addresses(link: dict[str, Any]) -> list[IPv4Interface]:
    return [
        IPv4Interface(f"{info.get('address', info['local'])}/{info['prefixlen']}")
        for info in link.get("addr_info", ())
        if info.get("family") == "inet"
    ]


def observe_surroundings(run: Runner, ignore: Sequence[str] = (BRIDGE_NAME,)) -> Surroundings:
    """IPv4 routes (all tables) and addresses here, except on our own bridge; every link's state.

    helix0 is left out so that planning again after ensure_bridge gives the
    same plan instead of fleeing from its own bridge.
    """
    routes = check(run, ["ip", "-j", "-4", "route", "show", "table", "all"]).stdout
    # Every link and family (not -4): the same dump says what the bridge is,
    # if it exists, so ensure_bridge needs no call of its own to find out.
    shown = check(run, ["ip", "-j", "address", "show"]).stdout
    return Surroundings(
        parse_ip_routes(routes, ignore), parse_ip_addresses(shown, ignore), parse_links(shown)
    )


def bridge_changes(
    name: str,
    bip: IPv4Interface,
    mtu: int | None,
    link: LinkState | None,
) -> tuple[list[list[str]], list[str]]:
    """The `ip` commands making `name` a bridge with only bip, the MTU, up; and what each says.

    Pure: `link` is the bridge's state (None: no such link yet). Nothing to
    do gives ([], []).
    """
    argvs: list[list[str]] = []
    changes: list[str] = []
    if link is None:
        argvs.append(["ip", "link", "add", name, "type", "bridge"])
        changes.append(f"created {name}")
    here = set(link.addresses if link else ())
    for stale in sorted(here - {bip}):
        argvs.append(["ip", "address", "del", str(stale), "dev", name])
        changes.append(f"removed {stale}")
    if bip not in here:
        argvs.append(["ip", "address", "add", str(bip), "dev", name])
        changes.append(f"address {bip}")
    settings: list[str] = []
    if mtu and (link.mtu if link else None) != mtu:
        settings += ["mtu", str(mtu)]
        changes.append(f"mtu {mtu}")
    if not (link and link.up):
        settings.append("up")
        changes.append("up")
    if settings:
        argvs.append(["ip", "link", "set", "dev", name, *settings])
    return argvs, changes


def ensure_bridge(
    run: Runner,
    bip: IPv4Interface,
    mtu: int | None,
    link: LinkState | None,
    name: str = BRIDGE_NAME,
) -> list[str]:
    """Make the bridge (`link`: its state as found, None if absent) have bip only, the MTU, up.

    Says what changed. A left-over address from an earlier plan is removed:
    dockerd would elect it as the default network.
    """
    argvs, changes = bridge_changes(name, bip, mtu, link)
    for argv in argvs:
        check(run, argv)
    return changes
