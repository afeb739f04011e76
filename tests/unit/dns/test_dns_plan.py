"""plan_dns: passthrough when inner containers can reach every nameserver, else a relay."""

import ipaddress
import json

import pytest

from helix_init.dns.plan import DnsPlan, format_endpoint, parse_endpoint, plan_dns
from helix_init.dns.resolvconf import ResolvConf, parse_resolv_conf
from helix_init.problems import ConfigError
from helix_init.settings.dns import dns_override

RELAY = "10.213.0.1"


def plan(text: str, override: str | None = None) -> DnsPlan:
    return plan_dns(parse_resolv_conf(text), override, RELAY)


# resolv.conf text, override -> mode, upstreams, dns
CASES = [
    (
        "nameserver 10.0.0.1\nnameserver 10.0.0.2",
        None,
        "passthrough",
        ("10.0.0.1", "10.0.0.2"),
        ("10.0.0.1", "10.0.0.2"),
    ),
    ("nameserver 127.0.0.11", None, "relay", ("127.0.0.11",), (RELAY,)),
    ("nameserver 127.0.0.53", None, "relay", ("127.0.0.53",), (RELAY,)),
    ("nameserver 127.1.2.3", None, "relay", ("127.1.2.3",), (RELAY,)),
    ("nameserver ::1", None, "relay", ("::1",), (RELAY,)),
    ("nameserver 0.0.0.0", None, "relay", ("0.0.0.0",), (RELAY,)),
    # one loopback server is enough: the relay forwards to all of them, in order
    (
        "nameserver 10.0.0.1\nnameserver 127.0.0.53",
        None,
        "relay",
        ("10.0.0.1", "127.0.0.53"),
        (RELAY,),
    ),
    ("nameserver fe80::1%eth0", None, "relay", ("fe80::1%eth0",), (RELAY,)),
    # IPv6 only: dockerd would drop them on an IPv4 bridge and use 8.8.8.8
    ("nameserver 2001:db8::53", None, "relay", ("2001:db8::53",), (RELAY,)),
    (
        "nameserver 10.0.0.1\nnameserver 2001:db8::53",
        None,
        "passthrough",
        ("10.0.0.1", "2001:db8::53"),
        ("10.0.0.1", "2001:db8::53"),
    ),
    ("nameserver 10.0.0.1\nnameserver 10.0.0.1", None, "passthrough", ("10.0.0.1",), ("10.0.0.1",)),
    ("", None, "relay", ("127.0.0.1",), (RELAY,)),  # glibc's default
    # the override replaces the nameservers, whatever resolv.conf says
    (
        "nameserver 127.0.0.11",
        "10.1.1.1, 10.1.1.2",
        "passthrough",
        ("10.1.1.1", "10.1.1.2"),
        ("10.1.1.1", "10.1.1.2"),
    ),
    (
        "nameserver 10.0.0.1",
        "10.1.1.1 10.1.1.2",
        "passthrough",
        ("10.1.1.1", "10.1.1.2"),
        ("10.1.1.1", "10.1.1.2"),
    ),
    ("nameserver 10.0.0.1", "127.0.0.1:5353", "relay", ("127.0.0.1:5353",), (RELAY,)),
    ("nameserver 10.0.0.1", "10.1.1.1:5353", "relay", ("10.1.1.1:5353",), (RELAY,)),
    ("nameserver 10.0.0.1", "[2001:db8::1]:5353", "relay", ("[2001:db8::1]:5353",), (RELAY,)),
    ("nameserver 10.0.0.1", "  ", "passthrough", ("10.0.0.1",), ("10.0.0.1",)),
]


@pytest.mark.parametrize(("text", "override", "mode", "upstreams", "dns"), CASES)
def test_plan_table(
    text: str, override: str | None, mode: str, upstreams: tuple[str, ...], dns: tuple[str, ...]
) -> None:
    result = plan(text, override)
    assert (result.mode, result.upstreams, result.dns) == (mode, upstreams, dns)


@pytest.mark.parametrize(("text", "override", "mode", "upstreams", "dns"), CASES)
def test_never_names_a_resolver_the_level_did_not_use(
    text: str, override: str | None, mode: str, upstreams: tuple[str, ...], dns: tuple[str, ...]
) -> None:
    result = plan(text, override)
    used = set(parse_resolv_conf(text).nameservers or ["127.0.0.1"])
    if override and override.strip():
        used = {parse_endpoint(w)[0] for w in override.replace(",", " ").split()}
    assert set(result.dns) <= used | {RELAY}
    assert {parse_endpoint(u)[0] for u in result.upstreams} <= used
    assert not {"8.8.8.8", "8.8.4.4", "1.1.1.1"} & set(result.dns)


def test_search_and_options_pass_through_in_both_modes() -> None:
    text = "nameserver {}\nsearch corp.example lab.example\noptions edns0 timeout:2\n"
    for server in ("10.0.0.1", "127.0.0.53"):
        result = plan(text.format(server))
        assert result.search == ("corp.example", "lab.example")
        assert result.options == ("edns0", "timeout:2")


def test_dockers_own_ndots_is_not_handed_down() -> None:
    text = "nameserver 127.0.0.11\noptions ndots:0 edns0\n# Option ndots from: internal\n"
    assert plan(text).options == ("edns0",)
    # Docker 20.10 writes no marker: behind 127.0.0.11, ndots:0 is Docker's own.
    # Handed down, it makes the inner embedded DNS answer `api` empty.
    # An empty dns-opts would make dockerd copy ndots:0 back in from this level's
    # resolv.conf, so a neutral option (glibc's and musl's default) holds its place.
    assert plan("nameserver 127.0.0.11\noptions ndots:0\n").options == ("attempts:2",)
    assert plan("nameserver 127.0.0.11\noptions ndots:2\n").options == ("ndots:2",)
    assert plan("nameserver 10.0.0.2\noptions ndots:0\n").options == ("ndots:0",)


