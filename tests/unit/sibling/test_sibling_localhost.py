"""Localhost forwarding decisions and the check-before-add / undo logic, with a fake iptables."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from helix_init.hostcmd import CommandResult, StepError
from helix_init.settings.sibling import ForwardConfig
from helix_init.sibling import localhost as lf

GW = IPv4Address("10.200.1.1")


def test_rules_keep_ports_first_then_dnat_then_masquerade() -> None:
    rules = lf.forward_rules(
        ForwardConfig(GW, keep_ports=("9876", "5900:5999")), IPv4Network("10.200.1.0/24")
    )
    tag = ["-m", "comment", "--comment", lf.COMMENT]
    assert [r.argv("add") for r in rules] == [
        ["iptables", "-w", "5", "-t", "nat", "-I", "OUTPUT", "1",
         "-d", "127.0.0.1/32", "-p", "tcp", "--dport", "9876", *tag, "-j", "RETURN"],
        ["iptables", "-w", "5", "-t", "nat", "-I", "OUTPUT", "1",
         "-d", "127.0.0.1/32", "-p", "tcp", "--dport", "5900:5999", *tag, "-j", "RETURN"],
        ["iptables", "-w", "5", "-t", "nat", "-A", "OUTPUT",
         "-d", "127.0.0.1/32", "-p", "tcp", *tag, "-j", "DNAT", "--to-destination", "10.200.1.1"],
        ["iptables", "-w", "5", "-t", "nat", "-A", "POSTROUTING",
         "-s", "127.0.0.0/8", "-d", "10.200.1.0/24", *tag, "-j", "MASQUERADE"],
    ]  # fmt: skip
    assert rules[2].argv("-C")[5:7] == ["-C", "OUTPUT"]
    assert rules[3].argv("-D")[5:7] == ["-D", "POSTROUTING"]


SUBNETS = [
    (["10.200.1.254/24"], "10.200.1.0/24"),
    (["172.20.0.2/16", "10.200.1.254/24"], "10.200.1.0/24"),
    (["172.20.0.2/16"], "10.200.1.1/32"),  # reached through a router: the gateway alone
    ([], "10.200.1.1/32"),  # no route yet (the interface is injected later)
    (["10.200.1.1/32"], "10.200.1.1/32"),
]


@pytest.mark.parametrize(("addresses", "subnet"), SUBNETS)
def test_masquerade_subnet_is_the_on_link_network(addresses: list[str], subnet: str) -> None:
    assert lf.gateway_subnet(GW, [IPv4Interface(a) for a in addresses]) == IPv4Network(subnet)


def test_nameserver_goes_first_once_and_comes_out_again() -> None:
    line = "nameserver 10.200.1.1"
    text = "search lan\nnameserver 127.0.0.11\noptions ndots:0\n"
    added = lf.with_nameserver(text, line)
    assert added == f"{line}\n{text}"
    assert lf.with_nameserver(added, line) is None
    assert lf.with_nameserver("nameserver   10.200.1.1\n", line) is None  # already listed
    assert lf.without_nameserver(added, line) == text
    assert lf.without_nameserver(text, line) is None  # someone rewrote the file: leave it


class FakeIptables:
    """A rule set keyed by (table, chain, spec); -C/-A/-I/-D as iptables answers them."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, str, tuple[str, ...]]] = []
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        assert argv[:5] == ["iptables", "-w", "5", "-t", "nat"]
        action, chain = argv[5], argv[6]
        spec = tuple(argv[8:] if action == "-I" else argv[7:])
        key = ("nat", chain, spec)
        if action == "-C":
            return CommandResult(0 if key in self.rules else 1)
        if action == "-A":
            self.rules.append(key)
        elif action == "-I":
            self.rules.insert(0, key)
        elif action == "-D":
            if key not in self.rules:
                return CommandResult(1, "", "iptables: Bad rule")
            self.rules.remove(key)
        return CommandResult(0)


def test_ensure_rules_adds_each_rule_once() -> None:
    ipt = FakeIptables()
    rules = lf.forward_rules(ForwardConfig(GW, keep_ports=("22",)), IPv4Network("10.200.1.0/24"))
    assert lf.ensure_rules(ipt, rules) == 3
    assert lf.ensure_rules(ipt, rules) == 0
    assert lf.ensure_rules(ipt, rules) == 0
    assert len(ipt.rules) == 3
    assert ipt.rules[0][2][-1] == "RETURN"  # the kept port stays ahead of the DNAT


def test_a_failing_add_is_one_line_quoting_iptables() -> None:
    def broken(argv: Sequence[str]) -> CommandResult:
        return CommandResult(1 if "-C" in argv else 4, "", "iptables v1.8.9 (nf_tables): no nat\n")

    with pytest.raises(StepError, match=r"exited 4: iptables v1.8.9 \(nf_tables\): no nat$"):
        lf.ensure_rules(broken, lf.forward_rules(ForwardConfig(GW), IPv4Network("10.0.0.0/8")))


def test_undo_removes_what_was_recorded_and_leaves_the_rest(tmp_path: Path) -> None:
    ipt = FakeIptables()
    foreign = ("nat", "OUTPUT", ("-d", "127.0.0.1/32", "-j", "DNAT", "--to-destination", "1.2.3.4"))
    ipt.rules.append(foreign)
    rules = lf.forward_rules(ForwardConfig(GW), IPv4Network("10.200.1.0/24"))
    lf.ensure_rules(ipt, rules)
    state = tmp_path / "run" / "localhost-forward.json"
    lf.save(state, lf.Undo(rules=rules))
    said: list[str] = []
    lf.undo(ipt, state, tmp_path / "resolv.conf", said.append)
    assert ipt.rules == [foreign]
    assert said == ["removed 2 localhost forwarding rule(s)"]
    assert not state.exists()
    lf.undo(ipt, state, tmp_path / "resolv.conf", said.append)  # a second undo: nothing to do
    assert said == ["removed 2 localhost forwarding rule(s)"]


def test_records_merge_so_the_first_previous_value_wins() -> None:
    first = lf.Undo(sysctls={"all": "0", "eth1": "0"}, resolv_line="nameserver 10.200.1.1")
    again = lf.Undo(sysctls={}, resolv_line=None)  # the second run found everything in place
    merged = first.merge(again)
    assert merged.sysctls == {"all": "0", "eth1": "0"}
    assert merged.resolv_line == "nameserver 10.200.1.1"
    rules = lf.forward_rules(ForwardConfig(GW), IPv4Network("10.200.1.0/24"))
    assert lf.Undo(rules=rules).merge(lf.Undo(rules=rules)).rules == rules
    assert lf.Undo.from_json(merged.to_json()) == merged
