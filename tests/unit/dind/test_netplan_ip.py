"""The network step's reading of `ip -j` output and its bridge decisions, without a kernel."""

from __future__ import annotations

import json
from ipaddress import IPv4Interface, IPv4Network

import pytest

from helix_init.dind.netplan import (
    LinkState,
    bridge_changes,
    parse_ip_addresses,
    parse_ip_routes,
    parse_links,
)

# `ip -j -4 route show table all` in a namespace with up0 and helix0 (iproute2 6.1), trimmed.
ROUTES = json.dumps([
    {"dst": "default", "gateway": "10.213.7.1", "dev": "up0"},
    {"dst": "10.0.0.0/24", "dev": "helix0", "protocol": "kernel"},
    {"dst": "10.213.7.0/24", "dev": "up0", "protocol": "kernel"},
    {"type": "local", "dst": "10.213.7.2", "dev": "up0", "table": "local"},
    {"type": "broadcast", "dst": "127.255.255.255", "dev": "lo", "table": "local"},
    {"type": "blackhole", "dst": "192.168.50.0/24"},
])  # fmt: skip

ADDRESSES = json.dumps([
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "up0", "addr_info": [
        {"family": "inet", "local": "10.213.7.2", "prefixlen": 24},
        {"family": "inet6", "local": "fe80::1", "prefixlen": 64},
    ]},
    {"ifname": "tun0", "addr_info": [
        {"family": "inet", "local": "10.8.0.2", "address": "10.8.0.1", "prefixlen": 32},
    ]},
    {"ifname": "helix0", "addr_info": [{"family": "inet", "local": "10.0.0.1", "prefixlen": 24}]},
])  # fmt: skip


def test_routes_of_every_table_but_the_bridge_s_with_host_and_default_routes_spelled_out() -> None:
    assert parse_ip_routes(ROUTES, ["helix0"]) == tuple(
        IPv4Network(n)
        for n in (
            "0.0.0.0/0",
            "10.213.7.0/24",
            "10.213.7.2/32",
            "127.255.255.255/32",
            "192.168.50.0/24",
        )
    )
    assert parse_ip_routes("") == ()


def test_ipv4_addresses_but_the_bridge_s_a_point_to_point_one_as_its_peer() -> None:
    assert parse_ip_addresses(ADDRESSES, ["helix0"]) == (
        IPv4Interface("127.0.0.1/8"),
        IPv4Interface("10.213.7.2/24"),
        IPv4Interface("10.8.0.1/32"),  # IFA_ADDRESS, as the kernel's dump names it
    )


def test_a_link_s_mtu_admin_state_and_addresses() -> None:
    inet = {"family": "inet", "local": "10.0.0.1", "prefixlen": 24}
    up = {"ifname": "helix0", "flags": ["BROADCAST", "MULTICAST", "UP"], "mtu": 1450}
    down = {"ifname": "eth0", "flags": ["BROADCAST"], "mtu": 1500, "addr_info": []}
    assert parse_links(json.dumps([{**up, "addr_info": [inet]}, down])) == {
        "helix0": LinkState(1450, True, (IPv4Interface("10.0.0.1/24"),)),
        "eth0": LinkState(1500, False, ()),
    }


BIP = IPv4Interface("10.213.0.1/24")
RIGHT = LinkState(1450, True, (BIP,))

# (case, link as found, mtu wanted, commands, what the step says)
# fmt: off
TABLE = [
    ("no bridge yet", None, 1450, [
        ["ip", "link", "add", "helix0", "type", "bridge"],
        ["ip", "address", "add", "10.213.0.1/24", "dev", "helix0"],
        ["ip", "link", "set", "dev", "helix0", "mtu", "1450", "up"],
    ], ["created helix0", "address 10.213.0.1/24", "mtu 1450", "up"]),
    ("no uplink MTU: the bridge's own stays", None, None, [
        ["ip", "link", "add", "helix0", "type", "bridge"],
        ["ip", "address", "add", "10.213.0.1/24", "dev", "helix0"],
        ["ip", "link", "set", "dev", "helix0", "up"],
    ], ["created helix0", "address 10.213.0.1/24", "up"]),
    ("already right: nothing", RIGHT, 1450, [], []),
    ("a stale address from an earlier plan", LinkState(1450, True, (
        IPv4Interface("10.9.9.1/24"), BIP)), 1450, [
        ["ip", "address", "del", "10.9.9.1/24", "dev", "helix0"],
    ], ["removed 10.9.9.1/24"]),
    ("down, other MTU", LinkState(1500, False, (BIP,)), 1450, [
        ["ip", "link", "set", "dev", "helix0", "mtu", "1450", "up"],
    ], ["mtu 1450", "up"]),
]
# fmt: on


@pytest.mark.parametrize(
    ("case", "link", "mtu", "argvs", "changes"), TABLE, ids=[r[0] for r in TABLE]
)
def test_bridge_changes(
    case: str, link: LinkState | None, mtu: int | None, argvs: list[list[str]], changes: list[str]
) -> None:
    assert bridge_changes("helix0", BIP, mtu, link) == (argvs, changes)
