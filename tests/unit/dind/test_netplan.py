"""Address plan: the per-depth default when free, a free /16 otherwise, never a clash."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from helix_init.dind import DindError
from helix_init.dind.netplan import (
    NetPlan,
    default_network,
    hosts_to_reach,
    ip_host,
    nameservers,
    plan_network,
)
from helix_init.problems import ConfigError
from helix_init.settings.dind import DindSettings, parse_reserved_nets


def nets(*cidrs: str) -> list[IPv4Network]:
    return [IPv4Network(c) for c in cidrs]


def ips(*addrs: str) -> list[IPv4Address]:
    return [IPv4Address(a) for a in addrs]


DEFAULT_ROUTE = nets("0.0.0.0/0")
DOCKER0 = nets("172.17.0.0/16")

# (case, depth, routes, addresses, nameservers, must reach, reserved, chosen /16)
# fmt: off
TABLE = [
    ("free: the depth-1 default", 1, DEFAULT_ROUTE + DOCKER0, [], ["10.255.255.53"], [], [],
     "10.213.0.0/16"),
    ("free: the depth-2 default", 2, DEFAULT_ROUTE, [], [], [], [], "10.214.0.0/16"),
    ("depth 0 is 10.212", 0, [], [], [], [], [], "10.212.0.0/16"),
    ("the default route clashes with nothing", 1, DEFAULT_ROUTE, [], [], [], [],
     "10.213.0.0/16"),
    ("a route inside the default", 1, nets("10.213.5.0/24"), [], [], [], [], "10.0.0.0/16"),
    ("a route around the default", 1, nets("10.208.0.0/12"), [], [], [], [], "10.0.0.0/16"),
    ("an interface address in it", 1, [], ["10.213.0.2/16"], [], [], [], "10.0.0.0/16"),
    ("the nameserver in it", 1, [], [], ["10.213.0.53"], [], [], "10.0.0.0/16"),
    ("the API address in it", 1, [], [], [], ["10.213.1.1"], [], "10.0.0.0/16"),
    ("reserved by the level above", 1, [], [], [], [], ["10.213.0.0/16"], "10.0.0.0/16"),
    ("first free /16 skips taken ones", 1, nets("10.0.0.0/15", "10.2.3.0/24"), [], [], [],
     ["10.213.0.0/16"], "10.3.0.0/16"),
    ("all of 10/8 routed: 172.16/12, past 172.17 (docker0)", 1,
     nets("10.0.0.0/8", "172.16.0.0/16") + DOCKER0, [], [], [], [], "172.18.0.0/16"),
    ("10/8 and 172.16/12 taken: 192.168/16", 3, nets("10.0.0.0/8", "172.16.0.0/12"), [], [],
     [], [], "192.168.0.0/16"),
    ("a clash with 172.17/16 alone does not move the default", 1, DOCKER0, ["172.17.0.2/16"],
     [], [], ["172.17.0.0/16"], "10.213.0.0/16"),
    ("two levels told the same depth: the inner one moves", 1, DEFAULT_ROUTE, ["10.213.0.7/24"],
     [], [], ["10.213.0.0/16"], "10.0.0.0/16"),
]
# fmt: on


@pytest.mark.parametrize(
    ("case", "depth", "routes", "addresses", "dns", "reach", "reserved", "chosen"),
    TABLE,
    ids=[row[0] for row in TABLE],
)
def test_pool_choice(
    case: str,
    depth: int,
    routes: list[IPv4Network],
    addresses: list[str],
    dns: list[str],
    reach: list[str],
    reserved: list[str],
    chosen: str,
) -> None:
    plan = plan_network(
        depth,
        routes=routes,
        addresses=[IPv4Interface(a) for a in addresses],
        nameservers=ips(*dns),
        must_reach=ips(*reach),
        reserved=nets(*reserved),
    )
    assert plan.network == IPv4Network(chosen), case
    every = [*routes, *nets(*reserved)] + [IPv4Interface(a).network for a in addresses]
    every += [IPv4Network(a) for a in [*dns, *reach]]
    assert not any(plan.network.overlaps(n) for n in every if n.prefixlen), case
    is_default = plan.network == default_network(depth)
    assert (plan.moved_because is None) == is_default, case


def test_default_kept_gives_helix_pools_and_bip() -> None:
    plan = plan_network(1, routes=DEFAULT_ROUTE + DOCKER0, mtu=1450)
    assert plan == NetPlan(
        network=IPv4Network("10.213.0.0/16"),
        bip=IPv4Interface("10.213.0.1/24"),
        mtu=1450,
        reserved_for_children=(IPv4Network("10.213.0.0/16"),),
    )
    assert plan.address_pools == [{"base": "10.213.0.0/16", "size": 24}]
    assert plan.children_env == "10.213.0.0/16"


def test_moved_plan_says_why_and_passes_every_reserved_range_down() -> None:
    plan = plan_network(2, routes=nets("10.214.3.0/24"), reserved=nets("10.213.0.0/16"))
    assert plan.moved_because == "the depth-2 default 10.214.0.0/16 overlaps route 10.214.3.0/24"
    assert str(plan.bip) == "10.0.0.1/24"
    assert plan.children_env == "10.213.0.0/16,10.0.0.0/16"


def test_reserved_already_holding_ours_is_not_repeated() -> None:
    plan = plan_network(1, reserved=nets("10.212.0.0/16"))
    assert plan.children_env == "10.212.0.0/16,10.213.0.0/16"


def test_depth_past_10_255_has_no_default_and_searches() -> None:
    plan = plan_network(44)
    assert plan.network == IPv4Network("10.0.0.0/16")
    assert plan.moved_because and "depth 44 has no per-depth default" in plan.moved_because


def test_exhausted_space_is_a_clear_error() -> None:
    with pytest.raises(DindError, match=r"no free /16 .*10\.0\.0\.0/8, 172\.16\.0\.0/12"):
        plan_network(
            1,
            routes=nets("10.0.0.0/8", "172.16.0.0/12"),
            reserved=nets("192.168.0.0/16"),
        )


def test_same_inputs_same_plan() -> None:
    kwargs = {"routes": nets("10.213.0.0/24"), "reserved": nets("10.0.0.0/16")}
    assert plan_network(1, **kwargs) == plan_network(1, **kwargs)  # type: ignore[arg-type]


def test_reserved_nets_parse_and_every_bad_entry_is_named() -> None:
    assert parse_reserved_nets("") == []
    assert parse_reserved_nets(" 10.213.0.0/16, 10.214.0.1/16 ,") == nets(
        "10.213.0.0/16", "10.214.0.0/16"
    )
    with pytest.raises(ConfigError) as e:
        parse_reserved_nets("foo,10.0.0.0/33,fd00::/8,10.1.0.0/16")
    assert [p.where for p in e.value.problems] == ["HELIX_INIT_RESERVED_NETS"] * 3
    assert "'fd00::/8' is not IPv4" in str(e.value)


@pytest.mark.parametrize(
    ("text", "addr"),
    [
        ("http://10.0.0.5:8080/api", "10.0.0.5"),
        ("https://10.0.0.5", "10.0.0.5"),
        ("10.0.0.6:5000", "10.0.0.6"),
        ("10.0.0.7", "10.0.0.7"),
        ("registry:5000", None),
        ("https://api.helix.ml", None),
        ("http://[fd00::1]:80", None),
        ("", None),
    ],
)
def test_ip_hosts_are_recognised_names_are_not(text: str, addr: str | None) -> None:
    assert ip_host(text) == (IPv4Address(addr) if addr else None)


def test_hosts_to_reach_from_the_environment() -> None:
    env = {
        "HELIX_API_URL": "http://10.213.0.10:8080",
        "HELIX_REGISTRY": "registry.local:5000",
        "HELIX_SANDBOX_REGISTRY": "192.168.1.2:5000",
    }
    assert hosts_to_reach(DindSettings.from_env(env).must_reach) == ips(
        "10.213.0.10", "192.168.1.2"
    )


def test_nameservers_from_resolv_conf() -> None:
    text = "# x\nnameserver 127.0.0.11\nnameserver fd00::53\nsearch a b\nnameserver 10.1.2.3\n"
    assert nameservers(text) == ips("127.0.0.11", "10.1.2.3")