def test_reason_says_why_and_what_docker_forwards_to() -> None:
    text = "nameserver 127.0.0.11\n# ExtServers: [host(10.0.0.1)]\n"
    reason = plan(text).reason
    assert "127.0.0.11 is loopback-only" in reason
    assert "10.0.0.1" in reason
    assert f"relay {RELAY} -> 127.0.0.11" in reason
    assert "reachable" in plan("nameserver 10.0.0.1").reason
    assert plan("nameserver 10.0.0.1", "10.1.1.1").reason.startswith("HELIX_DNS:")


def test_override_name_appears_in_problems() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_dns(
            ResolvConf(), "10.0.0.1, dns.example, 10.0.0.1:0", RELAY, override_name="DNS_UPSTREAM"
        )
    assert [str(p) for p in caught.value.problems] == [
        "DNS_UPSTREAM: not an IP address: 'dns.example'",
        "DNS_UPSTREAM: port out of range: '10.0.0.1:0'",
    ]


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "::", "bridge0", "10.0.0.1%x", ""])
def test_relay_address_must_be_reachable_from_inner_containers(address: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_dns(ResolvConf(nameservers=("10.0.0.1",)), None, address)
    assert caught.value.problems[0].where == "dns relay address"


def test_daemon_json_leaves_out_empty_keys() -> None:
    assert plan("nameserver 10.0.0.1").daemon_json() == {"dns": ["10.0.0.1"]}
    assert plan("nameserver 127.0.0.53\nsearch lan\noptions edns0").daemon_json() == {
        "dns": [RELAY],
        "dns-search": ["lan"],
        "dns-opts": ["edns0"],
    }


def test_relay_listen() -> None:
    assert plan("nameserver 127.0.0.53").relay_listen == RELAY
    assert plan("nameserver 10.0.0.1").relay_listen is None


@pytest.mark.parametrize("text", ["nameserver 127.0.0.53\nsearch lan", "nameserver 10.0.0.1"])
def test_json_round_trip(text: str) -> None:
    original = plan(text)
    assert DnsPlan.from_json(original.to_json()) == original


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "dns.json: not JSON"),
        ("[]", "dns.json: not a JSON object"),
        ('{"mode": "x"}', "dns.json: mode must be passthrough or relay: 'x'"),
        (
            json.dumps(
                {
                    "mode": "relay",
                    "upstreams": ["127.0.0.1"],
                    "dns": [],
                    "search": [],
                    "options": [],
                    "reason": "",
                }
            ),
            "dns.json: relay mode needs exactly one dns address",
        ),
        (
            json.dumps(
                {
                    "mode": "relay",
                    "upstreams": "127.0.0.1",
                    "dns": ["10.0.0.1"],
                    "search": [],
                    "options": [],
                    "reason": "",
                }
            ),
            "dns.json: upstreams must be a list of strings",
        ),
    ],
)
def test_from_json_rejects_damage(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        DnsPlan.from_json(text)
    assert str(caught.value.problems[0]).startswith(problem)


@pytest.mark.parametrize(
    ("text", "endpoint", "shown"),
    [
        ("10.0.0.1", ("10.0.0.1", 53), "10.0.0.1"),
        ("10.0.0.1:5353", ("10.0.0.1", 5353), "10.0.0.1:5353"),
        ("::1", ("::1", 53), "::1"),
        ("[::1]", ("::1", 53), "::1"),
        ("[::1]:5353", ("::1", 5353), "[::1]:5353"),
        ("fe80::1%eth0", ("fe80::1%eth0", 53), "fe80::1%eth0"),
    ],
)
def test_endpoints_round_trip(text: str, endpoint: tuple[str, int], shown: str) -> None:
    assert parse_endpoint(text) == endpoint
    assert format_endpoint(*endpoint) == shown
    assert parse_endpoint(shown) == endpoint


@pytest.mark.parametrize("text", ["", "host:53", "10.0.0.1:x", "10.0.0.1:70000", "[::1]:", "[x]"])
def test_bad_endpoints(text: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(text)


def test_relay_address_may_be_ipv6_global() -> None:
    result = plan_dns(ResolvConf(nameservers=("127.0.0.53",)), None, "fd00::1")
    assert result.dns == ("fd00::1",)
    assert ipaddress.ip_address(result.dns[0]).version == 6


@pytest.mark.parametrize(
    ("env", "chosen"),
    [
        ({"HELIX_DNS": "10.0.0.1", "DNS_UPSTREAM": "10.0.0.2"}, ("HELIX_DNS", "10.0.0.1")),
        ({"HELIX_DNS": " ", "DNS_UPSTREAM": "10.0.0.2"}, ("DNS_UPSTREAM", "10.0.0.2")),
        ({"DNS_UPSTREAM": "10.0.0.2"}, ("DNS_UPSTREAM", "10.0.0.2")),
        ({}, ("HELIX_DNS", None)),
    ],
)
def test_helix_dns_wins_over_dns_upstream(
    env: dict[str, str], chosen: tuple[str, str | None]
) -> None:
    assert dns_override(env) == chosen
