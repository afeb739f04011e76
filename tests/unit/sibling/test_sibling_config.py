"""Sibling-mode variables: one problem per bad variable, naming it; configs when they are good."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import pytest

from helix_init.problems import ConfigError
from helix_init.settings.sibling import (
    ForwardConfig,
    GuardConfig,
    forward_config,
    guard_config,
    problems_from_env,
)


def test_nothing_set_is_nothing_to_do() -> None:
    assert problems_from_env({}) == []
    assert forward_config({}) is None
    assert guard_config({}) is None
    assert forward_config({"HELIX_LOCALHOST_FORWARD": "  "}) is None


GOOD = [
    ({"HELIX_LOCALHOST_FORWARD": "10.200.1.1"}, ForwardConfig(IPv4Address("10.200.1.1"))),
    (
        {
            "HELIX_LOCALHOST_FORWARD": " 10.200.1.1 ",
            "HELIX_LOCALHOST_FORWARD_DNS": "yes",
            "HELIX_LOCALHOST_FORWARD_KEEP_PORTS": "9876, 5900-5999,9876,",
        },
        ForwardConfig(IPv4Address("10.200.1.1"), True, ("9876", "5900:5999")),
    ),
]


@pytest.mark.parametrize(("env", "expected"), GOOD)
def test_good_forward_settings(env: dict[str, str], expected: ForwardConfig) -> None:
    assert problems_from_env(env) == []
    assert forward_config(env) == expected


GOOD_GUARD = [
    ("sandbox0=10.213.0.1/24", {}, GuardConfig("sandbox0", IPv4Interface("10.213.0.1/24"))),
    (
        " docker0 = 172.17.0.1/16 ",
        {"HELIX_BRIDGE_GUARD_SKIP_PREFIXES": "vethb-, hydra", "HELIX_BRIDGE_GUARD_MODE": "poll"},
        GuardConfig("docker0", IPv4Interface("172.17.0.1/16"), ("vethb-", "hydra"), "poll"),
    ),
    ("br=10.0.0.0/31", {}, GuardConfig("br", IPv4Interface("10.0.0.0/31"))),  # RFC 3021
]


@pytest.mark.parametrize(("value", "extra", "expected"), GOOD_GUARD)
def test_good_guard_settings(value: str, extra: dict[str, str], expected: GuardConfig) -> None:
    env = {"HELIX_BRIDGE_GUARD": value, **extra}
    assert problems_from_env(env) == []
    assert guard_config(env) == expected


# variable, value, words the one line must contain
BAD = [
    ("HELIX_LOCALHOST_FORWARD", "gateway", ["IPv4 address", "'gateway'"]),
    ("HELIX_LOCALHOST_FORWARD", "10.200.1.1/24", ["IPv4 address"]),
    ("HELIX_LOCALHOST_FORWARD", "fd00::1", ["IPv4 address"]),
    ("HELIX_LOCALHOST_FORWARD", "10.200.1.300", ["IPv4 address"]),
    ("HELIX_LOCALHOST_FORWARD", "127.0.0.1", ["not 127.0.0.1"]),
    ("HELIX_LOCALHOST_FORWARD", "0.0.0.0", ["not 0.0.0.0"]),
    ("HELIX_LOCALHOST_FORWARD_DNS", "maybe", ["1 or 0"]),
    ("HELIX_LOCALHOST_FORWARD_KEEP_PORTS", "80,http", ["'http'"]),
    ("HELIX_LOCALHOST_FORWARD_KEEP_PORTS", "0", ["1..65535"]),
    ("HELIX_LOCALHOST_FORWARD_KEEP_PORTS", "70000", ["1..65535"]),
    ("HELIX_LOCALHOST_FORWARD_KEEP_PORTS", "9000-8000", ["backwards"]),
    ("HELIX_BRIDGE_GUARD", "sandbox0", ["BRIDGE=ADDRESS/PREFIX", "sandbox0=10.213.0.1/24"]),
    ("HELIX_BRIDGE_GUARD", "=10.213.0.1/24", ["BRIDGE=ADDRESS/PREFIX"]),
    ("HELIX_BRIDGE_GUARD", "sandbox0=", ["BRIDGE=ADDRESS/PREFIX"]),
    ("HELIX_BRIDGE_GUARD", "sandbox0=10.213.0.1", ["needs its prefix length"]),
    ("HELIX_BRIDGE_GUARD", "sandbox0=10.213.0.1/33", ["'10.213.0.1/33' is not an IPv4"]),
    ("HELIX_BRIDGE_GUARD", "sandbox0=10.213.0.256/24", ["is not an IPv4"]),
    ("HELIX_BRIDGE_GUARD", "sandbox0=fd00::1/64", ["is not an IPv4"]),
    ("HELIX_BRIDGE_GUARD", "sandbox0=10.213.0.0/24", ["network address"]),
    ("HELIX_BRIDGE_GUARD", "sandbox0=10.213.0.255/24", ["broadcast address"]),
    ("HELIX_BRIDGE_GUARD", "sandbox0=127.0.0.1/8", ["cannot be a bridge address"]),
    ("HELIX_BRIDGE_GUARD", "a-very-long-bridge-name=10.213.0.1/24", ["1 to 15 bytes"]),
    ("HELIX_BRIDGE_GUARD", "br/0=10.213.0.1/24", ["no '/'"]),
    ("HELIX_BRIDGE_GUARD", "eth0=10.213.0.1/24", ["refusing to guard eth0"]),
    ("HELIX_BRIDGE_GUARD", "lo=10.213.0.1/24", ["refusing to guard lo"]),
    ("HELIX_BRIDGE_GUARD_MODE", "netlink", ["event or poll", "'netlink'"]),
    ("HELIX_BRIDGE_GUARD_SKIP_PREFIXES", "vethb-,bad prefix", ["'bad prefix'"]),
]


@pytest.mark.parametrize(("name", "value", "words"), BAD)
def test_bad_value_is_one_line_naming_its_variable(name: str, value: str, words: list[str]) -> None:
    env = {name: value}
    if name.startswith("HELIX_BRIDGE_GUARD_"):
        env["HELIX_BRIDGE_GUARD"] = "sandbox0=10.213.0.1/24"
    elif name.startswith("HELIX_LOCALHOST_FORWARD_"):
        env["HELIX_LOCALHOST_FORWARD"] = "10.200.1.1"
    problems = problems_from_env(env)
    assert len(problems) == 1, problems
    line = str(problems[0])
    assert line.startswith(f"{name}: ") and "\n" not in line
    for word in words:
        assert word in line
    getter = guard_config if name.startswith("HELIX_BRIDGE_GUARD") else forward_config
    with pytest.raises(ConfigError) as raised:
        getter(env)
    assert raised.value.problems == problems


def test_every_bad_variable_is_reported_at_once() -> None:
    env = {
        "HELIX_LOCALHOST_FORWARD": "nope",
        "HELIX_LOCALHOST_FORWARD_DNS": "sure",
        "HELIX_BRIDGE_GUARD": "sandbox0=10.213.0.1/99",
        "HELIX_BRIDGE_GUARD_MODE": "fast",
    }
    assert sorted(p.where for p in problems_from_env(env)) == [
        "HELIX_BRIDGE_GUARD",
        "HELIX_BRIDGE_GUARD_MODE",
        "HELIX_LOCALHOST_FORWARD",
        "HELIX_LOCALHOST_FORWARD_DNS",
    ]
